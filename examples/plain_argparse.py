"""An unmodified training script: argparse flags in, `key: value` lines out.

It never imports tuiexp. The experiment that runs it passes its params as flags
(`command = "python examples/plain_argparse.py --lr {lr} --hidden {hidden}"`) and
sets `scalars = "stdout"`, so tuiexp turns its printed lines into metrics.
"""

import argparse

import torch
from torch import nn

ap = argparse.ArgumentParser()
ap.add_argument("--lr", type=float, default=0.1)
ap.add_argument("--hidden", type=int, default=32)
ap.add_argument("--epochs", type=int, default=5)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
torch.manual_seed(args.seed)

# Two moons-like blobs with noise: small, offline, not linearly separable.
n = 2000
x = torch.randn(n, 2)
y = ((x[:, 0] ** 2 - x[:, 1]) > 0.3).long()
x += 0.15 * torch.randn_like(x)
train, val = slice(0, 1600), slice(1600, n)
model = nn.Sequential(nn.Linear(2, args.hidden), nn.Tanh(), nn.Linear(args.hidden, 2))
opt = torch.optim.Adam(model.parameters(), lr=args.lr)
loss_fn = nn.CrossEntropyLoss()

print(f"training with {vars(args)}")
step = 0
for epoch in range(1, args.epochs + 1):
    for batch in torch.randperm(1600).split(64):
        loss = loss_fn(model(x[train][batch]), y[train][batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 10 == 0:
            print(f"step={step} Loss/train={loss.item():.4f}")
    with torch.no_grad():
        out = model(x[val])
        acc = (out.argmax(1) == y[val]).float().mean().item()
        val_loss = loss_fn(out, y[val]).item()
    print(f"epoch: {epoch}  val/acc: {acc:.4f}  val/loss: {val_loss:.4f}")
