"""`tuiexp check`: everything about a config that can be known before a run starts,
against this machine (commands, scripts, working directories, GPUs), each problem
one sentence with the file, line and key.

One validation path: `require` is what every way of queueing calls (`Client.enqueue`
for `tuiexp run` and the dashboard's `n`, a study's or population's start, the `n`
form's verdict), and `check` reports the same problems for every experiment, so
nothing `check` refuses is ever queued."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.model import Config, Experiment, QueueSettings
from ..config.values import sentence
from ..errors import ConfigError
from . import gpu


@dataclass
class Report:
    runs: dict[str, int] = field(default_factory=dict)  # experiment → number of runs
    problems: list[str] = field(default_factory=list)


def check(cfg: Config) -> Report:
    """Expand every experiment and look at what its runs would need; collects every
    problem rather than stopping at the first."""
    report = Report()
    if not cfg.experiments:
        report.problems.append(f"{cfg.path.name}: no experiments (add an [experiments.NAME] table "
                               f"with a `command` or params for the built-in trainer).")
    for name, exp in cfg.experiments.items():
        runs, problems = experiment_report(cfg, name)
        if runs is not None:
            report.runs[name] = exp.num_runs if exp.search is not None or exp.pbt is not None else len(runs)
        report.problems += problems
    report.problems += gpu_problems(cfg)
    return report


def require(cfg: Config, experiment: str, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The params of `experiment`'s runs (with `overrides`), once everything `check`
    verifies of it and of the queue holds on this machine; else one ConfigError with
    a line per problem, the same lines `check` prints."""
    runs, problems = experiment_report(cfg, experiment, overrides)
    problems += gpu_problems(cfg)
    if problems or runs is None:
        raise ConfigError("\n".join(problems))
    return runs


def experiment_report(cfg: Config, experiment: str, overrides: dict[str, Any] | None = None
                      ) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """One experiment's runs (None when it does not expand) and every problem of it."""
    exp = cfg.experiment(experiment)
    runs, problems = None, []
    try:
        runs = cfg.expand(experiment, overrides or {})
    except ConfigError as e:
        problems.append(str(e))
    problems += experiment_problems(cfg, exp)
    if (problem := parallel_problem(cfg, exp)) is not None:
        problems.append(problem)
    return runs, problems


def capacity(queue: QueueSettings) -> tuple[int | None, str]:
    """How many runs the queue runs at once here (None: no limit here, Slurm's), and why."""
    if queue.executor == "slurm":
        return None, "slurm"
    if isinstance(queue.gpus, tuple):
        n = len(queue.gpus)
    elif queue.gpus == "none":
        n = 0
    else:
        n = len(gpu.gpus())
    if n:
        return n * queue.jobs_per_gpu, f"{n} GPU{'s' if n > 1 else ''} × jobs_per_gpu = {queue.jobs_per_gpu}"
    return queue.cpu_jobs, f"no GPU, cpu_jobs = {queue.cpu_jobs} CPU slot{'s' if queue.cpu_jobs > 1 else ''}"


def parallel_problem(cfg: Config, exp: Experiment) -> str | None:
    """A study's `parallel` above what the queue can run at once on this machine."""
    if exp.search is None:
        return None
    cap, how = capacity(cfg.queue)
    parallel = exp.search["parallel"]
    if cap is None or parallel <= cap:
        return None
    raise_it = "cpu_jobs" if "CPU" in how else "jobs_per_gpu"
    return str(cfg.locate.error(
        f"experiments.{exp.name}.search", "parallel",
        f"`parallel = {parallel}` is more than the queue can run at once ({cap}: {how}); "
        f"lower it or raise [queue] {raise_it}"))


def run_dir_of(cfg: Config, exp: Experiment) -> Path:
    """The working directory a run of `exp` gets (as client.enqueue sets it)."""
    return (cfg.path.parent / Path(exp.cwd or ".").expanduser()).resolve()


def experiment_problems(cfg: Config, exp: Experiment) -> list[str]:
    cwd = run_dir_of(cfg, exp)
    if exp.cwd is not None and not cwd.is_dir():
        return [cfg.where(exp.name, "cwd", f"`cwd` {cwd} does not exist")]
    if exp.command is None:
        return []
    problem = command_problem(exp.command, cwd)
    return [cfg.where(exp.name, "command", problem)] if problem else []


def command_problem(command: tuple[str, ...], cwd: Path) -> str | None:
    """Why `command` cannot start from `cwd`, or None: its executable is not found, or
    the script a leading `python` runs does not exist. Templated parts are not judged."""
    exe = command[0]
    if "{" in exe:
        return None
    if exe in ("python", "python3"):  # tuiexp's own interpreter, always there
        script = _script(command[1:])
        if script is not None and not (cwd / script).is_file():
            return f"`command` runs {script}, which does not exist in {cwd}"
        return None
    if "/" in exe:
        path = cwd / Path(exe).expanduser()
        if not path.is_file():
            return f"`command` runs {exe}, which does not exist in {cwd}"
        if not os.access(path, os.X_OK):
            return f"`command` runs {exe}, which is not executable (chmod +x {exe})"
        return None
    if shutil.which(exe) is None:
        return f"`command` runs `{exe}`, which is not on PATH"
    return None


def _script(args: tuple[str, ...]) -> str | None:
    """The script python runs: its first argument that is not an option, if it ends in
    .py and has no template (`-m module` and `-c code` run no file)."""
    for arg in args:
        if arg.startswith(("-m", "-c")):
            return None
        if arg.startswith("-"):
            continue
        return arg if arg.endswith(".py") and "{" not in arg else None
    return None


def gpu_problems(cfg: Config) -> list[str]:
    """[queue] gpus = [..] against the GPUs nvml sees here (a missing one would leave
    its runs on the CPU, or waiting)."""
    wanted = cfg.queue.gpus
    if not isinstance(wanted, tuple) or not wanted:
        return []
    line = cfg.locate.line("queue", "gpus")
    place = f"{cfg.path.name}, line {line}" if line else cfg.path.name
    present = sorted(g.index for g in gpu.gpus())
    if not present:
        what = (f"`gpus` = {list(wanted)} names GPU indices, but this machine has no GPU that nvml "
                f"can see (use \"auto\" or \"none\")")
    elif missing := [g for g in wanted if g not in present]:
        what = (f"`gpus` names GPU {', '.join(map(str, missing))}, which this machine does not have "
                f"(it has {', '.join(map(str, present))})")
    else:
        return []
    return [f"{place}: {sentence(what)} (in [queue])"]
