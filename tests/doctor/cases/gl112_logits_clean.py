# expect: clean
"""Raw logits into CrossEntropyLoss; softmax only for reporting; log_softmax with NLLLoss."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()
nll = nn.NLLLoss()
data, labels = torch.randn(40, 5), torch.randint(0, 4, (40,))
for step in range(10):
    optimizer.zero_grad()
    logits = model(data)
    loss = criterion(logits, labels) + nll(torch.log_softmax(logits, dim=1), labels)
    loss.backward()
    optimizer.step()
    probs = torch.softmax(logits.detach(), dim=1)
print(probs[0], loss.item())
