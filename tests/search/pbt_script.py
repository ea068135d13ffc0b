"""A PBT member for tests: its score rises each epoch towards a ceiling set by `lr`
(best at 0.1); it checkpoints every epoch, a fork continues from its parent's
checkpoint, and it ends `pruned` when asked, as the built-in trainer does."""

import math
import time

from tuiexp import track

run = track.init()
p = run.params
lr, epochs = float(p["lr"]), int(p.get("epochs", 4))
state = track.load_checkpoint()
start, score = (int(state["epoch"]), float(state["score"])) if state else (0, 0.0)
for epoch in range(start + 1, epochs + 1):
    time.sleep(float(p.get("sleep", 0.0)))
    score += 1.0 - abs(math.log10(lr / 0.1))
    track.log({"val/score": score}, epoch=epoch)
    track.save_checkpoint({"epoch": epoch, "score": score}, epoch)
    if track.should_prune() and epoch < epochs:
        track.finish("pruned", f"replaced by the population after epoch {epoch}")
        break
else:
    track.finish()  # said, not left to an exit code a restarted supervisor cannot see
