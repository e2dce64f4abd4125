# expect: clean
"""The lesson's DQN step: target under no_grad, loss on policy Q-values; and a detach() variant."""
import torch
import torch.nn.functional as F
from torch import nn


def dqn_update(q_net, target_net, optimizer, batch, gamma=0.99):
    states, actions, rewards, next_states, dones = batch
    q_values = q_net(states).gather(1, actions.unsqueeze(1))
    with torch.no_grad():
        td_targets = rewards + gamma * target_net(next_states).max(1).values * (1 - dones)
    loss = F.huber_loss(q_values.squeeze(), td_targets, delta=1.0)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(q_net.parameters(), 10.0)
    optimizer.step()
    next_q = target_net(next_states).max(1).values.detach()
    return loss.item(), (rewards + gamma * next_q).mean().item()


torch.manual_seed(0)
q_net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
target_net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
target_net.load_state_dict(q_net.state_dict())
target_net.eval()
opt = torch.optim.Adam(q_net.parameters(), lr=1e-3)
for it in range(5):
    batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)), torch.randn(8), torch.randn(8, 4), torch.zeros(8))
    dqn_update(q_net, target_net, opt, batch)
