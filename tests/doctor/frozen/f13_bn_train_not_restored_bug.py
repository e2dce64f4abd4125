# expect: GL109|GL209@13
"""A batch-norm CNN: evaluation inside the epoch loop sets eval(); train() is only called once, before the loop."""
import torch
from torch import nn

torch.manual_seed(0)
cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
opt = torch.optim.SGD(cnn.parameters(), lr=0.05, momentum=0.9)
images, labels = torch.randn(48, 1, 8, 8), torch.randint(0, 2, (48,))
val_images, val_labels = torch.randn(16, 1, 8, 8), torch.randint(0, 2, (16,))
cnn.train()
for epoch in range(3):
    for k in range(0, 48, 16):  # BUG: GL109|GL209
        opt.zero_grad()
        loss = nn.functional.cross_entropy(cnn(images[k:k + 16]), labels[k:k + 16])
        loss.backward()
        opt.step()
    cnn.eval()
    with torch.no_grad():
        accuracy = (cnn(val_images).argmax(1) == val_labels).float().mean()
    print(epoch, accuracy.item())
