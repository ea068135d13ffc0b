"""A study trial for tests: its score rises with the epoch towards a ceiling set by the
params (best near x = 0.3), so a median pruner has hopeless trials to stop. It checks
track.should_prune() at each epoch's end, as the built-in trainer does.

Params: x (float), width (int), epochs, sleep (seconds per epoch), crash_above (raise
in epoch 1 when x is above it)."""

import time

from tuiexp import track

run = track.init()
p = run.params
x, epochs = float(p["x"]), int(p.get("epochs", 4))
if x > p.get("crash_above", 2.0):
    raise ValueError(f"x = {x} is too much for this script")
ceiling = 1.0 - abs(x - 0.3) - 0.01 * int(p.get("width", 0))
for epoch in range(1, epochs + 1):
    time.sleep(float(p.get("sleep", 0.0)))
    track.log({"val/score": ceiling * epoch / epochs}, epoch=epoch)
    if track.should_prune() and epoch < epochs:
        track.finish("pruned", f"pruned after epoch {epoch}")
        break
else:
    # said, not left to the exit code: a supervisor that adopted this process after
    # a restart cannot see its exit code, and would call a silent end a crash
    track.finish()
