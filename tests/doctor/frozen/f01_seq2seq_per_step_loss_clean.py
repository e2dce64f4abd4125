# expect: clean
"""Seq2seq with a step-by-step decoder: the batch loss is summed over time steps, then one backward per batch."""
import random

import torch
from torch import nn

VOCAB, HID, LENGTH = 10, 16, 6
torch.manual_seed(0)
random.seed(0)


class EncoderRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, HID)
        self.gru = nn.GRU(HID, HID)

    def forward(self, seq):
        _, h = self.gru(self.embedding(seq))
        return h


class DecoderRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, HID)
        self.gru = nn.GRU(HID, HID)
        self.out = nn.Linear(HID, VOCAB)

    def forward(self, token, h):
        o, h = self.gru(self.embedding(token).unsqueeze(0), h)
        return self.out(o.squeeze(0)), h


encoder, decoder = EncoderRNN(), DecoderRNN()
enc_opt = torch.optim.SGD(encoder.parameters(), lr=0.05)
dec_opt = torch.optim.SGD(decoder.parameters(), lr=0.05)
criterion = nn.CrossEntropyLoss()
for it in range(8):
    src = torch.randint(1, VOCAB, (LENGTH, 4))
    tgt = src.flip(0)
    enc_opt.zero_grad()
    dec_opt.zero_grad()
    hidden = encoder(src)
    token = torch.zeros(4, dtype=torch.long)
    loss = 0
    for t in range(LENGTH):
        logits, hidden = decoder(token, hidden)
        loss += criterion(logits, tgt[t])
        token = tgt[t] if random.random() < 0.5 else logits.argmax(1).detach()
    loss.backward()
    enc_opt.step()
    dec_opt.step()
    print(it, loss.item() / LENGTH)
