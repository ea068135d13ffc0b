"""Slurm, through its own commands: `sbatch` a generated script, `squeue` (and `sacct`
where accounting is on) for state, `scancel` to stop.

Why not submitit: a tuiexp run is a command whose only output is its run directory,
so submitit's pickled callable and result file add nothing; its job state comes only
from `sacct` (without accounting every job looks UNKNOWN, and one killed before writing
its result never looks done); its job-side handler ignores SIGTERM, so a cancel waits
for KillWait. Three plain commands do what is needed and work with or without accounting.

The job runs `python -m tuiexp.queue.slurm_job`, which checks that the node sees the run
directory (a marker file the supervisor wrote), records its node, turns the
time-limit signal (SIGUSR1) into a `stop.request` file, runs the same argv the local
executor runs, and records the return code. The index and the supervisor stay here.

A controller that does not answer is not a refusal. sbatch, squeue and scancel wait
about 9 s for a controller that is down, so they run off the supervisor's tick
(`Retrying`, and the Poller's own thread), and a failed command is told apart by
`scontrol ping`, which answers at once: controller down, retried with back-off (1, 2,
4 ... 60 s); controller up, Slurm refused. A job is named after its run and attempt,
and looked for by that name before every sbatch: a submission that timed out but went
through is found, never submitted twice.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..store import atomic, faults
from ..store.paths import RunPaths

#: Seconds before the time limit the job gets SIGUSR1 (Slurm may send it up to ~30 s early).
SIGNAL_BEFORE = 90
#: Exit code of the job wrapper when the node cannot see the run directory.
EXIT_NOT_SHARED = 86
MARKER = ".slurm-marker"
JOB_FILE = "job.json"  # written by the job on the node: attempt, job id, node, return code
POLL_EVERY = 1.0  # seconds between squeue calls (one call for all jobs)
TIMEOUT = 30.0  # seconds a Slurm command may take before we give up on it this time
BACKOFF = (1.0, 60.0)  # first and longest wait between tries while the controller is down

TERMINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL",
                   "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED")


class SlurmError(UsageError):
    """Slurm refused or is missing; the message is one sentence for the user."""


class SlurmUnavailable(Exception):
    """The controller did not answer (down, unreachable, too slow): not a refusal; the
    same command is tried again later."""


def controller_up() -> bool:
    """Whether the controller answers (`scontrol ping`: at once, up or down)."""
    try:
        out = subprocess.run(["scontrol", "ping"], capture_output=True, timeout=TIMEOUT,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def available() -> bool:
    return shutil.which("sbatch") is not None


def require(where: str) -> None:
    """One sentence when the executor is slurm but this machine has no `sbatch`."""
    if not available():
        raise SlurmError(f"{where}: executor = \"slurm\", but `sbatch` is not on this machine's "
                         f"PATH (run tuiexp on the cluster's login node, or set executor = \"local\").")


def sbatch_options(settings: dict[str, Any]) -> list[str]:
    """The settings as sbatch options (the free `sbatch` list last, so it can override)."""
    opts = []
    for key in ("partition", "gres", "cpus_per_task", "mem", "time", "account", "qos", "constraint"):
        if settings.get(key) not in (None, ""):
            opts.append(f"--{key.replace('_', '-')}={settings[key]}")
    return [*opts, *settings.get("sbatch", [])]


# -- submitting -----------------------------------------------------------------------------
def job_script(paths: RunPaths, argv: list[str], attempt: int, token: str, cwd: str | None) -> str:
    """The batch script: `exec` the wrapper, so the time-limit signal reaches it directly."""
    wrapper = [sys.executable, "-m", "tuiexp.queue.slurm_job", str(paths.dir), token, str(attempt),
               "--", *argv]
    lines = ["#!/bin/sh", f"# tuiexp run {paths.run_id}, attempt {attempt}",
             "export PYTHONUNBUFFERED=1",
             f"export TUIEXP_RUN_DIR={shlex.quote(str(paths.dir))}"]
    if cwd:
        lines.append(f"cd {shlex.quote(cwd)} || exit {EXIT_NOT_SHARED}")
    lines.append("exec " + " ".join(shlex.quote(a) for a in wrapper))
    return "\n".join(lines) + "\n"


def job_name(paths: RunPaths, attempt: int) -> str:
    """A job's name: its run and attempt (how a submission that timed out is found)."""
    return f"tuiexp-{paths.run_id}-a{attempt}"


def find_job(name: str) -> str | None:
    """The id of a job of this name Slurm knows (pending, running or recently ended);
    SlurmUnavailable when the controller does not answer."""
    try:
        out = subprocess.run(["squeue", "-h", "-t", "all", f"--name={name}", "-o", "%i"],
                             capture_output=True, text=True, timeout=TIMEOUT,
                             stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SlurmError("`squeue` is not on this machine's PATH.") from None
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable(f"squeue did not answer within {TIMEOUT:.0f} s") from None
    if out.returncode != 0:
        raise SlurmUnavailable(refusal(out.stderr))
    ids = [j for j in out.stdout.split() if j.isdigit()]
    return ids[-1] if ids else None


def submit(paths: RunPaths, argv: list[str], attempt: int, settings: dict[str, Any],
           cwd: str | None, experiment: str) -> str:
    """sbatch the run, unless a job of its name exists already; returns the job id.
    SlurmError with Slurm's refusal; SlurmUnavailable while the controller does not
    answer (a timed-out sbatch may have gone through: the next try finds it by name)."""
    name = job_name(paths, attempt)
    for last in (False, True):
        found = find_job(name)
        if found is not None:
            return found
        token = secrets.token_hex(8)
        atomic.write_text(paths.dir / MARKER, token + "\n")
        script = paths.dir / f"slurm-{attempt}.sh"
        atomic.write_text(script, job_script(paths, argv, attempt, token, cwd))
        before = settings.get("signal_before", SIGNAL_BEFORE)
        cmd = ["sbatch", "--parsable", f"--job-name={name}",
               f"--output={paths.stdout}", "--open-mode=append", f"--signal=B:USR1@{before}",
               "--no-requeue", *sbatch_options(settings), str(script)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                                 stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise SlurmError(f"experiment '{experiment}': `sbatch` is not on this machine's "
                             "PATH.") from None
        except subprocess.TimeoutExpired:
            raise SlurmUnavailable(f"sbatch did not answer within {TIMEOUT:.0f} s") from None
        if out.returncode == 0:
            job_id = out.stdout.strip().split(";")[0]
            if not job_id.isdigit():
                raise SlurmError(f"experiment '{experiment}': sbatch answered "
                                 f"{out.stdout.strip()!r}, not a job id.")
            faults.point("slurm.submitted")  # (a job the run directory does not name yet)
            return job_id
        if not controller_up():
            raise SlurmUnavailable(refusal(out.stderr))
        if last:  # the controller answers, and said no twice: a refusal
            raise SlurmError(f"Slurm refused the job of experiment '{experiment}': "
                             f"{refusal(out.stderr)} (sbatch "
                             f"{' '.join(sbatch_options(settings))}).")
        # the controller is up now: it may have come back while sbatch waited; once more
    raise AssertionError("unreachable")  # pragma: no cover


class Retrying:
    """A Slurm command in a background thread (it may wait ~9 s for a controller that
    is down), tried again while the controller does not answer: after 1, 2, 4 ... 60 s,
    probing with `scontrol ping` first. `result` once it answered, `error` if Slurm
    refused, `down_since` while it waits for the controller."""

    def __init__(self, call: Any, name: str):
        self.result: Any = None
        self.error: SlurmError | None = None
        self.down_since: float | None = None
        self.stopped = False  # asked to give up (the run was cancelled meanwhile)
        self._done = threading.Event()
        self._wake = threading.Event()
        threading.Thread(target=self._run, args=(call,), name=name, daemon=True).start()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def stop(self) -> None:
        """Give up after the try under way (whose result still counts)."""
        self.stopped = True
        self._wake.set()

    def _run(self, call: Any) -> None:
        wait = BACKOFF[0]
        try:
            while not self.stopped:
                try:
                    if self.down_since is None or controller_up():
                        self.result = call()
                        return
                except SlurmUnavailable:
                    pass
                except SlurmError as e:
                    self.error = e
                    return
                self.down_since = self.down_since or time.time()
                self._wake.wait(wait)
                wait = min(BACKOFF[1], wait * 2)
        finally:
            self._done.set()


def refusal(stderr: str) -> str:
    """Slurm's own reason, from sbatch's error lines (the most specific one)."""
    lines = [re.sub(r"^s\w+: error: ", "", ln).strip() for ln in stderr.splitlines()
             if "error" in ln]
    lines = [ln for ln in lines if ln]
    if not lines:
        return stderr.strip() or "no reason given"
    last = re.sub(r"^Batch job submission failed: ", "", lines[-1])
    first = lines[0]
    reason = first if len(lines) > 1 and not first.startswith("Batch job") else last
    return reason.rstrip(".")


def cancel(job_id: str, signal_name: str | None = None) -> bool:
    """scancel the job (TERM, then KILL after KillWait), or send it one signal. True once
    Slurm took it; SlurmUnavailable while the controller does not answer."""
    cmd = ["scancel", job_id] if signal_name is None else ["scancel", "--full",
                                                           f"--signal={signal_name}", job_id]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                             stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return False
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable(f"scancel did not answer within {TIMEOUT:.0f} s") from None
    if out.returncode != 0 and not controller_up():
        raise SlurmUnavailable(refusal(out.stderr))
    return True  # (a job Slurm no longer knows is cancelled enough)


# -- state ----------------------------------------------------------------------------------
@dataclass
class JobState:
    state: str  # Slurm's state: PENDING, RUNNING, COMPLETED, ...
    reason: str = ""
    node: str = ""
    exit_code: str = ""  # "3:0" from sacct

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    def describe(self, job_id: str) -> str:
        """The run's message while the job lives: job id, node or pending reason."""
        if self.state == "PENDING":
            why = f" ({self.reason})" if self.reason and self.reason != "None" else ""
            return f"slurm job {job_id} pending{why}"
        return f"slurm job {job_id} {self.state.lower()} on {self.node or '?'}"


def accounting() -> bool:
    """Is `sacct` usable? TUIEXP_SLURM_ACCOUNTING=on|off forces the answer."""
    forced = os.environ.get("TUIEXP_SLURM_ACCOUNTING", "auto").lower()
    if forced in ("on", "off"):
        return forced == "on"
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                             timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    m = re.search(r"^AccountingStorageType\s*=\s*(\S+)", out.stdout, re.M)
    return m is not None and m.group(1) != "accounting_storage/none"


def squeue(job_ids: list[str]) -> dict[str, JobState] | None:
    """One squeue call for all the jobs; finished ones are listed for MinJobAge.
    None: no answer (slurmctld down or slow), as opposed to "none of these jobs"."""
    if not job_ids:
        return {}
    try:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids),
                              "-o", "%i|%T|%r|%N"], capture_output=True, text=True,
                             timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        return None
    return _parse(out.stdout, ("state", "reason", "node"))


def sacct(job_ids: list[str]) -> dict[str, JobState]:
    """One sacct call for all the jobs (accounting on): final state, exit code, node."""
    if not job_ids:
        return {}
    try:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", ",".join(job_ids),
                              "-o", "JobID,State,Reason,NodeList,ExitCode"], capture_output=True,
                             text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return _parse(out.stdout, ("state", "reason", "node", "exit_code"))


def _parse(text: str, fields: tuple[str, ...]) -> dict[str, JobState]:
    found = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 1 + len(fields) or not parts[0]:
            continue
        kw = dict(zip(fields, parts[1:], strict=False))
        kw["state"] = kw["state"].split()[0].rstrip("+")  # "CANCELLED by 0", "RUNNING+"
        if kw.get("node") in ("None assigned", "(null)"):
            kw["node"] = ""
        found[parts[0]] = JobState(**kw)
    return found


class Poller:
    """The supervisor's view of its jobs: one squeue per POLL_EVERY for all of them, and
    sacct for those that ended (or that squeue no longer lists) when accounting is on,
    in a thread of its own: the tick never waits for a controller that is down."""

    def __init__(self) -> None:
        self.states: dict[str, JobState] = {}
        self.asked: set[str] = set()  # the jobs the last answered query was about
        self.accounting = accounting()
        self._last = 0.0
        self._asking: threading.Thread | None = None
        self._answer: tuple[dict[str, JobState], set[str]] | None = None

    def refresh(self, job_ids: list[str]) -> None:
        """Take the answer of the query in flight, if it came; ask again when due."""
        if self._answer is not None:
            self.states, self.asked = self._answer
            self._answer = None
        if not job_ids or (self._asking is not None and self._asking.is_alive()):
            return
        if time.monotonic() - self._last < POLL_EVERY:
            return
        self._last = time.monotonic()
        self._asking = threading.Thread(target=self._ask, args=(list(job_ids),),
                                        name="slurm-poll", daemon=True)
        self._asking.start()

    def _ask(self, job_ids: list[str]) -> None:
        seen = squeue(job_ids)
        if seen is None:
            return  # keep what we knew; ask again next time
        if self.accounting:
            ask = [j for j in job_ids if j not in seen or seen[j].done]
            seen.update(sacct(ask))
        self._answer = (seen, set(job_ids))

    def state(self, job_id: str) -> JobState | None:
        return self.states.get(job_id)

    def gone(self, job_id: str) -> bool:
        """Asked about and unknown to Slurm (purged after MinJobAge, or a wiped controller)."""
        return job_id in self.asked and job_id not in self.states


@dataclass
class Partition:
    """One line of `sinfo` for the dashboard's cluster panel (instead of local GPUs)."""

    name: str
    default: bool
    available: str  # up / down / drain
    time_limit: str
    nodes: int
    state: str  # idle / mixed / allocated / down ...
    cpus_allocated: int
    cpus_idle: int
    cpus_total: int
    gres: str


def partitions() -> list[Partition]:
    """The cluster's partitions, one sinfo call (empty when sinfo does not answer)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P|%a|%l|%D|%T|%C|%G"], capture_output=True,
                             text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 7:
            continue
        name, avail, limit, nodes, state, cpus, gres = parts
        counts = [int(c) if c.isdigit() else 0 for c in cpus.split("/")]
        alloc, idle, _other, total = counts if len(counts) == 4 else (0, 0, 0, 0)
        found.append(Partition(name.rstrip("*"), name.endswith("*"), avail, limit,
                               int(nodes) if nodes.isdigit() else 0, state, alloc, idle, total,
                               "" if gres == "(null)" else gres))
    return found


# -- the verdict on an ended job -------------------------------------------------------------
def job_record(paths: RunPaths, attempt: int) -> dict[str, Any] | None:
    """What the job wrote on the node for this attempt (None: it never saw the run dir)."""
    from ..store.runstore import read_json

    rec = read_json(paths.dir / JOB_FILE)
    return rec if rec and rec.get("attempt") == attempt else None


def ended(paths: RunPaths, attempt: int, job: JobState | None, cancelled: bool) -> dict[str, Any]:
    """The exit record (exit.json) for a job that ended, from Slurm and the run dir."""
    rec = job_record(paths, attempt)
    exit_rec: dict[str, Any] = {"returncode": rec.get("returncode") if rec else None,
                                "attempt": attempt, "ended": time.time(), "cancelled": cancelled,
                                "slurm_state": job.state if job else "UNKNOWN"}
    if job is not None and job.exit_code:
        exit_rec["slurm_exit_code"] = job.exit_code
    return exit_rec


def verdict_message(paths: RunPaths, attempt: int, job: JobState | None, job_id: str,
                    cancelled: bool) -> tuple[str, str] | None:
    """Status and message for an ended job whose run wrote no final status of its own;
    None where the exit code alone decides (runstore.exit_verdict)."""
    rec = job_record(paths, attempt)
    state = job.state if job else "UNKNOWN"
    if cancelled and (rec is None or rec.get("returncode") is None or state == "CANCELLED"):
        return "cancelled", f"slurm job {job_id} cancelled"
    if rec is None:
        if state == "CANCELLED":
            return "cancelled", f"slurm job {job_id} was cancelled outside tuiexp before it started"
        node = f" on node {job.node}" if job and job.node else ""
        return "failed", (f"slurm job {job_id}{node} could not see its run directory {paths.dir} "
                          f"(no marker file): the logs dir must be on a filesystem the compute "
                          f"nodes share.")
    if state == "OUT_OF_MEMORY":
        return "oom", f"slurm job {job_id} ran out of its memory limit (OUT_OF_MEMORY)"
    if state == "TIMEOUT":
        return "crashed", f"slurm job {job_id} hit its time limit before it could stop; resumable"
    if state == "NODE_FAIL":
        return "crashed", f"slurm job {job_id}: node {job.node if job else '?'} failed"
    if state == "PREEMPTED":
        return "preempted", f"slurm job {job_id} was preempted"
    if rec.get("returncode") is None:
        return "crashed", f"slurm job {job_id} ended ({state}) without a final status; resumable"
    return None


def write_node(paths: RunPaths, job_id: str, node: str) -> None:
    """Note the node in proc.json once the job runs (for show and the dashboard)."""
    from ..store.runstore import read_json

    proc = read_json(paths.proc) or {}
    if proc.get("job_id") == job_id and proc.get("node") != node and node:
        atomic.write_json(paths.proc, {**proc, "node": node})


def marker_path(paths: RunPaths) -> Path:
    return paths.dir / MARKER
