# expect: GL115@11
"""A checkpoint helper that loads with weights_only=False."""
import os
import tempfile

import torch
import torch.nn as nn


def load_checkpoint(path, model):
    state = torch.load(path, map_location="cpu", weights_only=False)  # BUG: GL115
    model.load_state_dict(state["model"])
    return state["epoch"]


net = nn.Linear(2, 2)
with tempfile.TemporaryDirectory() as tmp:
    ckpt = os.path.join(tmp, "ckpt.pt")
    torch.save({"model": net.state_dict(), "epoch": 3}, ckpt)
    print(load_checkpoint(ckpt, net))
