# expect: GL112@20 GL101@18 GL110@23 GL107@24 GL108@24 GL114@27
"""A class-based trainer with softmax into CE, no zero_grad, a summed loss tensor, short val names (Xv)."""
import torch
import torch.nn as nn

class Trainer:
    def __init__(self, model, lr=1e-2):
        self.model = model
        self.optim = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        self.loss_fn = nn.CrossEntropyLoss()

    def fit(self, X, y, Xv, yv, epochs=3):
        for ep in range(epochs):
            perm = torch.randperm(len(X))
            total = 0
            for i in range(0, len(X), 16):
                idx = perm[i:i+16]
                logits = self.model(X[idx])
                probs = torch.softmax(logits, dim=1)
                loss = self.loss_fn(probs, y[idx])
                loss.backward()
                self.optim.step()
                total += loss
            preds = self.model(Xv)
            acc = (preds.argmax(1) == yv).float().mean()
            print(ep, total, acc)
        torch.save(self.model, __import__("tempfile").mktemp(suffix=".pt"))

X = torch.randn(128, 4); y = torch.randint(0, 3, (128,))
Trainer(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))).fit(X, y, X[:32], y[:32])
