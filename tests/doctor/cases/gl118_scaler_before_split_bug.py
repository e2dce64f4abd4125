# expect: GL118@12
"""sklearn StandardScaler fitted on everything before train_test_split."""
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

rng = np.random.default_rng(0)
features = rng.normal(size=(100, 3)) * 5
target = features[:, 0] * 2
scaler = StandardScaler()
features_scaled = scaler.fit_transform(features)  # BUG: GL118
x_tr, x_te, y_tr, y_te = train_test_split(features_scaled, target, test_size=0.2, random_state=0)
model = torch.nn.Linear(3, 1)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
xt = torch.tensor(x_tr, dtype=torch.float32)
yt = torch.tensor(y_tr, dtype=torch.float32).unsqueeze(1)
for epoch in range(5):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(xt), yt)
    loss.backward()
    opt.step()
