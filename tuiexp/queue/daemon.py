"""The supervisor: one per logs directory, detached, owns the queue.

Each tick it acts on cancel requests, notices exited runs, ingests new event
lines into the index, and starts queued runs on free slots. Between ticks it waits
on the run directories and its runs' processes (queue/watch.py), so an event
logged, a run directory made or a run's exit is handled within milliseconds. It
follows every run with a live writer — those it started, those a previous
supervisor left (adopted), and scripts run by hand (followed, never owned: not
requeued, not signalled beyond their own process) — and marks as crashed those
that died unseen. Runs never depend on it: killing it loses nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from ..config.model import QueueSettings
from ..errors import TuiexpError
from ..store import atomic, events, health, lock, runstore
from ..store.events import TERMINAL
from ..store.index import Index
from ..store.ingest import Fold
from ..store.paths import LogsDir, RunPaths, is_run_id
from ..store.spec import RunSpec
from . import gpu as gpus
from . import slurm
from .executor import Handle, LocalExecutor, SlurmExecutor, describe_start_error
from .watch import CREATE, MODIFY, MOVED_TO, Watcher

log = logging.getLogger("tuiexp.daemon")

TICK = 0.1
CANCEL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
SCAN_EVERY = 5.0  # seconds between full looks for run directories the index does not know
RUNS_KEY = "runs/"  # the watcher's key for the runs directory (no run id has a slash)
#: the files of a run directory whose change wakes the supervisor before the next tick
WAKING = frozenset({"events.jsonl", "cancel.request"})
IDLE_EXIT = float(os.environ.get("TUIEXP_DAEMON_IDLE", "900"))
MIN_FREE_BYTES = 512 << 10  # below this much free disk, queued runs wait for space


@dataclass
class Active:
    """A run whose process the supervisor watches."""

    paths: RunPaths
    handle: Handle
    attempt: int
    gpu: str | None
    #: how far its log is folded (None: as the index has it, restored at the next ingest)
    fold: Fold | None = None
    offset: int = 0
    #: started by this supervisor or an earlier one; False for a script run by hand,
    #: which is followed only: never requeued, never given an exit.json of its own
    owned: bool = True
    host: str | None = None  # where a run on another host runs: followed by its events
    start_time: float | None = None
    term_sent: float | None = None
    #: set once the process has ended (and been reaped): what is left is bookkeeping,
    #: retried every tick until it succeeds (a full disk fails it until space returns)
    ended: float | None = None
    returncode: int | None = None
    exit_written: bool = False
    announced: bool = False  # its index row says "running"
    #: why its events cannot be indexed (bad data in its log): it is no longer ingested,
    #: and it ends `failed` with this reason
    broken: str | None = None
    #: its start could not be recorded: it was killed, and is queued again
    requeue: str | None = None
    note: str = ""  # the Slurm state last shown as the run's message
    job: slurm.JobState | None = None  # a Slurm job's last state, once it ended
    #: its sbatch, off the tick, until it has a job id
    submission: slurm.Retrying | None = None
    start_error: str | None = None  # Slurm refused it


def environmental(e: BaseException) -> bool:
    """A failure of the machine (disk full, a locked, failing or damaged database), not of
    a run's data: retried next tick rather than blamed on a run."""
    return isinstance(e, (OSError, sqlite3.OperationalError)) or health.corrupt(e)


class Producer(Protocol):
    """What queues runs from the supervisor's tick besides the clients: a study or a
    population (tuiexp/search/), given to the supervisor when it starts."""

    def tick(self) -> None: ...

    def busy(self) -> bool:
        """Still has runs to queue (the supervisor must not idle out)."""
        ...


#: How a producer is made: from the logs, the index, and the supervisor's complain(subject,
#: what, error) and clear(subject), so its failures are logged once like the supervisor's own.
MakeProducer = Callable[[LogsDir, Index, Callable[[str, str, BaseException], None],
                         Callable[[str], None]], Producer]


class Supervisor:
    def __init__(self, logs: LogsDir, executor: LocalExecutor | None = None,
                 producers: Sequence[MakeProducer] = ()):
        self.logs = logs.ensure()
        self.index = Index(logs)
        self.executor = executor or LocalExecutor()
        self._slurm: SlurmExecutor | None = None  # made when the first Slurm run needs it
        self.active: dict[str, Active] = {}
        self.stopping = False
        self._last_scan = 0.0
        self._runs_seen: int | None = None  # runs/'s mtime at the last scan
        self._last_busy = time.time()
        self._left: dict[str, float] = {}  # live rows it could not follow, and when it tried
        self.watcher = Watcher()
        self._said: dict[str, str] = {}  # what was logged per subject: a repeat is not
        self._damaged: BaseException | None = None  # the index said it is damaged
        self._sound_until = 0.0  # quick_check found it sound: not checked again before
        self.producers = [make(logs, self.index, self._complain, self._clear) for make in producers]
        self._announce_index()

    # -- lifecycle ------------------------------------------------------------
    def serve(self) -> None:
        try:
            while not self.stopping:
                started = time.monotonic()
                try:
                    self.adopt()
                    self.tick()
                    busy = bool(self.active or self.index.queued_ids()
                                or any(p.busy() for p in self.producers))
                    self._clear("tick")
                except Exception as e:  # noqa: BLE001 - nothing may stop the supervisor
                    self._complain("tick", "the supervisor's tick failed", e)
                    busy = True
                if busy:
                    self._last_busy = time.time()
                elif time.time() - self._last_busy > IDLE_EXIT:
                    log.info("idle for %.0f s, exiting", IDLE_EXIT)
                    break
                self._wait(started + TICK)
        finally:
            self.watcher.close()
            self.index.close()

    def _wait(self, until: float) -> None:
        """Until the next tick, handle what the watcher wakes: a run's new events or its
        exit (that run alone: `_watch`), a new run directory (`_scan`)."""
        self._watch_set()
        while not self.stopping and (left := until - time.monotonic()) > 0:
            woken = self.watcher.wait(left)
            try:
                if woken is None:  # the watcher lost track: look at everything
                    woken = {RUNS_KEY, *self.active}
                if RUNS_KEY in woken:
                    self._scan()
                for run_id in woken & self.active.keys():
                    self._watch(run_id, self.active[run_id])
                if woken:
                    self._watch_set()
            except Exception as e:  # noqa: BLE001 - nothing may stop the supervisor
                self._complain("tick", "the supervisor's tick failed", e)

    def _watch_set(self) -> None:
        """Watch runs/ and each followed run's directory and (where its pid means
        something here) its process; forget what is no longer followed."""
        self.watcher.watch_dir(RUNS_KEY, self.logs.runs, CREATE | MOVED_TO)
        for run_id in self.watcher.keys() - {RUNS_KEY} - self.active.keys():
            self.watcher.forget(run_id)
        for run_id, act in self.active.items():
            self.watcher.watch_dir(run_id, act.paths.dir, MODIFY | CREATE | MOVED_TO, WAKING)
            if act.ended is not None or act.handle.job_id or act.host:
                self.watcher.forget(run_id, exit_only=True)  # (an exited pid stays readable)
            elif not self.watcher.watching_exit(run_id):
                if (self.watcher.watch_exit(run_id, act.handle.pid) and act.handle.popen is None
                        and not runstore.pid_alive(act.handle.pid, act.start_time)):
                    self.watcher.forget(run_id, exit_only=True)  # the pid is someone else's

    def adopt(self) -> bool:
        """Follow every live row it does not follow yet: runs a previous supervisor left,
        and scripts run by hand (found by `_scan`, or indexed by a reader first). Alive
        ones are followed, dead ones get their true status from their directory. False
        when some row could not be dealt with for now (a full disk): it is tried again."""
        done = True
        now = time.time()
        for run_id, attempt in self.index.live_ids():
            if run_id in self.active or now - self._left.get(run_id, -SCAN_EVERY) < SCAN_EVERY:
                continue
            try:
                self._adopt_one(run_id, attempt)
            except Exception as e:  # noqa: BLE001 - one run's problem is that run's
                if environmental(e):
                    done = False
                    self._complain(run_id, f"adopting {run_id} failed", e)
                else:
                    self._fail(run_id, e)
        return done

    def _adopt_one(self, run_id: str, attempt: int) -> None:
        paths = self.logs.run(run_id)
        proc = runstore.read_json(paths.proc)
        if (proc and proc.get("executor") == "slurm" and not proc.get("job_id")
                and proc.get("attempt") == attempt):
            # its submission was under way: go on with it (a job of its name is found)
            self._submit(run_id, paths, runstore.load_spec(paths), attempt,
                         self._queue_settings(), adopted=True)
        elif proc and proc.get("job_id") and proc.get("attempt") == attempt:
            # a Slurm job: the next poll says whether it still lives
            act = Active(paths, Handle(0, None, str(proc["job_id"])), attempt, None)
            self.active[run_id] = act
            self._ingest(run_id, act)
            log.info("adopted %s (slurm job %s)", run_id, proc["job_id"])
        elif proc and proc.get("attempt") == attempt and (
                alive := runstore.writer_alive(proc)) is not False:
            pid = proc["pid"]
            act = Active(paths, Handle(pid, None, group=proc.get("pgid", pid) == pid), attempt,
                         proc.get("gpu"), start_time=proc.get("start_time"), announced=True,
                         owned=not proc.get("standalone"),
                         host=proc.get("host") if alive is None else None)
            self.active[run_id] = act
            self._ingest(run_id, act)
            log.info("%s %s (pid %s%s)", "adopted" if act.owned else "following", run_id, pid,
                     f" on {act.host}" if act.host else "")
        else:
            if self.index.reindex_run(run_id) in ("starting", "running"):
                self._left[run_id] = time.time()  # live by its directory, yet not followable
            log.info("%s died unseen", run_id)

    # -- the index: a cache of the run directories -------------------------------
    def _check_index(self) -> None:
        """Each tick, one stat: an index deleted, replaced (a restored copy) or moved
        aside is opened again (a new file is rebuilt from the run directories), and a
        damaged one is moved aside first. Every watched run is then indexed again from
        its directory, and followed on from the fold that keeps with its new row."""
        damaged, self._damaged = self._damaged, None
        if damaged is not None and time.monotonic() > self._sound_until:
            if not self.index.recover(damaged):
                # SQLite finds the file sound (quick_check reads every page: once a minute)
                self._sound_until = time.monotonic() + 60.0
                return
        elif not self.index.replaced():
            return
        else:
            log.warning("%s was deleted or replaced; reopened it (rebuilt from the run "
                        "directories where it was new)", self.logs.index)
            self.index.reopen()
        for run_id, act in self.active.items():
            self.index.reindex_run(run_id)
            act.fold, act.offset, act.note = None, 0, ""
        self._last_scan = 0.0  # and look for directories it lacks at once
        self._announce_index()

    def _announce_index(self) -> None:
        """daemon.json names the index file this supervisor writes (doctor compares)."""
        try:
            info = runstore.read_json(self.logs.daemon_info) or {}
            atomic.write_json(self.logs.daemon_info, {
                **info, "pid": os.getpid(), "index": list(self.index.identity or ())})
        except OSError:
            pass  # a full disk: doctor then reads the pid from the lock

    # -- one tick ---------------------------------------------------------------
    def tick(self) -> None:
        self._check_index()
        jobs = [a.handle for a in self.active.values() if a.handle.job_id and a.ended is None]
        if jobs:
            self.slurm().refresh(jobs)  # one squeue for all jobs
        for run_id, act in list(self.active.items()):
            self._watch(run_id, act)
        for producer in self.producers:  # studies ask for trials before dispatch starts them
            producer.tick()
        self._dispatch()
        if time.time() - self._last_scan > SCAN_EVERY or self._runs_changed():
            self._scan()

    def _runs_changed(self) -> bool:
        """Whether runs/ changed since the last scan (a directory renamed into place; 2 µs
        a look): the tick's way to see new run directories where inotify sees nothing."""
        try:
            return os.stat(self.logs.runs).st_mtime_ns != self._runs_seen
        except OSError:
            return False

    def _watch(self, run_id: str, act: Active) -> None:
        """One run's share of a tick; whatever fails here is this run's alone."""
        try:
            if act.ended is None:
                self._handle_cancel(run_id, act)
                if act.submission is not None:
                    self._poll_submission(run_id, act)
                elif act.handle.job_id:
                    self._poll_job(run_id, act)
                else:
                    self._poll(act)  # reap first: a failing ingest must never leave a zombie
            if act.ended is not None and not act.exit_written:
                self._write_exit(act)  # the directory first: readers believe it at once
            if not act.announced and act.ended is None and not act.handle.job_id:
                self.index.set_status(run_id, "running", "", pid=act.handle.pid,
                                      started=time.time())
                act.announced = True
            if self._ingest(run_id, act):
                if act.ended is None and not act.owned and _said_last_word(act):
                    act.ended = time.time()  # a script's run ends with its final status,
                    # though the process may live on (a notebook, the next run of a loop)
                if act.ended is not None:
                    self._conclude(run_id, act)
                self._clear(run_id)
        except Exception as e:  # noqa: BLE001 - retried next tick
            self._complain(run_id, f"watching {run_id} failed", e)

    def _poll(self, act: Active) -> None:
        if act.host:  # on another host: its pid means nothing here; its events end it
            return
        rc = self.executor.poll(act.handle)
        if act.handle.popen is None:  # adopted or followed: we only see whether it lives
            if runstore.pid_alive(act.handle.pid, act.start_time):
                return
        elif rc is None:
            return
        act.ended, act.returncode = time.time(), rc

    def _poll_submission(self, run_id: str, act: Active) -> None:
        """A Slurm submission: its job id once sbatch answered (or a job of its name was
        found); while the controller does not answer, the run stays `starting` and says
        so; Slurm's refusal fails it; a run cancelled meanwhile ends cancelled."""
        sub = act.submission
        assert sub is not None
        if not sub.done:
            if sub.down_since is not None:
                since = time.strftime("%H:%M:%S", time.localtime(sub.down_since))
                self._note(run_id, act, f"slurm controller unreachable, retrying (since {since})")
            return
        act.submission = None
        if sub.error is not None or sub.result is None:
            act.ended = time.time()  # refused (start_error), or cancelled before any job
            act.start_error = str(sub.error) if sub.error is not None else None
            return
        job_id = str(sub.result)
        proc = runstore.read_json(act.paths.proc) or {}
        atomic.write_json(act.paths.proc, {**proc, "job_id": job_id})
        act.handle = Handle(0, None, job_id)
        self.index.set_status(run_id, "starting", f"slurm job {job_id} submitted",
                              expect=("starting",), job_id=job_id, node=None, reason="")
        act.note = f"slurm job {job_id} submitted"
        log.info("%s: slurm job %s", run_id, job_id)
        if act.term_sent is not None:  # cancelled while it was being submitted
            self.slurm().signal(act.handle, signal.SIGTERM)

    def _note(self, run_id: str, act: Active, message: str) -> None:
        """A starting Slurm run's message, written when it changes."""
        if act.note != message:
            self.index.set_status(run_id, "starting", message, expect=("starting",))
            act.note = message

    def _poll_job(self, run_id: str, act: Active) -> None:
        """Follow a Slurm job: pending → starting, running → running (with the job id,
        node or pending reason as the message), ended → concluded like a local run."""
        job_id = act.handle.job_id
        assert job_id is not None
        job = self.slurm().poll(act.handle)
        if job is None and not self.slurm().poller.gone(job_id):
            return  # not asked about yet, or no answer: ask again next tick
        if job is not None and not job.done:
            status = "starting" if job.state == "PENDING" else "running"
            message = job.describe(job_id)
            if act.note != message:
                reason = job.reason if status == "starting" and job.reason != "None" else ""
                self.index.set_status(run_id, status, message, expect=("starting", "running"),
                                      node=job.node or None, reason=reason)
                slurm.write_node(act.paths, job_id, job.node)
                act.note = message
            return
        act.job, act.ended = job, time.time()

    def slurm(self) -> SlurmExecutor:
        """The Slurm executor, made on first use; daemon.json then says how it sees jobs."""
        if self._slurm is None:
            self._slurm = SlurmExecutor()
            info = runstore.read_json(self.logs.daemon_info) or {}
            atomic.write_json(self.logs.daemon_info, {
                **info, "executor": "slurm",
                "job_state": "squeue + sacct" if self._slurm.poller.accounting else "squeue"})
        return self._slurm

    def _ingest(self, run_id: str, act: Active) -> bool:
        """Ingest new event lines; False when the index could not take them now (the
        next tick retries, from the fold the index kept). Bad data in the log marks the
        run broken, once."""
        if act.broken is not None:
            return True
        try:
            self._catch_up(run_id, act, whole=act.ended is not None)
            return True
        except Exception as e:  # noqa: BLE001 - sorted below
            act.fold = None  # half-folded: restored from the index next time
            if environmental(e):
                self._complain(run_id, f"indexing {run_id} failed", e)
                return False
            act.broken = f"the index could not take its events ({_reason(e)})"
            log.error("%s: %s; it is no longer indexed", run_id, act.broken)
            if act.announced and act.ended is None:
                self.index.set_status(run_id, "running", act.broken + ".")
            return True

    def _catch_up(self, run_id: str, act: Active, whole: bool = False) -> None:
        """Ingest new event lines, going on from the fold the index keeps with the run's
        row when it has none in hand (adopted, followed, just started, or after a
        failure): whoever folded the log before, a reader or an earlier supervisor."""
        if act.fold is None:
            act.fold, act.offset = self.index.resume(run_id)
        limit = None if whole else 16 << 20
        act.offset, _ = self.index.ingest(run_id, act.paths, act.fold, act.offset, limit)

    def _conclude(self, run_id: str, act: Active) -> None:
        """Record how an ended run ended: exit.json, then its index row. Either may fail
        on a full disk; the run stays watched and the next tick tries again."""
        if act.requeue is not None:
            if self.index.set_status(run_id, "queued", act.requeue, expect=("starting", "running")):
                log.info("%s queued again: %s", run_id, act.requeue)
            del self.active[run_id]
            return
        last = act.fold.status if act.fold is not None else None
        if act.broken is not None or act.fold is None:  # its fold stopped where ingest did
            last = runstore.last_status(events.read_all(act.paths.events))
        verdict = runstore.derive_status(act.paths, last)
        status, message = verdict.status, verdict.message
        if act.handle.job_id and not self._own_word(act, last):
            said = slurm.verdict_message(act.paths, act.attempt, act.job, act.handle.job_id,
                                         act.term_sent is not None)
            if said is not None:  # what Slurm knows: a time limit, out of memory...
                told = runstore.after_prune(act.paths, runstore.Verdict(*said), act.ended)
                status, message = told.status, told.message
        if act.broken is not None:
            status, message = "failed", f"{act.broken}; the run itself ended {status}."
        self._ended(run_id, act, status, message, verdict.dropped)

    def _write_exit(self, act: Active) -> None:
        """exit.json, into the space reserved when the run started (a full disk takes it):
        the return code of a local run, what Slurm knows of a job, or why it never had one."""
        if act.start_error is not None:
            atomic.fill_reserved(act.paths.exit, {"returncode": None, "attempt": act.attempt,
                                                  "start_error": act.start_error,
                                                  "ended": act.ended})
        elif act.handle.job_id:
            atomic.fill_reserved(act.paths.exit, slurm.ended(act.paths, act.attempt, act.job,
                                                             act.term_sent is not None))
        elif act.handle.popen is not None or act.term_sent is not None:
            atomic.fill_reserved(act.paths.exit, {
                "returncode": act.returncode, "attempt": act.attempt, "ended": act.ended,
                "cancelled": act.term_sent is not None})
        act.exit_written = True

    @staticmethod
    def _own_word(act: Active, last: dict[str, Any] | None) -> bool:
        """Whether the run said how it ended, in this attempt (a status event, or its
        final record): then that is its verdict, not what Slurm knows."""
        proc = runstore.read_json(act.paths.proc) or {}
        final = runstore.read_json(act.paths.final) or {}
        return any(rec is not None and rec.get("status") in TERMINAL
                   and rec.get("t", 0) >= proc.get("started", 0) for rec in (last, final))

    def _ended(self, run_id: str, act: Active, status: str, message: str,
               dropped: int = 0) -> None:
        """Record the end; a preempted run (time limit, stop.request) is queued again as
        its next attempt, which resumes from its last checkpoint."""
        if status == "preempted" and act.owned and not act.paths.cancel.exists():
            asked = runstore.read_json(act.paths.queue) or {}
            atomic.write_json(act.paths.queue, {"attempt": act.attempt + 1, "queued": time.time(),
                                                "priority": asked.get("priority", 0),
                                                "requeued": True})
            if self.index.set_status(run_id, "queued", f"preempted ({message}); requeued",
                                     ended=None):
                del self.active[run_id]
                log.info("%s preempted and queued again: %s", run_id, message)
                return
        self.index.set_status(run_id, status, message, ended=act.ended, dropped=dropped)
        del self.active[run_id]
        log.info("%s ended: %s %s", run_id, status, message)

    def _handle_cancel(self, run_id: str, act: Active) -> None:
        if not act.paths.cancel.exists():
            return
        if act.host:
            self._say(run_id, f"{run_id} runs on {act.host}: a cancel cannot reach it from here")
            return
        now = time.time()
        if act.term_sent is None:
            act.term_sent = now
            if act.submission is not None:  # its job, if it gets one, is cancelled then
                act.submission.stop()
            elif act.handle.job_id:  # scancel, retried while the controller is down
                self.slurm().signal(act.handle, signal.SIGTERM)
            else:
                self.executor.signal(act.handle, signal.SIGTERM)
        elif now - act.term_sent > CANCEL_GRACE and not act.handle.job_id:
            self.executor.signal(act.handle, signal.SIGKILL)  # Slurm kills at KillWait

    def _dispatch(self) -> None:
        queued = self.index.queued_ids()
        if not queued:
            return
        if not self._room_to_start():
            return
        settings = self._queue_settings()
        for run_id, attempt in queued:
            if run_id in self.active:
                continue
            try:
                slot = self._dispatch_one(run_id, attempt, settings)
            except Exception as e:  # noqa: BLE001 - one run's problem is that run's
                if environmental(e):
                    self._complain(run_id, f"starting {run_id} failed", e)
                    return  # the machine's trouble: the next tick tries again
                self._fail(run_id, e, expect=("queued", "starting"))
                continue
            if slot is False:
                return

    def _dispatch_one(self, run_id: str, attempt: int, settings: QueueSettings) -> bool | None:
        """Start one queued run if a slot is free; False when none is."""
        paths = self.logs.run(run_id)  # an invalid id stops here, as this run's failure
        if paths.cancel.exists():
            self.index.set_status(run_id, "cancelled", "cancelled before it started",
                                  expect=("queued",))
            return None
        slot = None if settings.executor == "slurm" else self._free_slot(settings)
        if slot is False:
            return False
        # the attempt the directory asks for (a client wrote it), not the row's guess
        self._start(run_id, runstore.asked_attempt(paths), slot, settings)
        return None

    def _room_to_start(self) -> bool:
        """No run is started into a full disk; the queue waits for space instead."""
        try:
            free = shutil.disk_usage(self.logs.runs).free
        except OSError:
            return True
        if free >= MIN_FREE_BYTES:
            self._clear("disk")
            return True
        self._say("disk", f"not starting queued runs: less than {MIN_FREE_BYTES >> 10} KiB "
                          f"free on the disk of {self.logs.root}")
        return False

    def _queue_settings(self) -> QueueSettings:
        raw = self.index.setting("queue", {})
        try:
            fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                      for k, v in raw.items()}
            return QueueSettings(**fields)
        except (TypeError, ValueError, AttributeError) as e:
            self._complain("settings", "the queue settings in the index are unusable; "
                           "using the defaults", e)
            return QueueSettings()

    def _free_slot(self, settings: QueueSettings) -> str | None | Literal[False]:
        """A GPU index (as CUDA_VISIBLE_DEVICES), None for a CPU slot, False for none free."""
        used: dict[str | None, int] = {}
        for act in self.active.values():
            if act.ended is None:
                used[act.gpu] = used.get(act.gpu, 0) + 1
        visible = [] if settings.gpus == "none" else gpus.gpus()
        if settings.gpus not in ("auto", "none"):
            visible = [g for g in visible if g.index in settings.gpus]
        if not visible:
            return None if used.get(None, 0) < settings.cpu_jobs else False
        for g in sorted(visible, key=lambda g: used.get(str(g.index), 0)):
            if used.get(str(g.index), 0) >= settings.jobs_per_gpu:
                continue
            if g.mem_free_mb < settings.min_free_memory_mb:
                continue
            return str(g.index)
        return False

    def _start(self, run_id: str, attempt: int, gpu: str | None,
               settings: QueueSettings | None = None) -> None:
        paths = self.logs.run(run_id)
        if not self.index.set_status(run_id, "starting", "", expect=("queued",),
                                     attempt=attempt, gpu=gpu):
            return  # a client cancelled it meanwhile
        if not runstore.claim(paths, attempt):
            # the directory says this attempt started before (an index older than it: a
            # restored copy, a file deleted under a running supervisor): never again
            self._say(f"claim:{run_id}", f"{run_id}: attempt {attempt} was started before, "
                                         "its directory says; indexed it again instead")
            self.index.reindex_run(run_id)
            return
        spec = None
        try:
            spec = runstore.load_spec(paths)
            if settings is not None and settings.executor == "slurm":
                self._submit(run_id, paths, spec, attempt, settings)
                return
            handle = self.executor.start(spec, paths, gpu)
        except Exception as e:  # noqa: BLE001 - any failure to start is the run's, not ours
            message = describe_start_error(spec, e) if spec and isinstance(e, OSError) else str(e)
            atomic.write_json(paths.proc, {"pid": 0, "attempt": attempt, "start_time": 0,
                                           "started": time.time()})
            atomic.write_json(paths.exit, {"returncode": None, "attempt": attempt,
                                           "start_error": message, "ended": time.time()})
            self.index.set_status(run_id, "failed", message, ended=time.time())
            return
        act = Active(paths, handle, attempt, gpu)
        self.active[run_id] = act  # watched from here on, whatever fails next
        try:
            runstore.write_proc(paths, handle.pid, attempt, gpu=gpu)
            atomic.reserve(paths.exit)  # so its end can be recorded on a full disk
        except OSError as e:
            # without proc.json the directory cannot tell this attempt ever ran: stop it,
            # and queue it again (dispatch waits for space); it never started, so its
            # claim goes too
            self.executor.signal(handle, signal.SIGKILL)
            paths.claim(attempt).unlink(missing_ok=True)
            act.requeue = f"queued again: its start could not be recorded ({_reason(e)})"
            log.error("%s: %s", run_id, act.requeue)
            return
        act.start_time = (runstore.read_json(paths.proc) or {}).get("start_time")
        self._ingest(run_id, act)
        self.index.set_status(run_id, "running", act.broken or "", pid=handle.pid,
                              started=time.time())
        act.announced = True
        log.info("started %s (pid %s, gpu %s)", run_id, handle.pid, gpu)

    def _submit(self, run_id: str, paths: RunPaths, spec: RunSpec, attempt: int,
                settings: QueueSettings, adopted: bool = False) -> None:
        """Submit a run to Slurm, off the tick (`_poll_submission` follows it). proc.json
        says the attempt is being submitted before sbatch runs: a supervisor started
        again goes on with the submission, finding the job by its name if it got one."""
        if not adopted:
            atomic.write_json(paths.proc, {"pid": 0, "attempt": attempt, "started": time.time(),
                                           "executor": "slurm", "job_id": None})
            atomic.reserve(paths.exit)
        options = spec.slurm if spec.slurm is not None else settings.slurm
        act = Active(paths, Handle(0, None), attempt, None, announced=True,
                     submission=self.slurm().submit(spec, paths, options, attempt))
        self.active[run_id] = act
        if not adopted:
            self.index.set_status(run_id, "starting", "submitting to slurm", pid=None,
                                  started=time.time())
        log.info("%s %s (attempt %d)", "resubmitting" if adopted else "submitting", run_id, attempt)

    def _scan(self) -> None:
        """Index run directories it does not know (a script run by hand); one that is
        live is followed at once. A directory that cannot be a run (its run.json
        unreadable, or naming another run) is skipped, and said once in the log."""
        self._last_scan = time.time()
        try:
            self._runs_seen = os.stat(self.logs.runs).st_mtime_ns  # before the listing
            names = os.listdir(self.logs.runs)
        except OSError:
            self._runs_seen, names = None, []
        known = self.index.ids()
        live = False
        for rid in sorted(n for n in names if n not in known and n not in self.active):
            if not is_run_id(rid) or not (self.logs.runs / rid / "run.json").exists():
                continue  # hidden staging directories, stray names
            problem = runstore.check_run_dir(self.logs.run(rid))
            if problem is not None:
                self._say(f"dir:{rid}", problem)
                continue
            try:
                live = self.index.reindex_run(rid) in ("starting", "running") or live
            except Exception as e:  # noqa: BLE001 - one directory's problem is its own
                self._complain(f"dir:{rid}", f"{rid} could not be indexed", e)
        if live:
            self.adopt()

    # -- saying things once -------------------------------------------------------
    def _fail(self, run_id: str, e: BaseException, expect: tuple[str, ...] | None = None) -> None:
        """Mark one run failed for a problem of its own (bad id, bad data), once."""
        message = f"{_reason(e)}." if isinstance(e, TuiexpError) else \
            f"the supervisor could not handle it ({_reason(e)})."
        self._say(run_id, f"{run_id} failed: {message}", exc=e)
        try:
            self.index.set_status(run_id, "failed", message, expect=expect, ended=time.time())
        except Exception as again:  # noqa: BLE001 - said in the log; the queue goes on
            self._complain(run_id, f"marking {run_id} failed failed", again)

    def _complain(self, subject: str, what: str, e: BaseException) -> None:
        if health.corrupt(e):
            self._damaged = e  # moved aside and rebuilt at the next tick's start
        self._say(subject, f"{what}: {_reason(e)}", exc=e)

    def _say(self, subject: str, message: str, exc: BaseException | None = None) -> None:
        """Log a problem once per subject, not every tick (until it changes or clears)."""
        if self._said.get(subject) == message:
            return
        self._said[subject] = message
        if exc is not None and not environmental(exc) and not isinstance(exc, TuiexpError):
            log.error(message, exc_info=exc)
        else:
            log.warning(message)

    def _clear(self, subject: str) -> None:
        if self._said.pop(subject, None) is not None and not subject.startswith("dir:"):
            log.info("%s: works again", subject)


def _said_last_word(act: Active) -> bool:
    """Whether a followed run's log ends with a final status (since its last start)."""
    last = act.fold.status if act.fold is not None else None
    return last is not None and last.get("status") in TERMINAL


def _reason(e: BaseException) -> str:
    """An exception as a short phrase (a TuiexpError is a sentence already)."""
    text = str(e).rstrip(".") or type(e).__name__
    if isinstance(e, (TuiexpError, OSError, sqlite3.OperationalError)):
        return text
    return f"{type(e).__name__}: {text}"


# -- the process ----------------------------------------------------------------
def spawn(logs: LogsDir, wait: float = 30.0) -> bool:
    """Start a detached supervisor for `logs` unless one runs; True once one runs."""
    if lock.is_running(logs):
        return True
    logs.ensure()
    with open(logs.daemon_log, "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "tuiexp.cli", "--logs", str(logs.root), "daemon", "serve"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if lock.is_running(logs):
            return True
        time.sleep(0.05)
    return False


def stop(logs: LogsDir, wait: float = 10.0) -> bool:
    """Stop the supervisor (runs go on; the next one adopts them)."""
    data = lock.info(logs)
    if not data:
        return False
    try:
        os.kill(int(data["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and lock.is_running(logs):
        time.sleep(0.05)
    return not lock.is_running(logs)


def run(logs: LogsDir, producers: Sequence[MakeProducer] = ()) -> int:
    """Be the supervisor of `logs` until stopped or idle (`tuiexp daemon serve`, which
    `spawn` starts detached); returns at once if another one holds the lock."""
    fd = lock.try_lock(logs)
    deadline = time.monotonic() + 1.0
    while fd is None and time.monotonic() < deadline:
        # a client's is_running() probe holds the lock for an instant: retry past it,
        # unless a live supervisor holds it (exactly one per logs directory)
        other = runstore.read_json(logs.daemon_info)
        if other and runstore.pid_alive(int(other["pid"])):
            return 0
        time.sleep(0.05)
        fd = lock.try_lock(logs)
    if fd is None:
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stdout)
    stop = threading.Event()
    opened: list[Supervisor] = []

    def on_term(signum: int, frame: object) -> None:
        stop.set()
        for sup in opened:
            sup.stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sup = _open(logs, stop, producers)
    if sup is None:
        return 0
    opened.append(sup)
    sup.stopping = stop.is_set()
    log.info("supervising %s (pid %d)", logs.root, os.getpid())
    sup.serve()
    Path(logs.daemon_info).unlink(missing_ok=True)
    return 0


def _open(logs: LogsDir, stop: threading.Event, producers: Sequence[MakeProducer]
          ) -> Supervisor | None:
    """The supervisor, once its index opens: on a full disk it waits for space (holding
    the lock, so no second one starts) rather than dying; None if stopped or idle first."""
    said, wrote_info, since = "", False, time.time()
    while not stop.is_set() and time.time() - since < IDLE_EXIT:
        try:
            if not wrote_info:
                atomic.write_json(logs.daemon_info, {"pid": os.getpid(), "started": time.time()})
                wrote_info = True
            return Supervisor(logs, producers=producers)
        except (OSError, sqlite3.OperationalError) as e:
            if str(e) != said:
                said = str(e)
                log.warning("cannot open %s yet (%s); retrying", logs.index, e)
            stop.wait(1.0)
    return None
