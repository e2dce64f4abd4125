# expect: clean
"""Encoder-decoder (seq2seq) with teacher forcing: the decoder consumes the encoder's state (GL128 look-alike)."""
import torch
from torch import nn

VOCAB, HIDDEN = 12, 24


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.rnn = nn.GRU(HIDDEN, HIDDEN, batch_first=True)

    def forward(self, tokens):
        _, hidden = self.rnn(self.embed(tokens))
        return hidden


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.rnn = nn.GRU(HIDDEN, HIDDEN, batch_first=True)
        self.out = nn.Linear(HIDDEN, VOCAB)

    def forward(self, tokens, hidden):
        output, hidden = self.rnn(self.embed(tokens), hidden)
        return self.out(output), hidden


torch.manual_seed(0)
encoder, decoder = Encoder(), Decoder()
params = list(encoder.parameters()) + list(decoder.parameters())
optimizer = torch.optim.Adam(params, lr=1e-3)
criterion = nn.CrossEntropyLoss()
source = torch.randint(1, VOCAB, (16, 7))
target = source.flip(1)
for epoch in range(5):
    optimizer.zero_grad()
    hidden = encoder(source)
    logits, _ = decoder(target[:, :-1], hidden)
    loss = criterion(logits.reshape(-1, VOCAB), target[:, 1:].reshape(-1))
    loss.backward()
    optimizer.step()
    print(epoch, loss.item())
