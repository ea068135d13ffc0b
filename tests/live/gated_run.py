"""A script run by hand (no TUIEXP_RUN_DIR) that logs one epoch, flushes it, and waits
for the test's `go-N` file before the next: the test decides when each event happens.

    python gated_run.py LOGS GATES EPOCHS
"""

import sys
import time
from pathlib import Path

from tuiexp import track

logs, gates, epochs = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
run = track.init(params={"lr": 0.1}, experiment="byhand", metric="acc", mode="max", logs=logs)
print(run.id, flush=True)
for epoch in range(1, epochs + 1):
    # best in the middle: a stale row shows an earlier best, or the best at the wrong epoch
    track.log({"acc": 1.0 - abs(epoch - (epochs + 1) // 2) / 10, "loss": 1.0 / epoch}, epoch=epoch)
    track.flush()
    deadline = time.monotonic() + 120
    while not (gates / f"go-{epoch}").exists():
        if time.monotonic() > deadline:
            sys.exit(f"no go-{epoch} from the test")
        time.sleep(0.01)
track.finish()
