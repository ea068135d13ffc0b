"""A run for the fault tests: deterministic, resumable bit-exactly, checkpointing every
epoch, so that a kill can land anywhere, inside a checkpoint write too.

Its state is a vector advanced by `advance` once per epoch; the tests recompute the
chain to check that a resumed run ends exactly where an uninterrupted one would.
Params: epochs, steps_per_epoch, sleep (seconds per step), size (vector length),
torch: true saves torch checkpoints through `track.save_checkpoint` (importing torch,
2-3 s of CPU per start); false keeps the state as a JSON file written with tuiexp's
atomic write (ckpt/state-NNNN.json), so most kills cost no torch import.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from tuiexp import track
from tuiexp.store import atomic


def advance(x: list[float], epoch: int) -> list[float]:
    return [(v * 3.0 + epoch) % 1e6 for v in x]


def initial(size: int) -> list[float]:
    return [float(i) for i in range(size)]


def json_states(ckpt: str) -> list[int]:
    return sorted(int(n[6:-5]) for n in os.listdir(ckpt)
                  if n.startswith("state-") and n.endswith(".json"))


def load(run: track.Run, use_torch: bool) -> tuple[list[float] | None, int]:
    if use_torch:
        state = track.load_checkpoint()
        return (None, 0) if state is None else (state["x"].tolist(), int(state["epoch"]))
    have = json_states(str(run.paths.ckpt))
    if not have:
        return None, 0
    state = json.loads((run.paths.ckpt / f"state-{have[-1]:04d}.json").read_text())
    return state["x"], int(state["epoch"])


def save(run: track.Run, use_torch: bool, x: list[float], epoch: int) -> None:
    if use_torch:
        import torch

        track.save_checkpoint({"epoch": epoch, "x": torch.tensor(x, dtype=torch.float64)}, epoch)
    else:
        track.flush()  # the epoch's event first: a resume from this state never logs it again
        atomic.write_json(run.paths.ckpt / f"state-{epoch:04d}.json", {"epoch": epoch, "x": x})
        track.current().event("checkpoint", epoch=epoch, path=f"ckpt/state-{epoch:04d}.json")


def main() -> None:
    run = track.init()
    p: dict[str, Any] = run.params
    x, start = load(run, p["torch"])
    x = initial(p["size"]) if x is None else x
    steps = p["steps_per_epoch"]
    for epoch in range(start + 1, p["epochs"] + 1):
        for s in range(steps):
            step = (epoch - 1) * steps + s + 1
            track.log(step=step, train_loss=x[step % len(x)] / 1e6)
            time.sleep(p["sleep"])
        x = advance(x, epoch)
        track.log(epoch=epoch, checksum=sum(x), val_acc=epoch / p["epochs"])
        save(run, p["torch"], x, epoch)
    track.finish()


if __name__ == "__main__":
    main()
