"""`Run`: a run process's handle on its own directory (the event buffer and its writer)."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..store import atomic, events, runstore
from ..store.atomic import fsync_dir
from ..store.events import VERSION
from ..store.metrics import MAX_EPOCH, MAX_NAMES
from ..store.paths import RunPaths
from ..store.runstore import checkpoint_epochs
from . import checks, exits

FLUSH_INTERVAL = 0.2  # the longest an event waits in memory while a run logs busily
#: the shortest gap between two flushes: the first event after a quiet spell is written
#: at once (a 10 Hz logger's events are visible within milliseconds), a busy loop's are
#: written in batches, one write call each
FLUSH_GAP = 0.005
MAX_PENDING = 100_000  # past this many unflushed events, log() flushes inline
#: bytes kept in memory while the disk refuses them (ENOSPC); past this, new events are
#: counted and dropped (a terminal status is always kept) and a warning says how many
MAX_BACKLOG = 64 << 20
STOP_CHECK_EVERY = 0.5  # seconds between looks for a stop.request file (cheap on NFS too)
#: how long a study's trial waits at an epoch's end for the pruner's verdict on it: a
#: tenth of an epoch, within these bounds (the supervisor answers within its tick)
JUDGE_WAIT = (0.5, 5.0)
WRITEV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024)  # lines per writev call
#: bytes per write call: one 13 MB write took ten times as long as 256 KiB pieces (ext4,
#: the dirty-page throttle works per call)
WRITE_BYTES = 256 << 10
_TMP_RE = re.compile(r"^\..+\.(\d+)\.tmp$")  # save_checkpoint's `.epoch-N.pt.<pid>.tmp`


class Run:
    """A run process's handle on its own directory."""

    def __init__(self, run_dir: Path):
        self.paths = RunPaths(Path(run_dir))
        self.paths.ckpt.mkdir(parents=True, exist_ok=True)
        remove_orphan_tmp(self.paths.ckpt)
        self.spec: dict[str, Any] = json.loads(self.paths.spec.read_text())
        self.params: dict[str, Any] = dict(self.spec.get("params", {}))
        proc = runstore.read_json(self.paths.proc) or {}
        #: started by hand (no supervisor reads its exit code): tuiexp writes its status
        self.standalone = bool(proc.get("standalone"))
        # deque: append and popleft are atomic, so log() needs no lock and loses nothing
        #: log()'s events as whole dicts (metric names and numbers, `v`, `t`, `kind`), any
        #: other as (t, kind, fields)
        self._pending: deque[dict[str, Any] | tuple[float, str, dict[str, Any]]] = deque()
        self._names: set[str] = set()  # metric names already checked (the regex runs once)
        self._names_warned = False
        self._backlog = bytearray()  # encoded, not yet written (the disk refused it)
        self._dropped = 0  # events lost because the backlog was full, not yet warned about
        self._lost = 0  # every event dropped so far (the final record counts them all)
        self._refused: OSError | None = None  # why the disk last refused a write
        # the final record's space, taken while there is some (store/atomic.py reserve)
        atomic.reserve(self.paths.final)
        self._write_lock = threading.Lock()
        self._wake = threading.Event()  # set by the first event logged after a flush
        self._unsynced = False  # written since the last fsync
        self._fd = os.open(self.paths.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        events.ensure_line_start(self._fd, self.paths.events)
        self._finished: str | None = None  # the terminal status once finish() ran
        self._final_message = ""
        self._closed = False
        #: the run that was current before this one (a `with` block restores it)
        self.previous: Run | None = None
        self.on_close: Callable[[Run], None] | None = None
        self._stop = threading.Event()
        self.stop_asked = False  # SIGUSR1 or a stop.request file: checkpoint, exit, requeue
        self._stop_checked = 0.0
        self.prune_asked = False  # a study's pruner wrote prune.request: finish("pruned")
        self._prune_checked = 0.0
        #: the last epoch logged and when (a trial waits for its verdict), the last judged
        self._epoch_logged: tuple[int, float, float] | None = None  # epoch, at, seconds it took
        self._judged = -1
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

    @property
    def finished(self) -> bool:
        return self._finished is not None

    @property
    def closed(self) -> bool:
        return self._closed

    # -- events ---------------------------------------------------------------
    def log(self, data: dict[str, Any] | None = None, /, *, step: int | None = None,
            epoch: int | None = None, **metrics: Any) -> None:
        """Record metrics: a `step` event when `step` is given, else an `epoch` event.

        Names that are not identifiers go in `data`: `run.log({"val/acc": 0.9}, epoch=3)`.
        Raises TypeError for a value that is not a real number, ValueError for a bad
        name or a step/epoch outside [0, 2**63), RuntimeError after finish()."""
        if self._finished is not None:
            raise self._final_error("track.log")
        if data is not None:
            metrics = {**data, **metrics}
        if not self._names.issuperset(metrics):
            self._admit(metrics)
        for value in metrics.values():
            if type(value) is not float:  # the common case costs one type test per value
                self._check_values(metrics)
                break
        if step is not None:
            if type(step) is not int or not 0 <= step < 2**63:
                step = checks.check_index("step", step)
            metrics["step"] = step
            kind = "step"
            if epoch is not None:
                if type(epoch) is not int or not 0 <= epoch < MAX_EPOCH:
                    epoch = checks.check_index("epoch", epoch)
                metrics["epoch"] = epoch
        elif epoch is not None:
            if type(epoch) is not int or not 0 <= epoch < MAX_EPOCH:
                epoch = checks.check_index("epoch", epoch)
            metrics["epoch"] = epoch
            kind = "epoch"
            now = time.monotonic()
            before = self._epoch_logged
            self._epoch_logged = (epoch, now, now - before[1] if before else 0.0)
        else:
            raise TypeError("track.log needs step= or epoch=")
        # the head goes in with the metrics (names are checked: none is v, t or kind), so
        # the flush writes the dict as it is, many to an orjson call
        metrics["v"] = VERSION
        metrics["t"] = time.time()
        metrics["kind"] = kind
        pending = self._pending
        pending.append(metrics)
        n = len(pending)
        if n == 1:  # the first since the flush thread last emptied it: wake it
            self._wake.set()
        elif n >= MAX_PENDING:
            self._flush_quietly()

    @staticmethod
    def _check_values(metrics: dict[str, Any]) -> None:
        check = checks.check_value
        for name, value in metrics.items():
            if type(value) is not float:
                metrics[name] = check(name, value)  # same keys: safe while iterating

    def _admit(self, metrics: dict[str, Any]) -> None:
        """Check names not seen before; past MAX_NAMES, drop new ones with one warning."""
        for name in [n for n in metrics if n not in self._names]:
            checks.check_name(name)
            if len(self._names) < MAX_NAMES:
                self._names.add(name)
                continue
            del metrics[name]
            if not self._names_warned:
                self._names_warned = True
                self.warning(f"more than {MAX_NAMES} metric names: '{name}' and any "
                             "later new name are dropped")

    def event(self, kind: str, **fields: Any) -> None:
        """Append any event (see docs/EVENTS.md for the kinds readers know)."""
        if self._finished is not None:
            raise self._final_error(f"an event ({kind})")
        self._pending.append((time.time(), kind, fields))
        n = len(self._pending)
        if n == 1:
            self._wake.set()
        elif n >= MAX_PENDING:
            self._flush_quietly()

    def meta(self, **fields: Any) -> None:
        """Facts about the run: classes, num_params, device, dataset sizes..."""
        self.event("meta", **fields)

    def warning(self, message: str) -> None:
        """Something the user should see: a `warning` event, also printed on stderr."""
        say(f"tuiexp: warning: {message}")
        self.event("warning", message=message)

    def log_params(self, config: Any) -> dict[str, Any]:
        """Record the parameters the script really used (a dict, an argparse Namespace,
        a dataclass) as a `params` event; readers merge them over the spec's params.

        A key whose value contradicts the spec's gets a `warning` event and one line on
        stderr. Returns the params as written (JSON values)."""
        used = params_of(config)
        self.event("params", params=used)
        for key in sorted(used.keys() & self.spec.get("params", {}).keys()):
            spec_value = self.spec["params"][key]
            if not _same(spec_value, used[key]):
                self.warning(f"param '{key}': the spec says {spec_value!r} but the script "
                             f"used {used[key]!r}")
        self.params.update(used)
        return used

    def confusion(self, epoch: int, labels: list[str], matrix: Any) -> None:
        """The validation confusion matrix: rows are true classes, columns predicted; one
        row and one column per label (ValueError otherwise, at the call)."""
        epoch = checks.check_index("epoch", epoch)
        names, rows = checks.check_confusion(labels, matrix)
        self.event("confusion", epoch=epoch, labels=names, matrix=rows)

    def _final_error(self, what: str) -> RuntimeError:
        return RuntimeError(f"{what} after finish(): run {self.id} already ended "
                            f"'{self._finished}'; finish() is final.")

    # -- writing -----------------------------------------------------------------
    def flush(self, sync: bool = False) -> None:
        """Write every pending event (one write call, in order); fsync when `sync`.

        An event that cannot be encoded is written without the offending fields, with
        a `warning` event naming them. An OSError (disk full) keeps the bytes to retry
        at the next flush and is raised to the caller."""
        with self._write_lock:
            if self._closed:
                return
            lines, keep = self._encode_pending()
            self._write(lines, keep)
            if self._dropped:
                n, self._dropped = self._dropped, 0
                self._backlog += events.encode("warning", time.time(), {
                    "message": f"{n} events were dropped while the disk refused writes"})
                self._write_backlog()
            if sync and self._unsynced:
                os.fsync(self._fd)
                self._unsynced = False

    def _encode_pending(self) -> tuple[list[bytes | memoryview], bool]:
        """The pending events as lines, and whether they hold a status (kept whatever the
        backlog). log()'s events are written in bulk (events.encode_metric_events)."""
        pop = self._pending.popleft
        lines: list[bytes | memoryview] = []
        logged: list[dict[str, Any]] = []
        keep = False
        for _ in range(len(self._pending)):
            event = pop()
            if isinstance(event, dict):
                logged.append(event)
                continue
            t, kind, fields = event
            if logged:
                lines += self._encode_logged(logged)
                logged = []
            lines.append(self._encode(t, kind, fields))
            keep = keep or kind == "status"
        if logged:
            lines += self._encode_logged(logged)
        return lines, keep

    def _encode_logged(self, objs: list[dict[str, Any]]) -> list[bytes | memoryview]:
        try:
            return events.encode_metric_events(objs)
        except Exception:  # noqa: BLE001 - a value that cannot be read: found one by one
            return [self._encode(obj.pop("t"), obj.pop("kind"), obj)
                    for obj in objs if obj.pop("v", True)]

    def _encode(self, t: float, kind: str, fields: dict[str, Any]) -> bytes:
        data, problems = events.encode_safe(kind, t, fields)
        if problems:
            message = f"{kind} event at t={t:.3f}: left out {problems}"
            say(f"tuiexp: warning: {message}")
            data += events.encode("warning", t, {"message": message})
        return data

    def _write(self, lines: list[bytes | memoryview], keep: bool) -> None:
        """Write `lines` after what the disk refused before; what it refuses now is kept
        (and its OSError raised)."""
        done, torn = self._writev(lines) if not self._backlog else (0, False)
        if done < len(lines):
            rest = b"".join(lines[done:])
            if torn:  # the end of a line the disk took the start of: kept, whatever the bound
                end = rest.find(b"\n") + 1
                self._backlog += rest[:end]
                rest = rest[end:]
            self._queue_bytes(rest, keep)
            self._write_backlog()

    def _writev(self, lines: list[bytes | memoryview]) -> tuple[int, bool]:
        """Write lines straight from where they are (no copy of a big batch); returns how
        many were written whole, and whether the disk took part of the next (its rest is
        left in its place). An OSError stops (the backlog retries it)."""
        done = 0
        try:
            while done < len(lines):
                end, size = done, 0
                while end < len(lines) and size < WRITE_BYTES and end - done < WRITEV_MAX:
                    size += len(lines[end])
                    end += 1
                batch = lines[done:end]
                written = os.writev(self._fd, batch)
                self._unsynced = True
                for line in batch:
                    if written < len(line):
                        lines[done] = line[written:]
                        return done, written > 0
                    written -= len(line)
                    done += 1
        except OSError:
            pass
        return done, False

    def _queue_bytes(self, data: bytes, keep: bool) -> None:
        """Append to what is to be written; past MAX_BACKLOG only a final status is kept."""
        if len(self._backlog) + len(data) <= MAX_BACKLOG or keep:
            self._backlog += data
        else:
            n = events.count(data)
            self._dropped += n
            self._lost += n

    def _write_backlog(self) -> None:
        while self._backlog:  # a short write (the disk filling up) leaves the rest queued
            try:
                written = os.write(self._fd, self._backlog)
            except OSError as e:
                self._refused = e
                raise
            if written < len(self._backlog):  # the disk took part: it is full
                if self._backlog[written - 1] != 0x0A:
                    written = self._untear(written)
                del self._backlog[:written]
                self._refused = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                raise self._refused
            del self._backlog[:written]
            self._unsynced = True

    def _untear(self, written: int) -> int:
        """A short write ended inside an event: take that part back, so the log holds
        whole events only and the event stays queued whole (the count of events lost
        stays exact). Returns the bytes that stay written."""
        whole = self._backlog.rfind(b"\n", 0, written) + 1
        try:
            os.ftruncate(self._fd, os.fstat(self._fd).st_size - (written - whole))
        except OSError:
            return written  # the rest of the line follows it when the disk takes it
        return whole

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except OSError:  # the backlog keeps the events; the flush thread retries
            pass

    def _flush_loop(self) -> None:
        """Flush when woken by the first event after a flush (at most every FLUSH_GAP),
        else every FLUSH_INTERVAL (a backlog the disk refused), until closed; nothing it
        meets may end it."""
        last = 0.0
        while not self._stop.is_set():
            self._wake.wait(FLUSH_INTERVAL)
            gap = FLUSH_GAP - (time.monotonic() - last)
            if gap > 0 and self._stop.wait(gap):  # a busy loop: batch what it logs
                break
            self._wake.clear()  # before flushing: an event logged after this wakes it again
            last = time.monotonic()
            try:
                self.flush()
            except OSError:  # disk full or dir gone: keep the run alive, retry later
                pass
            except Exception as e:  # a bug must not silently stop all later writes
                say(f"tuiexp: flush failed, will retry: {e!r}")

    # -- checkpoints -----------------------------------------------------------
    def save_checkpoint(self, state: Any, epoch: int, tags: tuple[str, ...] = ()) -> Path:
        """torch.save `state` atomically (tmp, fsync, rename) as the checkpoint of `epoch`."""
        import torch  # lazily: the UI and core never pay for torch

        if self._finished is not None:
            raise self._final_error("save_checkpoint")
        epoch = checks.check_index("epoch", epoch)
        path = self.paths.checkpoint(epoch)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        # What the state reflects (this epoch's metrics) is on disk before the state is:
        # a kill after the rename resumes past this epoch and would never log it again.
        self.flush(sync=True)
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

    # -- stopping to be requeued -----------------------------------------------
    def should_stop(self) -> bool:
        """True once the run is asked to stop and be requeued: SIGUSR1 (Slurm sends it
        before a time limit) or a `stop.request` file in the run directory. A loop that
        sees it saves what it needs, calls `finish("preempted")` and exits; the
        supervisor queues the run again and it resumes from its last checkpoint."""
        if not self.stop_asked:
            now = time.monotonic()
            if now - self._stop_checked >= STOP_CHECK_EVERY:
                self._stop_checked = now
                self.stop_asked = self.paths.stop.exists()
        return self.stop_asked

    def should_prune(self) -> bool:
        """True once a study's pruner judged this trial hopeless (a `prune.request` file
        in the run directory, looked for at most every 0.5 s). A loop that sees it at an
        epoch's end keeps its checkpoints, calls `finish("pruned")` (or just stops: a run
        that ends after the request is `pruned`) and exits.

        A trial asking right after it logged an epoch on which its pruner can rule
        (`judged.json` says where, docs/SEARCH.md) first waits for that verdict (a tenth
        of an epoch, 0.5 to 5 s at most), so a hopeless trial does not train one more
        epoch while the supervisor reads the report; elsewhere it does not wait."""
        if not self.prune_asked and self.spec.get("study") and self._epoch_logged:
            epoch, _, seconds = self._epoch_logged
            self._await_verdict(epoch, seconds)
        if not self.prune_asked:
            now = time.monotonic()
            if now - self._prune_checked >= STOP_CHECK_EVERY:
                self._prune_checked = now
                self.prune_asked = self.paths.prune.exists()
        return self.prune_asked

    def _await_verdict(self, epoch: int, seconds: float) -> None:
        if self._judged >= epoch:
            return
        self._judged = epoch  # asked once per epoch, verdict or not
        if not _verdict_due(runstore.read_json(self.paths.judged), epoch):
            return
        self.flush()  # the supervisor judges what it has read
        lo, hi = JUDGE_WAIT
        deadline = time.monotonic() + min(hi, max(lo, seconds / 10))
        while not self.paths.prune.exists():
            if not _verdict_due(runstore.read_json(self.paths.judged), epoch) \
                    or time.monotonic() > deadline:
                return  # judged, or no verdict in time: go on
            time.sleep(0.01)
        self.prune_asked = True

    # -- ending ----------------------------------------------------------------
    def finish(self, status: str = "finished", message: str = "", **fields: Any) -> None:
        """Write the run's final status and flush everything, durably.

        finish() is final: a second call, or logging after it, raises RuntimeError."""
        if self._finished is not None:
            raise self._final_error("finish()")
        self._end(status, message, **fields)

    def _end(self, status: str, message: str = "", **fields: Any) -> None:
        """finish() for tuiexp's own hooks (exit, exception, a `with` block): at most once."""
        if self._finished is not None:
            return
        if status not in events.TERMINAL:
            raise ValueError(f"finish: status {status!r} is not one of {', '.join(events.TERMINAL)}.")
        self._pending.append((time.time(), "status", {"status": status, "message": message,
                                                      **fields}))
        self._finished, self._final_message = status, message
        try:
            self.flush(sync=True)
        except OSError as e:
            say(f"tuiexp: run {self.id}: the final status is not on disk yet ({e}); "
                "it is retried until the process exits.")

    # -- a `with` block: `with track.start(...) as run:` --------------------------
    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Leaving the block ends the run: finished, or failed/cancelled on an exception."""
        try:
            if exc_type is None:
                self._end("finished")
            else:
                self._end(*exception_status(exc_type, exc, tb))
        finally:
            self.close()

    def close(self) -> None:
        """Stop the flush thread, write what is left and the final record (reports, never
        raises, on OSError)."""
        self._stop.set()
        self._wake.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        try:
            self.flush(sync=True)
        except OSError:
            pass  # counted below: every event still queued is lost
        finally:
            with self._write_lock:
                if not self._closed:
                    self._closed = True
                    self._write_final()
                    os.close(self._fd)
            if self.on_close is not None:
                self.on_close(self)

    def _write_final(self) -> None:
        """The run's final record (final.json), into the space reserved at its start: its
        status, even where the disk refused the status event, and how many events it could
        not write, so it never ends silently short. The final status is not counted lost:
        this record keeps it."""
        lost = self._lost + events.count(self._backlog) - events.count(self._backlog, "status")
        reason = _refusal(self._refused) if lost else None
        if lost:
            say(f"tuiexp: run {self.id}: {lost:,} events could not be written to "
                f"{self.paths.events} ({reason}).")
        try:
            atomic.fill_reserved(self.paths.final, {
                "t": time.time(), "status": self._finished, "message": self._final_message,
                "dropped": lost, "reason": reason})
        except OSError as e:
            say(f"tuiexp: run {self.id}: its final record could not be written ({e}).")


def say(text: str) -> None:
    """A line on stderr that never fails the run: stderr is often stdout.log, on the disk
    that just filled up (an error there would turn exit 0 into 1)."""
    try:
        os.write(2, (text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _refusal(e: OSError | None) -> str:
    """Why the disk refused events, in a few words."""
    if e is None:
        return "not written"
    return {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file size limit"}.get(e.errno or 0, e.strerror or str(e))


def _verdict_due(judged: dict[str, Any] | None, epoch: int) -> bool:
    """Whether a study's verdict on `epoch` is still to come, from the run's judged.json
    (written by the study before the run starts, and after each verdict): not judged yet,
    and at or past `next`, the first epoch where its pruner can rule (null: none). No
    file: no study judges this run (a population's member, a run by hand)."""
    if judged is None or judged.get("epoch", -1) >= epoch:
        return False
    if "next" not in judged:
        return True
    upcoming = judged["next"]
    return upcoming is not None and epoch >= upcoming


def exception_status(exc_type: Any, exc: Any, tb: Any) -> tuple[str, str]:
    """The (status, message) an exception ends a run with."""
    from . import Cancelled  # the package defines it: it is part of the public API

    if issubclass(exc_type, Cancelled):
        return "cancelled", "cancelled by SIGTERM"
    if issubclass(exc_type, KeyboardInterrupt):
        return "cancelled", "interrupted"
    if issubclass(exc_type, SystemExit):  # sys.exit() inside a `with track.start()` block
        code = exits.code_of(getattr(exc, "code", None))
        return ("finished", "") if code == 0 else ("failed", f"exited with code {code}")
    return "failed", f"{exc_type.__name__}: {exc}{_where(tb)}"


def _where(tb: Any) -> str:
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return ""
    code = last.tb_frame.f_code
    return f" (at {Path(code.co_filename).name}:{last.tb_lineno} in {code.co_name})"


def params_of(config: Any) -> dict[str, Any]:
    """A dict, an argparse Namespace or a dataclass instance as JSON-ready params
    (tuples become lists; a value JSON cannot hold becomes its str)."""
    if isinstance(config, dict):
        raw = config
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        raw = dataclasses.asdict(config)
    elif hasattr(config, "__dict__"):
        raw = vars(config)
    else:
        raise TypeError(f"config must be a dict, an argparse Namespace or a dataclass, "
                        f"not {type(config).__name__}.")
    return {str(k): _json_value(v) for k, v in raw.items()}


def _json_value(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=events.jsonable, allow_nan=True))
    except (TypeError, ValueError):
        return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN on both sides
    return bool(a == b)


def remove_orphan_tmp(ckpt: Path) -> list[Path]:
    """Delete checkpoint temp files left by a process that died mid-save (a SIGKILL).

    A temp file names its writer's pid; one whose writer is dead (or is this very
    process, which has not started saving yet) can never be completed."""
    removed: list[Path] = []
    try:
        names = os.listdir(ckpt)
    except OSError:
        return removed
    for name in names:
        m = _TMP_RE.match(name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and runstore.pid_alive(pid):
            continue
        try:
            (ckpt / name).unlink()
            removed.append(ckpt / name)
        except OSError:
            pass
    return removed
