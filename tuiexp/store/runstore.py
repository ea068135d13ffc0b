"""Run directories: create them, read them, and derive a run's true status from them.

The directory is the record (as in Guild AI): the status comes from what is
there — a final `status` event, the supervisor's exit record, a live pid —
never from a flag a crash could leave stale.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ForkError, RunNotFound, UsageError
from . import atomic, events
from .paths import LogsDir, RunPaths, is_run_id
from .spec import RunSpec, new_run_id


def create(logs: LogsDir, spec: RunSpec, init_checkpoint: Path | None = None,
           standalone_pid: int | None = None) -> RunPaths:
    """Make the run directory, queued (or, for a script run by hand, already running).

    It is built whole under a hidden name and renamed into place, so a supervisor
    never sees a half-made run (a fork without its starting weights, say)."""
    logs.ensure()
    final = logs.run(spec.id)
    if final.dir.exists():
        raise UsageError(f"run {spec.id} already exists in {logs.runs}.")
    staging = RunPaths(logs.runs / f".new-{spec.id}-{os.getpid()}")
    try:
        staging.ckpt.mkdir(parents=True)
        atomic.write_json(staging.spec, spec.to_json())
        atomic.write_json(staging.queue, {"attempt": 1, "priority": spec.priority,
                                          "queued": time.time()})
        if init_checkpoint is not None:
            link_init_checkpoint(staging, init_checkpoint)
        if standalone_pid is not None:
            write_proc(staging, standalone_pid, attempt=1, standalone=True)
        os.rename(staging.dir, final.dir)  # refused when the id was taken meanwhile
    except OSError:
        shutil.rmtree(staging.dir, ignore_errors=True)
        if final.dir.exists():
            raise UsageError(f"run {spec.id} already exists in {logs.runs}.") from None
        raise
    atomic.fsync_dir(logs.runs)
    return final


def create_unique(logs: LogsDir, spec: RunSpec, **kw: Any) -> tuple[RunSpec, RunPaths]:
    """Create with a fresh id, retrying on the (rare) collision of two clients."""
    for _ in range(20):
        try:
            return spec, create(logs, spec, **kw)
        except UsageError:
            spec = replace(spec, id=new_run_id(spec.experiment))
    raise UsageError(f"could not find a free run id under {logs.runs}.")


def create_standalone(root: Path, name: str, params: dict[str, Any]) -> Path:
    """A run for a script started by hand, outside the queue."""
    logs = LogsDir.at(root)
    spec = RunSpec(id=new_run_id(name), experiment=name, params=params, command=("(by hand)",))
    _, paths = create_unique(logs, spec, standalone_pid=os.getpid())
    return paths.dir


def load_spec(paths: RunPaths) -> RunSpec:
    try:
        return RunSpec.from_json(json.loads(paths.spec.read_text()))
    except FileNotFoundError:
        raise RunNotFound(f"no run '{paths.run_id}' in {paths.dir.parent}.") from None
    except (ValueError, TypeError) as e:
        raise UsageError(f"{paths.spec} is not a valid run spec ({e}).") from None


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content; None when the file is missing or is not JSON."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data


def pid_alive(pid: int, start_time: float | None = None) -> bool:
    """Is `pid` alive and still the process we started (not a recycled pid)?"""
    try:
        os.kill(pid, 0)
    except OSError as e:
        if e.errno == errno.ESRCH:
            return False
    if start_time is not None:
        started = process_start_time(pid)
        if started is not None and abs(started - start_time) > 2.0:
            return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


def process_start_time(pid: int) -> float | None:
    """Wall-clock start of a process from /proc (None where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


#: seconds a supervisor may take from claiming an attempt to recording its process
START_GRACE = 30.0


def claim_age(paths: RunPaths, attempt: int) -> float | None:
    """Seconds since `attempt` was claimed (None: it was not)."""
    try:
        return time.time() - paths.claim(attempt).stat().st_mtime
    except FileNotFoundError:
        return None


@dataclass
class Verdict:
    status: str
    message: str = ""
    dropped: int = 0  # events the run could not write (its final record says so)


def derive_status(paths: RunPaths, last_status_event: dict[str, Any] | None) -> Verdict:
    """The true status of a run from its directory alone: the run's own last word (its
    final status event, else its final record), else the supervisor's exit record, else
    whether its process lives. Events the run could not write are part of the verdict."""
    queued = read_json(paths.queue) or {}
    proc = read_json(paths.proc)
    attempt = proc.get("attempt", 0) if proc else 0
    asked = queued.get("attempt", 1)
    if asked > attempt:  # asked for, not started yet
        if paths.cancel.exists():
            return Verdict("cancelled", "cancelled before it started")
        claimed = claim_age(paths, asked)
        if claimed is not None and claimed < START_GRACE:
            return Verdict("starting")  # its supervisor is starting it right now
        if claimed is not None:
            return Verdict("crashed", f"its supervisor stopped while starting attempt {asked}, "
                                      "before the process was recorded; resume it")
        return Verdict("queued")
    started = (proc or {}).get("started", 0)
    final = read_json(paths.final)
    if final is not None and final.get("t", 0) < started:
        final = None  # the record of the attempt before
    return _with_losses(_verdict(paths, proc, attempt, started, last_status_event, final), final)


def _verdict(paths: RunPaths, proc: dict[str, Any] | None, attempt: int, started: float,
             last: dict[str, Any] | None, final: dict[str, Any] | None) -> Verdict:
    # (a status older than this attempt's start belongs to the attempt before)
    if last is not None and last.get("status") in events.TERMINAL and last.get("t", 0) >= started:
        return after_prune(paths, Verdict(last["status"], last.get("message", "")), last.get("t"))
    if final is not None and final.get("status") in events.TERMINAL:
        return after_prune(paths, Verdict(final["status"], final.get("message", "")), final.get("t"))
    exit_rec = read_json(paths.exit)
    if exit_rec is not None and exit_rec.get("attempt") == attempt:
        return after_prune(paths, exit_verdict(exit_rec), exit_rec.get("ended"))
    if proc is not None and proc.get("executor") == "slurm":  # its liveness is Slurm's to say
        return Verdict("running" if proc.get("job_id") else "starting")
    alive = writer_alive(proc) if proc is not None else False
    if alive is None:  # on another host: its events say how it goes
        return Verdict("running", f"on {proc['host']}" if proc else "")
    if alive:
        return Verdict("running")
    return Verdict("crashed", "the process died while no supervisor watched it")


#: how a run ends when it went wrong: never turned into `pruned`
FAILURES = ("failed", "crashed", "diverged", "oom")


def after_prune(paths: RunPaths, verdict: Verdict, ended: float | None) -> Verdict:
    """A run that ended after its study's pruner asked it to stop (`prune.request`, written
    in this attempt), with any status but a failure or a cancel the user asked for, was
    pruned: it stopped on the verdict (an Optuna user's `raise TrialPruned`, here a plain
    `finish()`), or trained on regardless; either way its last value is no final result."""
    if verdict.status in FAILURES or verdict.status == "pruned" or not paths.prune.exists():
        return verdict
    if verdict.status == "cancelled" and paths.cancel.exists():
        return verdict
    asked = prune_request(paths)
    started = (read_json(paths.proc) or {}).get("started", 0)
    if asked is None or asked[0] < started or (ended is not None and asked[0] > ended):
        return verdict  # asked of an earlier attempt, or after this one had ended
    epoch = asked[1]
    return Verdict("pruned", "pruned by its study" + (f" after epoch {epoch}" if epoch else ""))


def request_prune(paths: RunPaths, epoch: int) -> None:
    """A study's pruner judged the run hopeless after `epoch`."""
    atomic.write_json(paths.prune, {"epoch": epoch, "t": time.time()})


def prune_request(paths: RunPaths) -> tuple[float, int | None] | None:
    """When the prune was asked for and after which epoch; None without a request. (A
    request of an older form holds a bare time; the file's mtime where it holds none.)"""
    try:
        text = paths.prune.read_text()
        mtime = paths.prune.stat().st_mtime
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        t, epoch = data.get("t"), data.get("epoch")
        return (float(t) if isinstance(t, (int, float)) else mtime,
                epoch if isinstance(epoch, int) else None)
    return (float(data) if isinstance(data, (int, float)) else mtime), None


def _with_losses(verdict: Verdict, final: dict[str, Any] | None) -> Verdict:
    """A run that could not write all its events never ends silently short: the count
    and the reason join its message (`finished · 284,978 events lost: disk full`)."""
    dropped = final.get("dropped", 0) if final else 0
    if not isinstance(dropped, int) or dropped <= 0 or verdict.status not in events.TERMINAL:
        return verdict
    assert final is not None
    lost = f"{dropped:,} events lost: {final.get('reason') or 'not written'}"
    message = f"{verdict.message}; {lost}" if verdict.message else lost
    return Verdict(verdict.status, message, dropped)


def writer_alive(proc: dict[str, Any]) -> bool | None:
    """Whether the process proc.json records is alive; None when it runs on another host
    (a script run by hand on a compute node, writing to a shared logs directory): its
    pid means nothing here, and only its events can tell."""
    host = proc.get("host")
    if host and host != socket.gethostname():
        return None
    return pid_alive(proc["pid"], proc.get("start_time"))


def exit_verdict(exit_rec: dict[str, Any]) -> Verdict:
    rc = exit_rec.get("returncode")
    if rc is None:  # never started, or adopted after a restart (its exit code is lost)
        if exit_rec.get("start_error"):
            return Verdict("failed", exit_rec["start_error"])
        if exit_rec.get("cancelled"):
            return Verdict("cancelled", "cancelled")
        return Verdict("crashed", "it ended without a final status")
    if rc == 0:
        return Verdict("finished")
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        if exit_rec.get("cancelled"):
            return Verdict("cancelled", f"killed by {name} after a cancel")
        return Verdict("crashed", f"killed by {name}")
    return Verdict("failed", f"exited with code {rc}")


def last_status(evs: list[dict[str, Any]]) -> dict[str, Any] | None:
    last = None
    for e in evs:
        if e.get("kind") == "status":
            last = e
        elif e.get("kind") == "start":
            last = None  # a resume starts the story again
    return last


def run_ids(logs: LogsDir) -> list[str]:
    """Names of the directories under runs/ that look like runs: a valid id and a
    run.json (hidden staging directories and stray names are not runs). Whether the
    run.json agrees is `check_run_dir`'s business."""
    try:
        return sorted(p.name for p in logs.runs.iterdir()
                      if is_run_id(p.name) and (p / "run.json").exists())
    except FileNotFoundError:
        return []


def check_run_dir(paths: RunPaths) -> str | None:
    """Why a run directory cannot be indexed, as one sentence; None when it can.

    The directory's name is the run's id: a run.json that is unreadable, or that
    names another run (a copied or hand-edited directory), is reported, never
    merged into the run it names."""
    return _inspect(paths)[0]


def checked_spec(paths: RunPaths) -> RunSpec:
    """A run directory's spec, read once: RunNotFound where it has none, a UsageError
    with `check_run_dir`'s sentence where it cannot be a run."""
    if not paths.dir.is_dir():
        return load_spec(paths)  # raises RunNotFound with the place
    problem, spec = _inspect(paths)
    if spec is None:
        raise UsageError(problem or f"{paths.spec} is not a valid run spec.")
    return spec


def _inspect(paths: RunPaths) -> tuple[str | None, RunSpec | None]:
    name = paths.dir.name
    if not is_run_id(name):
        return (f"{paths.dir} is not named like a run id (letters, digits, '_', '-', '.'); "
                f"move it out of {paths.dir.parent}."), None
    try:
        data = json.loads(paths.spec.read_text())
    except FileNotFoundError:
        return f"{paths.dir} has no run.json; move it out of {paths.dir.parent}.", None
    except OSError as e:
        return f"{paths.spec} cannot be read ({e.strerror or e}).", None
    except ValueError as e:  # not JSON, or not UTF-8
        return f"{paths.spec} is not valid JSON ({e}).", None
    if not isinstance(data, dict):
        return f"{paths.spec} does not hold a run spec (a JSON object).", None
    rid = data.get("id")
    if rid != name:
        shown = f"'{rid}'" if isinstance(rid, str) else "no valid id"
        return (f"{paths.spec} names run {shown}, not '{name}' as its directory does (a "
                f"copied or hand-edited run?); move it out of {paths.dir.parent} to keep it."), None
    try:
        return None, RunSpec.from_json(data)
    except (TypeError, ValueError) as e:
        return f"{paths.spec} is not a valid run spec ({e}).", None


def checkpoint_epochs(paths: RunPaths) -> list[int]:
    """Epochs that have a checkpoint file in a run directory, ascending."""
    out = []
    try:
        names = os.listdir(paths.ckpt)
    except FileNotFoundError:
        return []
    for name in names:
        if name.startswith("epoch-") and name.endswith(".pt") and name[6:-3].isdigit():
            out.append(int(name[6:-3]))
    return sorted(out)


def fork_source(parent: RunPaths, epoch: int | None) -> tuple[int, Path]:
    """The parent's checkpoint a fork starts from (default: its latest)."""
    have = checkpoint_epochs(parent)
    if not have:
        raise ForkError(f"run {parent.run_id} has no checkpoint to fork from.")
    if epoch is None:
        epoch = have[-1]
    if epoch not in have:
        listed = ", ".join(map(str, have))
        raise ForkError(
            f"run {parent.run_id} has no checkpoint at epoch {epoch} (it has: {listed})."
        )
    return epoch, parent.checkpoint(epoch)


def link_init_checkpoint(child: RunPaths, source: Path) -> None:
    """Give the child its own name for the parent's checkpoint, so the parent's
    retention can never delete the weights a queued fork will start from."""
    target = child.ckpt / "init.pt"
    try:
        os.link(source, target)
    except OSError:
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)


def asked_attempt(paths: RunPaths) -> int:
    """The attempt a client asked for (queue.json); the supervisor starts that one."""
    asked = (read_json(paths.queue) or {}).get("attempt", 1)
    return asked if isinstance(asked, int) and asked >= 1 else 1


def claim(paths: RunPaths, attempt: int) -> bool:
    """Take the right to start `attempt`, in the run directory, once and for all: False
    when the directory says it was taken or ran already (a claim, proc.json of this
    attempt or later, its exit record), whatever any index says. The claim file is
    made with O_EXCL, so of two supervisors with different index files one wins."""
    proc = read_json(paths.proc) or {}
    if proc.get("attempt", 0) >= attempt or (read_json(paths.exit) or {}).get("attempt") == attempt:
        return False
    try:
        fd = os.open(paths.claim(attempt), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    try:
        os.write(fd, f'{{"pid": {os.getpid()}, "t": {time.time():.3f}}}\n'.encode())
    except OSError:
        pass  # an empty claim is a claim all the same (a full disk)
    finally:
        os.close(fd)
    return True


def next_attempt(paths: RunPaths) -> int:
    """The attempt a resume asks for: after every one started or claimed."""
    last = int((read_json(paths.proc) or {}).get("attempt", 0))
    try:
        names = os.listdir(paths.dir)
    except OSError:
        names = []
    for name in names:
        if name.startswith("attempt-") and name.endswith(".claim") and name[8:-6].isdigit():
            last = max(last, int(name[8:-6]))
    return last + 1


def write_proc(paths: RunPaths, pid: int, attempt: int, **extra: Any) -> None:
    """proc.json: the process, its process group (the group a cancel signals: a script
    run by hand may not lead one), the host whose pid it is, the attempt."""
    try:
        pgid = os.getpgid(pid)
    except OSError:
        pgid = pid
    atomic.write_json(
        paths.proc,
        {"pid": pid, "pgid": pgid, "host": socket.gethostname(), "attempt": attempt,
         "start_time": process_start_time(pid) or time.time(), "started": time.time(), **extra},
    )
