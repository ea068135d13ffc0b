"""A fake run process for tests: speaks tuiexp.track without training anything.

Params it understands: epochs, steps_per_epoch, sleep (seconds per step),
crash_at_epoch (raise there), hang (sleep forever after epoch 1), classes,
checkpoint (bool: torch checkpoints, slow to import), nan_loss (log NaN
losses), stubborn_child (start a child that ignores SIGTERM), exit_before_init
(exit with this code before tuiexp.track starts, when the file it names exists).
"""

import json
import math
import os
import random
import subprocess
import sys
import time

spec = json.load(open(os.path.join(os.environ["TUIEXP_RUN_DIR"], "run.json")))
gate = spec["params"].get("exit_before_init")
if gate and os.path.exists(gate[1]):
    sys.exit(gate[0])

from tuiexp import track  # noqa: E402 - after the early exit on purpose

run = track.init()
p = run.params
if p.get("stubborn_child"):
    child = subprocess.Popen(["sh", "-c", "trap '' TERM; while true; do sleep 1; done"])
    open(os.path.join(run.dir, "child.pid"), "w").write(str(child.pid))
classes = p.get("classes", ["cat", "dog", "ship"])
start = 0
if p.get("checkpoint"):
    state = track.load_checkpoint()
    if state is not None:
        start = int(state["epoch"])
track.meta(classes=classes, num_params=1234)
rng = random.Random(p.get("seed", 0))
steps = p.get("steps_per_epoch", 5)
for epoch in range(start + 1, p.get("epochs", 3) + 1):
    for s in range(steps):
        step = (epoch - 1) * steps + s + 1
        track.log(step=step, train_loss=2.0 * math.exp(-step / 20) + 0.01 * rng.random(), lr=0.1)
        time.sleep(p.get("sleep", 0.0))
    if p.get("crash_at_epoch") == epoch:
        raise ValueError(f"boom at epoch {epoch}")
    acc = float("nan") if p.get("nan_loss") else 1 - 0.5 * math.exp(-epoch / 2)
    loss = float("nan") if p.get("nan_loss") else 1 / epoch
    track.log(epoch=epoch, train_loss=loss, val_loss=1.1 * loss, val_acc=acc, lr=0.1)
    n = len(classes)
    matrix = [[10 if i == j else (3 if j == (i + 1) % n else 0) for j in range(n)] for i in range(n)]
    track.confusion(epoch, classes, matrix)
    if p.get("checkpoint"):
        track.save_checkpoint({"epoch": epoch}, epoch)
    if p.get("hang") and epoch >= 1:
        track.current().flush()
        time.sleep(3600)
track.finish()
