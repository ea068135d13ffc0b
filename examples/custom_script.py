"""A user's own training script run by tuiexp: `command = "python examples/custom_script.py"`.

It gets its params and run directory from `tuiexp.track`, logs step and epoch
metrics, saves a checkpoint each epoch, and starts from one when it is a fork
or a resume. Anything that speaks this protocol shows up in the dashboard.
"""

import torch
from torch import nn

from tuiexp import track

run = track.init()
p = run.params
torch.manual_seed(p.get("seed", 0))

# Two interleaved spirals: small, offline, and not linearly separable.
n = 2000
t = torch.rand(n) * 4 * torch.pi
label = torch.randint(0, 2, (n,))
r = t / (4 * torch.pi)
x = torch.stack([r * torch.cos(t + label * torch.pi), r * torch.sin(t + label * torch.pi)], 1)
x += 0.02 * torch.randn_like(x)
train, val = slice(0, 1600), slice(1600, n)

model = nn.Sequential(nn.Linear(2, p.get("hidden", 64)), nn.ReLU(),
                      nn.Linear(p.get("hidden", 64), p.get("hidden", 64)), nn.ReLU(),
                      nn.Linear(p.get("hidden", 64), 2))
opt = torch.optim.SGD(model.parameters(), lr=p.get("lr", 0.1), momentum=0.9)
start = 0
state = track.load_checkpoint()
if state is not None:  # a fork or a resume: continue from the saved epoch
    model.load_state_dict(state["model"])
    start = state["epoch"]
track.meta(classes=["inner", "outer"], num_params=sum(q.numel() for q in model.parameters()))

batch, step = p.get("batch_size", 64), start * (1600 // p.get("batch_size", 64))
for epoch in range(start + 1, p.get("epochs", 5) + 1):
    perm = torch.randperm(1600)
    for i in range(0, 1600, batch):
        idx = perm[i:i + batch]
        loss = nn.functional.cross_entropy(model(x[train][idx]), label[train][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        track.log(step=step, train_loss=loss.item(), lr=opt.param_groups[0]["lr"])
    with torch.no_grad():
        logits = model(x[val])
        pred = logits.argmax(1)
        val_loss = nn.functional.cross_entropy(logits, label[val]).item()
        val_acc = (pred == label[val]).float().mean().item()
        confusion = torch.zeros(2, 2, dtype=torch.long)
        confusion.index_put_((label[val], pred), torch.ones_like(pred), accumulate=True)
    track.log(epoch=epoch, train_loss=loss.item(), val_loss=val_loss, val_acc=val_acc)
    track.confusion(epoch, ["inner", "outer"], confusion)
    track.save_checkpoint({"model": model.state_dict(), "epoch": epoch}, epoch)
track.finish()
