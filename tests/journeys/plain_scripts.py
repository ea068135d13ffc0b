"""The scripts of the plain-script journeys (CLI and dashboard): they have never heard
of tuiexp and print what they print."""

#: a training script that has never heard of tuiexp: a banner, then one line per epoch
FIT = """
import argparse, time
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--epochs", type=int, default=6)
args = p.parse_args()
print(f"training with lr={args.lr} seed={args.seed}", flush=True)
loss, acc = 2.85, 0.1
for epoch in range(1, args.epochs + 1):
    time.sleep(0.3)
    loss, acc = loss * 0.9, acc + 0.026
    print(f"epoch {epoch} train_loss {loss:.3f} val_acc {acc:.3f}", flush=True)
print("done")
"""

#: a script whose output holds no metric at all
QUIET = """
print("loading data")
for batch in range(3):
    print("working on batch", batch)
print("done, results written to out/")
"""
