"""A study trial written the way a user writes one (issue 20): it stops when
`track.should_prune()` turns true and then calls plain `track.finish()`, as an Optuna user
would `raise TrialPruned` — it does not say `pruned` itself.

Params: x (float; the score's ceiling is best near x = 0.3), epochs, sleep (seconds per
epoch), crash_above (raise at once when x is above it), gate (a file path; trials whose
number is at least `gated_from` wait for it to exist before they log anything)."""

import os
import time

from tuiexp import track

run = track.init()
p = run.params
x, epochs = float(p["x"]), int(p.get("epochs", 4))
if x > float(p.get("crash_above", 2.0)):
    raise ValueError(f"x = {x} is too much for this script")
gate = str(p.get("gate", ""))
if gate and int(run.spec.get("trial") or 0) >= int(p.get("gated_from", 1)):
    while not os.path.exists(gate):
        time.sleep(0.02)
ceiling = 1.0 - abs(x - 0.3)
for epoch in range(1, epochs + 1):
    time.sleep(float(p.get("sleep", 0.0)))
    track.log({"val/score": ceiling * epoch / epochs}, epoch=epoch)
    if track.should_prune():
        break
track.finish()
