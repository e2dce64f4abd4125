# expect: clean
"""Batched advantage actor-critic with a shared body and two heads, one optimizer, returns computed with no grad."""
import torch
from torch import nn


class ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 64), nn.ReLU())
        self.policy = nn.Linear(64, 3)
        self.value = nn.Linear(64, 1)

    def forward(self, obs):
        h = self.body(obs)
        return self.policy(h), self.value(h).squeeze(-1)


torch.manual_seed(0)
agent = ActorCritic()
optim = torch.optim.Adam(agent.parameters(), lr=7e-4)
discount = 0.95
for update in range(10):
    obs = torch.randn(5, 8, 6)
    rewards = torch.rand(5, 8)
    logits, values = agent(obs)
    dist = torch.distributions.Categorical(logits=logits)
    actions = dist.sample()
    with torch.no_grad():
        returns = torch.zeros_like(rewards)
        running = torch.zeros(8)
        for t in reversed(range(5)):
            running = rewards[t] + discount * running
            returns[t] = running
    advantages = returns - values
    policy_loss = -(dist.log_prob(actions) * advantages.detach()).mean()
    value_loss = advantages.pow(2).mean()
    loss = policy_loss + 0.5 * value_loss - 0.01 * dist.entropy().mean()
    optim.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
    optim.step()
