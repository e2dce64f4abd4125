# expect: GL112|GL212@24
"""The classifier's forward() returns F.softmax(...) and train_one_epoch() applies nn.CrossEntropyLoss to it."""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class TextClassifier(nn.Module):
    def __init__(self, vocab=50, classes=4):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab, 16)
        self.fc = nn.Linear(16, classes)

    def forward(self, tokens):
        return F.softmax(self.fc(self.embedding(tokens)), dim=-1)


def train_one_epoch(model, dataloader, optimizer, loss_fn):
    model.train()
    for tokens, label in dataloader:
        optimizer.zero_grad()
        predicted = model(tokens)
        loss = loss_fn(predicted, label)  # BUG: GL112|GL212
        loss.backward()
        optimizer.step()


torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randint(0, 50, (80, 6)), torch.randint(0, 4, (80,))), batch_size=16,
                    shuffle=True)
model = TextClassifier()
optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
for epoch in range(2):
    train_one_epoch(model, loader, optimizer, nn.CrossEntropyLoss())
