"""The one API a run process uses to talk to tuiexp (the public contract: docs/EVENTS.md).

    from tuiexp import track
    run = track.init()                      # params and run directory
    state = track.load_checkpoint()         # not None when this run is a fork or a resume
    for epoch in range(start, run.params["epochs"] + 1):
        ...
        track.log(step=step, train_loss=loss, lr=lr)   # cheap: appends to a buffer
        track.log(epoch=epoch, val_acc=acc)
        track.save_checkpoint(state_dict, epoch)       # atomic
    track.finish()

`log` never blocks on I/O: a background thread writes batches every
FLUSH_INTERVAL seconds, and an exit, an exception or SIGTERM flushes what is
left. A run never touches the index; the supervisor reads this directory.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from .core import events, runstore
from .core.atomic import fsync_dir
from .core.paths import RunPaths
from .core.runstore import checkpoint_epochs, create_standalone

FLUSH_INTERVAL = 0.2
MAX_PENDING = 100_000  # past this many unflushed events, log() flushes inline
STOP_CHECK_EVERY = 0.5  # seconds between looks for a stop.request file (cheap on NFS too)

__all__ = [
    "Cancelled",
    "Run",
    "init",
    "log",
    "meta",
    "confusion",
    "save_checkpoint",
    "load_checkpoint",
    "finish",
    "current",
    "should_stop",
]


class Cancelled(BaseException):
    """Raised in the main thread on SIGTERM, so a loop can checkpoint before it stops."""


class Run:
    """A run process's handle on its own directory."""

    def __init__(self, run_dir: Path):
        self.paths = RunPaths(Path(run_dir))
        self.paths.ckpt.mkdir(parents=True, exist_ok=True)
        self.spec: dict[str, Any] = json.loads(self.paths.spec.read_text())
        self.params: dict[str, Any] = dict(self.spec.get("params", {}))
        # deque: append and popleft are atomic, so log() needs no lock and loses nothing
        self._pending: deque[tuple[float, str, dict[str, Any]]] = deque()
        self._write_lock = threading.Lock()
        self._fd = os.open(self.paths.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        events.ensure_line_start(self._fd, self.paths.events)
        self._finished = False
        self._closed = False
        self._stop = threading.Event()
        self._stop_asked = False  # SIGUSR1 or a stop.request file: checkpoint, exit, requeue
        self._stop_checked = 0.0
        self._flusher = threading.Thread(target=self._flush_loop, name="tuiexp-flush", daemon=True)
        self._flusher.start()

    # -- identity -----------------------------------------------------------
    @property
    def id(self) -> str:
        return self.paths.run_id

    @property
    def dir(self) -> Path:
        return self.paths.dir

    @property
    def parent(self) -> str | None:
        return self.spec.get("parent")

    @property
    def fork_epoch(self) -> int | None:
        return self.spec.get("fork_epoch")

    # -- events ---------------------------------------------------------------
    def log(self, *, step: int | None = None, epoch: int | None = None, **metrics: Any) -> None:
        """Record metrics: a `step` event when `step` is given, else an `epoch` event."""
        if step is not None:
            kind = "step"
            metrics["step"] = step
            if epoch is not None:
                metrics["epoch"] = epoch
        elif epoch is not None:
            kind = "epoch"
            metrics["epoch"] = epoch
        else:
            raise TypeError("track.log needs step= or epoch=")
        self.event(kind, **metrics)

    def event(self, kind: str, **fields: Any) -> None:
        """Append any event (see docs/EVENTS.md for the kinds readers know)."""
        self._pending.append((time.time(), kind, fields))
        if len(self._pending) >= MAX_PENDING:
            self.flush()

    def meta(self, **fields: Any) -> None:
        """Facts about the run: classes, num_params, device, dataset sizes..."""
        self.event("meta", **fields)

    def confusion(self, epoch: int, labels: list[str], matrix: Any) -> None:
        """The validation confusion matrix: rows are true classes, columns predicted."""
        rows = matrix.tolist() if hasattr(matrix, "tolist") else [list(r) for r in matrix]
        self.event("confusion", epoch=epoch, labels=list(labels), matrix=rows)

    def flush(self, sync: bool = False) -> None:
        """Write every pending event (one write call, in order); fsync when `sync`."""
        with self._write_lock:
            if self._closed:
                return
            pop = self._pending.popleft
            data = b"".join(events.encode(k, t, f) for t, k, f in
                            (pop() for _ in range(len(self._pending))))
            if data:
                os.write(self._fd, data)
            if sync:
                os.fsync(self._fd)

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except OSError:  # disk full or dir gone: keep the run alive, retry later
                pass

    # -- stopping to be requeued -----------------------------------------------
    def should_stop(self) -> bool:
        """True once the run is asked to stop and be requeued: SIGUSR1 (Slurm sends it
        before a time limit) or a `stop.request` file in the run directory. A loop that
        sees it saves what it needs, calls `finish("preempted")` and exits; the
        supervisor queues the run again and it resumes from its last checkpoint."""
        if not self._stop_asked:
            now = time.monotonic()
            if now - self._stop_checked >= STOP_CHECK_EVERY:
                self._stop_checked = now
                self._stop_asked = self.paths.stop.exists()
        return self._stop_asked

    # -- checkpoints -----------------------------------------------------------
    def save_checkpoint(self, state: Any, epoch: int, tags: tuple[str, ...] = ()) -> Path:
        """torch.save `state` atomically (tmp, fsync, rename) as the checkpoint of `epoch`."""
        import torch  # lazily: the UI and core never pay for torch

        path = self.paths.checkpoint(epoch)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        self.event("checkpoint", epoch=epoch, path=str(path.relative_to(self.dir)), tags=list(tags))
        self.flush(sync=True)
        return path

    def delete_checkpoint(self, epoch: int) -> None:
        """Drop an epoch's checkpoint (retention); a fork already made holds its own link."""
        path = self.paths.checkpoint(epoch)
        if path.exists():
            path.unlink()
            self.event("checkpoint_removed", epoch=epoch)

    def checkpoint_epochs(self) -> list[int]:
        return checkpoint_epochs(self.paths)

    def load_checkpoint(self, map_location: Any = "cpu") -> dict[str, Any] | None:
        """The state to start from: this run's latest checkpoint (a resume), else the
        parent's checkpoint it was forked from, else None (a fresh start).

        The returned dict gains `_source` ("resume" or "fork")."""
        import torch

        own = self.checkpoint_epochs()
        if own:
            path, source = self.paths.checkpoint(own[-1]), "resume"
        elif (self.paths.ckpt / "init.pt").exists():
            path, source = self.paths.ckpt / "init.pt", "fork"
        else:
            return None
        state = torch.load(path, map_location=map_location, weights_only=True)
        state["_source"] = source
        return state

    # -- ending ----------------------------------------------------------------
    def finish(self, status: str = "finished", message: str = "", **fields: Any) -> None:
        """Write the run's final status and flush everything, durably."""
        if self._finished:
            return
        self._finished = True
        self.event("status", status=status, message=message, **fields)
        self.flush(sync=True)

    def close(self) -> None:
        self._stop.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        try:
            self.flush(sync=True)
        finally:
            with self._write_lock:
                if not self._closed:
                    self._closed = True
                    os.close(self._fd)


_current: Run | None = None


def init(run_dir: str | Path | None = None, params: dict[str, Any] | None = None) -> Run:
    """Open this process's run: the directory comes from `TUIEXP_RUN_DIR` (set by the
    supervisor). Run by hand, a script gets a fresh run under ./logs that
    `tuiexp reindex` picks up; `params` then become its params."""
    global _current
    if _current is not None:
        return _current
    run_dir = run_dir or os.environ.get("TUIEXP_RUN_DIR")
    if run_dir is None:
        run_dir = _standalone_run(params or {})
    run = Run(Path(run_dir))
    _current = run
    run.event("start", pid=os.getpid(), host=socket.gethostname(), argv=sys.argv)
    run.flush()
    atexit.register(_at_exit)
    _hook_exceptions(run)
    _hook_sigterm()
    _hook_usr1()
    return run


def current() -> Run:
    if _current is None:
        raise RuntimeError("call tuiexp.track.init() first")
    return _current


def log(*, step: int | None = None, epoch: int | None = None, **metrics: Any) -> None:
    current().log(step=step, epoch=epoch, **metrics)


def meta(**fields: Any) -> None:
    current().meta(**fields)


def confusion(epoch: int, labels: list[str], matrix: Any) -> None:
    current().confusion(epoch, labels, matrix)


def save_checkpoint(state: Any, epoch: int, tags: tuple[str, ...] = ()) -> Path:
    return current().save_checkpoint(state, epoch, tags)


def load_checkpoint(map_location: Any = "cpu") -> dict[str, Any] | None:
    return current().load_checkpoint(map_location)


def finish(status: str = "finished", message: str = "", **fields: Any) -> None:
    current().finish(status, message, **fields)


def should_stop() -> bool:
    """The current run's should_stop() (False when no run is open)."""
    return _current is not None and _current.should_stop()


def _at_exit() -> None:
    if _current is None:
        return
    proc = runstore.read_json(_current.paths.proc) or {}
    if proc.get("standalone"):
        _current.finish()  # by hand there is no supervisor to read an exit code
    _current.close()


def _hook_exceptions(run: Run) -> None:
    previous = sys.excepthook

    def hook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
        if issubclass(exc_type, Cancelled):
            run.finish("cancelled", "cancelled by SIGTERM")
        elif issubclass(exc_type, KeyboardInterrupt):
            run.finish("cancelled", "interrupted")
        else:
            run.finish("failed", f"{exc_type.__name__}: {exc}{_where(tb)}")
        previous(exc_type, exc, tb)

    sys.excepthook = hook


def _where(tb: Any) -> str:
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return ""
    code = last.tb_frame.f_code
    return f" (at {Path(code.co_filename).name}:{last.tb_lineno} in {code.co_name})"


def _hook_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_term(signum, frame):  # type: ignore[no-untyped-def]
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills outright
        raise Cancelled()

    signal.signal(signal.SIGTERM, on_term)


def _hook_usr1() -> None:
    """SIGUSR1 asks the run to stop at its next step (see Run.should_stop)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGUSR1) is not signal.SIG_DFL:
        return

    def on_usr1(signum, frame):  # type: ignore[no-untyped-def]
        if _current is not None:
            _current._stop_asked = True

    signal.signal(signal.SIGUSR1, on_usr1)


def _standalone_run(params: dict[str, Any]) -> Path:
    return create_standalone(Path("logs"), Path(sys.argv[0]).stem or "script", params)
