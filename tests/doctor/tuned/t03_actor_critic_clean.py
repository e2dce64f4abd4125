# expect: clean
"""One-step actor-critic: the critic's value of the next state is detached; the actor is fed the state, not G(z)."""
import torch
from torch import nn


class Actor(nn.Module):
    def __init__(self, obs, actions):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs, 32), nn.Tanh(), nn.Linear(32, actions))

    def forward(self, state):
        return torch.distributions.Categorical(logits=self.net(state))


class Critic(nn.Module):
    def __init__(self, obs):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs, 32), nn.Tanh(), nn.Linear(32, 1))

    def forward(self, state):
        return self.net(state).squeeze(-1)


torch.manual_seed(0)
actor, critic = Actor(4, 2), Critic(4)
actor_opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
critic_opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
gamma = 0.99
state = torch.randn(4)
for t in range(30):
    dist = actor(state)
    action = dist.sample()
    next_state = torch.randn(4)
    reward = torch.tensor(1.0 if action.item() == 0 else 0.0)
    value = critic(state)
    with torch.no_grad():
        target = reward + gamma * critic(next_state)
    advantage = (target - value).detach()
    critic_loss = (target - value).pow(2)
    critic_opt.zero_grad()
    critic_loss.backward()
    critic_opt.step()
    actor_loss = -dist.log_prob(action) * advantage
    actor_opt.zero_grad()
    actor_loss.backward()
    actor_opt.step()
    state = next_state
