"""The one API a run process uses to talk to tuiexp (the public contract: docs/EVENTS.md).

    from tuiexp import track
    run = track.init(config=vars(args))     # params and run directory
    state = track.load_checkpoint()         # not None when this run is a fork or a resume
    for epoch in range(start, run.params["epochs"] + 1):
        ...
        track.log(step=step, train_loss=loss, lr=lr)   # cheap: appends to a buffer
        track.log({"val/acc": acc}, epoch=epoch)       # any name of [A-Za-z0-9_./-]
        track.save_checkpoint(state_dict, epoch)       # atomic
    track.finish()

Several runs in one process (a notebook, a script training several models):

    with track.start(experiment="mlp", params={"lr": lr}, metric="val/acc", mode="max") as run:
        run.log({"val/acc": 0.9}, epoch=1)             # leaving the block finishes the run

`log` never blocks on I/O: a background thread, woken by the first event after a
quiet spell, writes what is pending (a busy loop's events in batches, at most every
FLUSH_GAP seconds), and an exit, an exception or SIGTERM flushes what is left. A
run never touches the index; the supervisor reads this directory.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from ..errors import UsageError
from ..store import events
from ..store.metrics import MAX_NAMES
from ..store.paths import RunPaths
from . import exits
from .checks import NAME_RE, RESERVED
from .run import FLUSH_INTERVAL, MAX_BACKLOG, MAX_PENDING, Run, exception_status, params_of
from .standalone import create_run

__all__ = [
    "Cancelled",
    "Run",
    "SummaryWriter",
    "init",
    "start",
    "log",
    "log_params",
    "meta",
    "warning",
    "confusion",
    "save_checkpoint",
    "load_checkpoint",
    "flush",
    "finish",
    "current",
    "should_stop",
    "should_prune",
    "FLUSH_INTERVAL",
    "MAX_BACKLOG",
    "MAX_NAMES",
    "MAX_PENDING",
    "NAME_RE",
    "RESERVED",
]


class Cancelled(BaseException):
    """Raised in the main thread on SIGTERM, so a loop can checkpoint before it stops."""


_current: Run | None = None
_open: list[Run] = []  # every run this process opened and has not closed yet
_hooked = False


def init(run_dir: str | Path | None = None, params: dict[str, Any] | None = None, *,
         config: Any = None, experiment: str | None = None, metric: str | None = None,
         mode: str | None = None, logs: str | Path | None = None) -> Run:
    """Open this process's run: the directory comes from `TUIEXP_RUN_DIR` (set by the
    supervisor). Run by hand, a script gets a fresh run under `logs` (default
    $TUIEXP_LOGS or ./logs) with `params`, `experiment` (default: the script's name),
    `metric` and `mode`. `config` (a dict or argparse Namespace) records what the
    script really used: a `params` event, with a warning on contradicting the spec.

    A second init() returns the open run; asking for another directory while one is
    open raises UsageError, and so does reopening a run that already finished."""
    target = run_dir or os.environ.get("TUIEXP_RUN_DIR")
    used = params_of(config) if config is not None else None  # a bad config: nothing made
    if _current is not None:
        same = target is None or Path(target).resolve() == _current.dir.resolve()
        if not _current.finished and same:
            return _current
        if not _current.finished:
            raise UsageError(f"track.init({target!s}): run {_current.id} is open in this "
                             "process; finish it first, or use track.start() for several runs.")
        if target is not None and same:
            raise UsageError(f"track.init: run {_current.id} already finished; a finished "
                             "run cannot be reopened.")
    if target is None:
        target = create_run(experiment, params if params is not None else used or {},
                            metric, mode, logs)
    return _open_run(Path(target), used)


def start(experiment: str | None = None, params: dict[str, Any] | None = None, *,
          metric: str | None = None, mode: str | None = None, config: Any = None,
          logs: str | Path | None = None) -> Run:
    """Open a new run (always a new one), the current one until it ends; use it as
    `with track.start(...) as run:` — leaving the block finishes it (failed, with the
    exception, when one escapes). The run is created under `logs` (default
    $TUIEXP_LOGS, else the supervisor's logs dir when run by it, else ./logs)."""
    if logs is None and "TUIEXP_LOGS" not in os.environ and os.environ.get("TUIEXP_RUN_DIR"):
        logs = Path(os.environ["TUIEXP_RUN_DIR"]).resolve().parent.parent
    used = params_of(config) if config is not None else None
    target = create_run(experiment, params if params is not None else used or {},
                        metric, mode, logs)
    run = _open_run(target, used)
    if os.environ.get("TUIEXP_RUN_DIR"):
        _point_queued_run(RunPaths(Path(os.environ["TUIEXP_RUN_DIR"])), run)
    return run


def _point_queued_run(queued: RunPaths, run: Run) -> None:
    """A script the supervisor runs that opens runs of its own with start() leaves its
    queued run empty, to end `finished` with nothing in it: while that run's log is still
    empty, it says where the metrics went (a warning, shown by `ls` and `show`)."""
    message = (f"see run {run.id}: the script logged there, a run of its own opened with "
               "track.start() (track.init() writes into this queued run)")  # the id first: `ls` cuts
    try:
        if queued.events.exists() and queued.events.stat().st_size:
            return  # the script wrote here too (init), or was told once already
        events.append(queued.events, "warning", time.time(), {"message": message})
    except OSError:
        pass  # a word of advice: never a reason for the script to fail


def _open_run(run_dir: Path, used: dict[str, Any] | None) -> Run:
    global _current
    run = Run(run_dir)
    run.previous, run.on_close = _current, _closed
    _current = run
    _open.append(run)
    run.event("start", pid=os.getpid(), host=socket.gethostname(), argv=sys.argv)
    if used is not None:
        run.log_params(used)
    run.flush()
    _install_hooks(run)
    return run


def _closed(run: Run) -> None:
    """A run closed: it leaves the open list; the run before it is current again."""
    global _current
    if run in _open:
        _open.remove(run)
    if _current is run and run.previous is not None and not run.previous.closed:
        _current = run.previous  # else it stays current: logging to it says "after finish()"


def current() -> Run:
    """The run `track.log` and friends write to."""
    if _current is None:
        raise RuntimeError("call tuiexp.track.init() first")
    return _current


def log(data: dict[str, Any] | None = None, /, *, step: int | None = None,
        epoch: int | None = None, **metrics: Any) -> None:
    """Record metrics in the current run (see Run.log)."""
    run = _current if _current is not None else current()
    run.log(data, step=step, epoch=epoch, **metrics)


def log_params(config: Any) -> dict[str, Any]:
    return current().log_params(config)


def meta(**fields: Any) -> None:
    current().meta(**fields)


def warning(message: str) -> None:
    current().warning(message)


def confusion(epoch: int, labels: list[str], matrix: Any) -> None:
    current().confusion(epoch, labels, matrix)


def save_checkpoint(state: Any, epoch: int, tags: tuple[str, ...] = ()) -> Path:
    return current().save_checkpoint(state, epoch, tags)


def flush() -> None:
    """Write the current run's pending events durably (fsync). A script that saves its
    own checkpoints calls it first, so a kill after the save cannot lose the metrics the
    checkpoint already reflects (`save_checkpoint` does this itself)."""
    current().flush(sync=True)


def load_checkpoint(map_location: Any = "cpu") -> dict[str, Any] | None:
    return current().load_checkpoint(map_location)


def finish(status: str = "finished", message: str = "", **fields: Any) -> None:
    current().finish(status, message, **fields)


def should_stop() -> bool:
    """The current run's should_stop() (False when no run is open)."""
    return _current is not None and _current.should_stop()


def should_prune() -> bool:
    """The current run's should_prune() (False when no run is open)."""
    return _current is not None and _current.should_prune()


def _install_hooks(run: Run) -> None:
    """Once per process: exit, uncaught exceptions and SIGTERM end every open run."""
    global _hooked
    if run.standalone:
        exits.record_exit_codes()
    if _hooked:
        return
    _hooked = True
    atexit.register(_at_exit)
    _hook_exceptions()
    _hook_sigterm()
    _hook_usr1()


def _at_exit() -> None:
    for run in list(_open):
        if run.standalone:  # by hand there is no supervisor to read an exit code
            code = exits.exit_code()
            if code:
                run._end("failed", f"exited with code {code} ({exits.how()})")
            else:
                run._end("finished")
        run.close()


def _hook_exceptions() -> None:
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        status, message = exception_status(exc_type, exc, tb)
        for run in list(_open):
            run._end(status, message)
        previous(exc_type, exc, tb)

    sys.excepthook = hook


def _hook_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills outright
        raise Cancelled()

    signal.signal(signal.SIGTERM, on_term)


def _hook_usr1() -> None:
    """SIGUSR1 asks the open runs to stop at their next step (see Run.should_stop)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGUSR1) is not signal.SIG_DFL:
        return

    def on_usr1(signum: int, frame: FrameType | None) -> None:
        for run in _open:
            run.stop_asked = True

    signal.signal(signal.SIGUSR1, on_usr1)


from .tb import SummaryWriter  # noqa: E402 - it opens runs through init() above
