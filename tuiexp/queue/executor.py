"""How a run's process is started and stopped: local subprocesses, or Slurm jobs.

Both have `start`, `poll` and `signal`; the supervisor picks one per run from
`[queue] executor` and records it (and the Slurm job id) in proc.json, so a
restarted supervisor knows which one watches a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..config.command import build_argv
from ..store.paths import RunPaths
from ..store.spec import RunSpec
from . import slurm

BUILTIN = ("-m", "tuiexp.trainer")


def argv_for(spec: RunSpec) -> list[str]:
    """The command line: the built-in trainer, or the user's command (templates and
    flags rendered from the params, see config/command.py) where a leading `python`
    means the interpreter tuiexp runs in (so the run sees the same packages). With
    `scalars` set it runs under the stdout-scalars wrapper (tuiexp/track/scalars.py)."""
    if spec.command is None:
        return [sys.executable, *BUILTIN]
    argv = build_argv(spec)
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    if spec.scalars is None:
        return argv
    pattern = [] if spec.scalars == "stdout" else ["--pattern", spec.scalars]
    return [sys.executable, "-m", "tuiexp.track.scalars", *pattern, "--", *argv]


@dataclass
class Handle:
    pid: int
    popen: subprocess.Popen[bytes] | None  # None for a run adopted after a restart
    job_id: str | None = None  # a Slurm job (pid is then 0)
    group: bool = True  # the process leads its process group (runs the supervisor starts do)


class LocalExecutor:
    name = "local"

    def start(self, spec: RunSpec, paths: RunPaths, gpu: str | None) -> Handle:
        """Start the run in its own process group; raises OSError if it cannot start."""
        paths.stop.unlink(missing_ok=True)  # a stop asked of the attempt before
        env = dict(os.environ)
        # PCI order: the index nvml admitted by is the index CUDA will open
        env.update(TUIEXP_RUN_DIR=str(paths.dir), PYTHONUNBUFFERED="1",
                   CUDA_DEVICE_ORDER="PCI_BUS_ID", CUDA_VISIBLE_DEVICES="" if gpu is None else gpu)
        with open(paths.stdout, "ab") as out:
            popen = subprocess.Popen(
                argv_for(spec), cwd=spec.cwd or None, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return Handle(popen.pid, popen)

    def poll(self, handle: Handle) -> int | None:
        """The return code once the run's leader has exited (None before). Whatever is
        left of its process group is killed first: the run is its process group, and
        while the unreaped leader holds its pid, the group id cannot be reused."""
        if handle.popen is None:
            return None
        try:
            exited = os.waitid(os.P_PID, handle.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped already
            return handle.popen.poll()
        if exited is None:
            return None
        self.signal(handle, signal.SIGKILL)
        return handle.popen.wait()

    def signal(self, handle: Handle, sig: signal.Signals) -> None:
        """Signal the run's whole process group (its DataLoader workers too); a script run
        by hand that leads no group of its own (started from a shell script, a notebook
        kernel) is signalled alone, never the group it belongs to."""
        try:
            if handle.group:
                os.killpg(handle.pid, sig)
            else:
                os.kill(handle.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class SlurmExecutor:
    """Each run one job: sbatch at start, scancel to signal, both off the supervisor's
    tick and retried while the controller is down (slurm.Retrying); `poll` answers from
    the Poller, which the supervisor refreshes once per tick for all jobs (one squeue)."""

    name = "slurm"

    def __init__(self) -> None:
        self.poller = slurm.Poller()

    def submit(self, spec: RunSpec, paths: RunPaths, settings: dict[str, object],
               attempt: int) -> slurm.Retrying:
        """Submit the run (or find its job, submitted before); the job id comes as the
        result, Slurm's refusal as the error."""
        paths.stop.unlink(missing_ok=True)
        argv = argv_for(spec)
        return slurm.Retrying(lambda: slurm.submit(paths, argv, attempt, settings, spec.cwd,
                                                   spec.experiment), f"sbatch-{spec.id}")

    def refresh(self, handles: list[Handle]) -> None:
        self.poller.refresh([h.job_id for h in handles if h.job_id])

    def poll(self, handle: Handle) -> slurm.JobState | None:
        assert handle.job_id is not None
        return self.poller.state(handle.job_id)

    def signal(self, handle: Handle, sig: signal.Signals) -> slurm.Retrying | None:
        """SIGTERM is a plain scancel (Slurm sends TERM, then KILL after KillWait)."""
        job_id = handle.job_id
        if job_id is None:
            return None
        name = None if sig == signal.SIGTERM else sig.name.removeprefix("SIG")
        return slurm.Retrying(lambda: slurm.cancel(job_id, name), f"scancel-{job_id}")


def describe_start_error(spec: RunSpec, err: OSError) -> str:
    """One sentence on why a run's command could not start."""
    what = argv_for(spec)[0]
    where = f" (experiment '{spec.experiment}' in {Path(spec.config_path).name})" if spec.config_path else ""
    if isinstance(err, FileNotFoundError):
        if spec.cwd and not Path(spec.cwd).is_dir():
            return f"its working directory {spec.cwd} does not exist{where}."
        return f"command `{what}` was not found{where}."
    if isinstance(err, PermissionError):
        return f"command `{what}` is not executable{where}."
    return f"command `{what}` could not start: {err.strerror or err}{where}."
