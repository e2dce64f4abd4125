# expect: clean
"""Helper train/evaluate functions, @torch.no_grad evaluation, clipping, AdamW + cosine per epoch: all correct."""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

def train_epoch(net, loader, opt, crit, device):
    net.train()
    running = 0.0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        opt.zero_grad(set_to_none=True)
        out = net(xb)
        loss = crit(out, yb)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        running += loss.item() * xb.size(0)
    return running / len(loader.dataset)

@torch.no_grad()
def evaluate(net, loader, crit, device):
    net.eval()
    total = 0.0
    for xb, yb in loader:
        total += crit(net(xb.to(device)), yb.to(device)).item() * xb.size(0)
    return total / len(loader.dataset)

def main():
    X = torch.randn(256, 8); y = X.sum(1, keepdim=True)
    tr = DataLoader(TensorDataset(X[:200], y[:200]), batch_size=32, shuffle=True)
    va = DataLoader(TensorDataset(X[200:], y[200:]), batch_size=64)
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    crit = nn.MSELoss()
    for epoch in range(5):
        tl = train_epoch(net, tr, opt, crit, "cpu")
        vl = evaluate(net, va, crit, "cpu")
        sched.step()
        print(epoch, tl, vl)
    torch.save(net.state_dict(), __import__("tempfile").mktemp(suffix=".pt"))

if __name__ == "__main__":
    main()
