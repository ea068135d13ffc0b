"""The supervisor: one per logs directory, detached, owns the queue.

Each tick it acts on cancel requests, notices exited runs, ingests new event
lines into the index, and starts queued runs on free slots. After its own
restart it adopts the runs that are still alive and marks as crashed those
that died unseen. Runs never depend on it: killing it loses nothing.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic, runstore, slurm
from . import gpu as gpus
from .config import QueueSettings
from .errors import TuiexpError
from .events import TERMINAL
from .executor import Handle, LocalExecutor, SlurmExecutor, describe_start_error
from .index import Index
from .paths import LogsDir, RunPaths
from .records import Summary

log = logging.getLogger("tuiexp.daemon")

TICK = 0.1
CANCEL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
SCAN_EVERY = 5.0  # seconds between looks for run directories the index does not know
IDLE_EXIT = float(os.environ.get("TUIEXP_DAEMON_IDLE", "900"))


@dataclass
class Active:
    """A run whose process the supervisor watches."""

    paths: RunPaths
    handle: Handle
    attempt: int
    gpu: str | None
    summary: Summary = field(default_factory=Summary)
    offset: int = 0
    start_time: float | None = None
    term_sent: float | None = None
    note: str = ""  # the Slurm state last shown as the run's message


class Supervisor:
    def __init__(self, logs: LogsDir, executor: LocalExecutor | None = None):
        self.logs = logs.ensure()
        self.index = Index(logs)
        self.executor = executor or LocalExecutor()
        self._slurm: SlurmExecutor | None = None  # made when the first Slurm run needs it
        self.active: dict[str, Active] = {}
        self.stopping = False
        self._last_scan = 0.0
        self._last_busy = time.time()

    # -- lifecycle ------------------------------------------------------------
    def serve(self) -> None:
        self.adopt()
        while not self.stopping:
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # one bad run directory must not stop the queue
                log.exception("tick failed")
            if self.active or self.index.queued_ids():
                self._last_busy = time.time()
            elif time.time() - self._last_busy > IDLE_EXIT:
                log.info("idle for %.0f s, exiting", IDLE_EXIT)
                break
            time.sleep(max(0.0, TICK - (time.monotonic() - started)))
        self.index.close()

    def adopt(self) -> None:
        """Take over the runs a previous supervisor left: alive ones are watched again,
        dead ones get their true status from their directory."""
        for row in self.index.runs(status=("starting", "running")):
            paths = self.logs.run(row.id)
            proc = runstore.read_json(paths.proc)
            if proc and proc.get("job_id") and proc.get("attempt") == row.attempt:
                # a Slurm job: the next poll says whether it still lives
                act = Active(paths, Handle(0, None, str(proc["job_id"])), row.attempt, None)
                self._catch_up(row.id, act, from_scratch=True)
                self.active[row.id] = act
                log.info("adopted %s (slurm job %s)", row.id, proc["job_id"])
            elif proc and proc.get("attempt") == row.attempt and runstore.pid_alive(
                    proc["pid"], proc.get("start_time")):
                act = Active(paths, Handle(proc["pid"], None), row.attempt, proc.get("gpu"),
                             start_time=proc.get("start_time"))
                self._catch_up(row.id, act, from_scratch=True)
                self.active[row.id] = act
                log.info("adopted %s (pid %s)", row.id, proc["pid"])
            else:
                self.index.reindex_run(row.id)
                log.info("%s died unseen", row.id)

    # -- one tick ---------------------------------------------------------------
    def tick(self) -> None:
        jobs = [a.handle for a in self.active.values() if a.handle.job_id]
        if jobs:
            self.slurm().refresh(jobs)  # one squeue for all jobs
        for run_id, act in list(self.active.items()):
            try:
                self._handle_cancel(run_id, act)
                self._catch_up(run_id, act)
                self._reap(run_id, act)
            except Exception:  # one bad run directory must not stop the others
                log.exception("watching %s failed", run_id)
        self._dispatch()
        if time.time() - self._last_scan > SCAN_EVERY:
            self._scan()

    def _catch_up(self, run_id: str, act: Active, from_scratch: bool = False) -> None:
        """Ingest new event lines; from scratch, re-fold the whole log (rows are keyed,
        so re-inserting what an earlier supervisor ingested doubles nothing)."""
        if from_scratch:
            act.summary, act.offset = Summary(), 0
        limit = None if from_scratch else 16 << 20
        act.offset, _ = self.index.ingest(run_id, act.paths, act.summary, act.offset, limit)

    def _reap(self, run_id: str, act: Active) -> None:
        if act.handle.job_id:
            return self._reap_job(run_id, act)
        rc = self.executor.poll(act.handle)
        if act.handle.popen is None:  # adopted: we only see whether it lives
            if runstore.pid_alive(act.handle.pid, act.start_time):
                return
        elif rc is None:
            return
        self._catch_up(run_id, act)
        if act.handle.popen is not None or act.term_sent is not None:
            atomic.write_json(act.paths.exit, {"returncode": rc, "attempt": act.attempt,
                                               "ended": time.time(),
                                               "cancelled": act.term_sent is not None})
        verdict = runstore.derive_status(act.paths, act.summary.status)
        self._ended(run_id, act, verdict.status, verdict.message)

    def _ended(self, run_id: str, act: Active, status: str, message: str) -> None:
        """Record the end; a preempted run (time limit, stop.request) is queued again."""
        del self.active[run_id]
        log.info("%s ended: %s %s", run_id, status, message)
        if status == "preempted" and not act.paths.cancel.exists():
            asked = runstore.read_json(act.paths.queue) or {}
            atomic.write_json(act.paths.queue, {"attempt": act.attempt + 1, "queued": time.time(),
                                                "priority": asked.get("priority", 0),
                                                "requeued": True})
            if self.index.set_status(run_id, "queued", f"preempted ({message}); requeued",
                                     ended=None):
                return
        self.index.set_status(run_id, status, message, ended=time.time())

    def slurm(self) -> SlurmExecutor:
        """The Slurm executor, made on first use; daemon.json then says how it sees jobs."""
        if self._slurm is None:
            self._slurm = SlurmExecutor()
            info = runstore.read_json(self.logs.daemon_info) or {}
            atomic.write_json(self.logs.daemon_info, {
                **info, "executor": "slurm",
                "job_state": "squeue + sacct" if self._slurm.poller.accounting else "squeue"})
        return self._slurm

    def _reap_job(self, run_id: str, act: Active) -> None:
        """Follow a Slurm job: pending → starting, running → running, ended → a verdict."""
        job_id = act.handle.job_id
        assert job_id is not None
        job = self.slurm().poll(act.handle)
        if job is None and not self.slurm().poller.gone(job_id):
            return  # not asked about yet, or no answer: ask again next tick
        if job is not None and not job.done:
            status = "starting" if job.state == "PENDING" else "running"
            message = job.describe(job_id)
            if act.note != message:
                act.note = message
                self.index.set_status(run_id, status, message, expect=("starting", "running"))
                slurm.write_node(act.paths, job_id, job.node)
            return
        self._catch_up(run_id, act)
        cancelled = act.term_sent is not None
        atomic.write_json(act.paths.exit, slurm.ended(act.paths, act.attempt, job, cancelled))
        last = act.summary.status
        proc = runstore.read_json(act.paths.proc) or {}
        if (last is not None and last.get("status") in TERMINAL
                and last.get("t", 0) >= proc.get("started", 0)):
            status, message = last["status"], last.get("message", "")
        else:
            said = slurm.verdict_message(act.paths, act.attempt, job, job_id, cancelled)
            if said is None:
                verdict = runstore.derive_status(act.paths, None)
                said = (verdict.status, verdict.message)
            status, message = said
        self._ended(run_id, act, status, message)

    def _handle_cancel(self, run_id: str, act: Active) -> None:
        if not act.paths.cancel.exists():
            return
        now = time.time()
        if act.term_sent is None:
            act.term_sent = now
            self._executor(act).signal(act.handle, signal.SIGTERM)
        elif now - act.term_sent > CANCEL_GRACE and not act.handle.job_id:
            self._executor(act).signal(act.handle, signal.SIGKILL)  # Slurm kills at KillWait

    def _executor(self, act: Active) -> LocalExecutor | SlurmExecutor:
        return self.slurm() if act.handle.job_id else self.executor

    def _dispatch(self) -> None:
        queued = self.index.queued_ids()
        if not queued:
            return
        settings = QueueSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in
                                    self.index.setting("queue", {}).items()})
        for run_id, attempt in queued:
            if run_id in self.active:
                continue
            if self.logs.run(run_id).cancel.exists():
                self.index.set_status(run_id, "cancelled", "cancelled before it started",
                                      expect=("queued",))
                continue
            slot = None if settings.executor == "slurm" else self._free_slot(settings)
            if slot is False:
                return
            try:
                self._start(run_id, attempt + 1, slot, settings)
            except Exception:
                log.exception("starting %s failed", run_id)

    def _free_slot(self, settings: QueueSettings) -> str | None | bool:
        """A GPU index (as CUDA_VISIBLE_DEVICES), None for a CPU slot, False for none free."""
        used: dict[str | None, int] = {}
        for act in self.active.values():
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
        spec = None
        try:
            spec = runstore.load_spec(paths)
            if settings is not None and settings.executor == "slurm":
                options = spec.slurm if spec.slurm is not None else settings.slurm
                handle = self.slurm().start(spec, paths, options, attempt)
            else:
                handle = self.executor.start(spec, paths, gpu)
        except Exception as e:  # noqa: BLE001 - any failure to start is the run's, not ours
            message = describe_start_error(spec, e) if spec and isinstance(e, OSError) else str(e)
            atomic.write_json(paths.proc, {"pid": 0, "attempt": attempt, "start_time": 0,
                                           "started": time.time()})
            atomic.write_json(paths.exit, {"returncode": None, "attempt": attempt,
                                           "start_error": message, "ended": time.time()})
            self.index.set_status(run_id, "failed", message, ended=time.time())
            return
        if handle.job_id:
            atomic.write_json(paths.proc, {"pid": 0, "attempt": attempt, "started": time.time(),
                                           "executor": "slurm", "job_id": handle.job_id})
        else:
            runstore.write_proc(paths, handle.pid, attempt, gpu=gpu)
        proc = runstore.read_json(paths.proc) or {}
        act = Active(paths, handle, attempt, gpu, start_time=proc.get("start_time"))
        self._catch_up(run_id, act, from_scratch=True)
        self.active[run_id] = act
        if handle.job_id:
            self.index.set_status(run_id, "starting", f"slurm job {handle.job_id} submitted",
                                  pid=None, started=time.time())
        else:
            self.index.set_status(run_id, "running", "", pid=handle.pid, started=time.time())
        log.info("started %s (pid %s, gpu %s, job %s)", run_id, handle.pid, gpu, handle.job_id)

    def _scan(self) -> None:
        """Index run directories it does not know (a script run by hand, a copied run)."""
        self._last_scan = time.time()
        known = {r.id for r in self.index.runs()}
        for rid in runstore.run_ids(self.logs):
            if rid not in known and rid not in self.active:
                try:
                    self.index.reindex_run(rid)
                except TuiexpError:
                    pass


# -- the lock and the process -------------------------------------------------
def try_lock(logs: LogsDir) -> int | None:
    """Take the one-supervisor lock; the fd keeps it (None if another holds it)."""
    logs.ensure()
    fd = os.open(logs.daemon_lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_running(logs: LogsDir) -> bool:
    if not logs.daemon_lock.exists():
        return False
    fd = try_lock(logs)
    if fd is None:
        return True
    os.close(fd)
    return False


def info(logs: LogsDir) -> dict[str, object] | None:
    return runstore.read_json(logs.daemon_info) if is_running(logs) else None


def spawn(logs: LogsDir, wait: float = 10.0) -> bool:
    """Start a detached supervisor for `logs` unless one runs; True once one runs."""
    if is_running(logs):
        return True
    logs.ensure()
    with open(logs.daemon_log, "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "tuiexp.core.daemon", "--logs", str(logs.root)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if is_running(logs):
            return True
        time.sleep(0.05)
    return False


def stop(logs: LogsDir, wait: float = 10.0) -> bool:
    """Stop the supervisor (runs go on; the next one adopts them)."""
    data = info(logs)
    if not data:
        return False
    try:
        os.kill(int(data["pid"]), signal.SIGTERM)  # type: ignore[arg-type]
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and is_running(logs):
        time.sleep(0.05)
    return not is_running(logs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tuiexp-daemon")
    ap.add_argument("--logs", default="logs")
    args = ap.parse_args(argv)
    logs = LogsDir.at(args.logs)
    fd = try_lock(logs)
    deadline = time.monotonic() + 1.0
    while fd is None and time.monotonic() < deadline:
        # a client's is_running() probe holds the lock for an instant: retry past it,
        # unless a live supervisor holds it (exactly one per logs directory)
        other = runstore.read_json(logs.daemon_info)
        if other and runstore.pid_alive(int(other["pid"])):
            return 0
        time.sleep(0.05)
        fd = try_lock(logs)
    if fd is None:
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stdout)
    atomic.write_json(logs.daemon_info, {"pid": os.getpid(), "started": time.time()})
    sup = Supervisor(logs)

    def on_term(signum: int, frame: object) -> None:
        sup.stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log.info("supervising %s (pid %d)", logs.root, os.getpid())
    sup.serve()
    Path(logs.daemon_info).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
