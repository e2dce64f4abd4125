# expect: GL117@19
"""DQN update: the TD target is computed through the target net with autograd on."""
import copy

import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
policy_net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
target_net = copy.deepcopy(policy_net)
optimizer = torch.optim.Adam(policy_net.parameters(), lr=1e-3)
gamma = 0.99
for update in range(5):
    states, next_states = torch.randn(16, 4), torch.randn(16, 4)
    actions = torch.randint(0, 2, (16,))
    rewards, dones = torch.randn(16), torch.zeros(16)
    q_values = policy_net(states).gather(1, actions.unsqueeze(1)).squeeze(1)
    next_q = target_net(next_states).max(1).values  # BUG: GL117
    td_targets = rewards + gamma * next_q * (1 - dones)
    loss = F.huber_loss(q_values, td_targets, delta=1.0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
