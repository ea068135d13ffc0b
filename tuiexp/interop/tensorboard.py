"""Turn TensorBoard event files into tuiexp runs (`tuiexp import tb LOGDIR`).

One run per directory holding event files (as TensorBoard shows them), except
the directories torch's SummaryWriter makes beside a run: `add_scalars`'
`<main_tag>_<tag>/` and `add_hparams`' `<timestamp>/`, which fold into their
parent's run (`main_tag/tag` metrics, `params`). A tag becomes a metric name
(cleaned as TensorBoard cleans tags), a step a step, a wall time the event's
`t`; hparams plugin data become the run's params. The files are read by
TensorBoard's own reader (the optional `tensorboard` extra), never parsed by
hand. Importing is idempotent: each run records its source directory in
`source.json`, and a source already imported is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..store import atomic, events
from ..store.metrics import clean_tag
from ..store.paths import LogsDir, RunPaths
from ..store.spec import RunSpec, check_experiment_name, new_run_id

EVENT_FILE = "events.out.tfevents."
SOURCE_FILE = "source.json"  # in an imported run's directory: where it came from


@dataclass
class TbRun:
    """What one TensorBoard run holds, read and folded, before it is written."""

    source: Path
    params: dict[str, Any] = field(default_factory=dict)
    #: step -> (latest wall time, {metric: value})
    steps: dict[int, tuple[float, dict[str, float]]] = field(default_factory=dict)
    notes: list[tuple[float, int, str, str]] = field(default_factory=list)
    scalars: int = 0

    def add(self, name: str, step: int, wall: float, value: float) -> None:
        t, values = self.steps.get(step, (wall, {}))
        values[name] = value  # a repeated step (a restarted run): the later value wins
        self.steps[step] = (max(t, wall), values)
        self.scalars += 1

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.steps.values()] + [n[0] for n in self.notes]


@dataclass
class Imported:
    created: list[str] = field(default_factory=list)  # run ids
    skipped: list[Path] = field(default_factory=list)  # sources imported before
    scalars: int = 0


def event_dirs(logdir: Path) -> list[Path]:
    """Every directory under `logdir` (itself included) that holds event files."""
    found = {Path(root) for root, _, files in os.walk(logdir)
             if any(f.startswith(EVENT_FILE) for f in files)}
    return sorted(found)


def imported_sources(logs: LogsDir) -> set[str]:
    """The source directories of runs imported before (from their source.json)."""
    sources: set[str] = set()
    if not logs.runs.is_dir():
        return sources
    for entry in os.scandir(logs.runs):
        try:
            with open(os.path.join(entry.path, SOURCE_FILE)) as f:
                sources.add(json.load(f)["tensorboard"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sources


def import_tb(logs: LogsDir, logdir: str | Path, experiment: str | None = None) -> Imported:
    """Import every TensorBoard run under `logdir` into `logs`; skip those already there."""
    logdir = Path(logdir).expanduser().resolve()
    if not logdir.is_dir():
        raise UsageError(f"{logdir} is not a directory.")
    experiment = check_experiment_name(experiment) if experiment else _experiment_of(logdir)
    dirs = event_dirs(logdir)
    if not dirs:
        raise UsageError(f"no TensorBoard event files ({EVENT_FILE}*) under {logdir}.")
    done = imported_sources(logs)
    result = Imported()
    for run in read_runs(dirs):
        if str(run.source) in done:
            result.skipped.append(run.source)
            continue
        result.created.append(write_run(logs, run, experiment, logdir))
        result.scalars += run.scalars
    return result


def read_runs(dirs: list[Path]) -> list[TbRun]:
    """Read each directory; fold torch's add_scalars/add_hparams children into parents."""
    runs: dict[Path, TbRun] = {}
    for d in dirs:  # sorted: a parent comes before its children
        parent = runs.get(d.parent)
        acc = _load(d)
        if parent is not None and _is_companion(d, acc):
            _read_into(parent, acc, prefix=_scalars_prefix(d, acc))
        else:
            runs[d] = TbRun(source=d)
            _read_into(runs[d], acc, prefix=None)
    return list(runs.values())


def _load(d: Path) -> Any:
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
    except ImportError:
        raise UsageError("`tuiexp import tb` needs the tensorboard package: "
                         "pip install 'tuiexp[tensorboard]'.") from None
    acc = ea.EventAccumulator(str(d), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    return acc


def _hparams(acc: Any) -> dict[str, Any] | None:
    from tensorboard.plugins.hparams import metadata

    try:
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    except KeyError:
        return None
    raw = content.get(metadata.SESSION_START_INFO_TAG)
    if raw is None:
        return None
    info = metadata.parse_session_start_info_plugin_data(raw)
    return {name: _value(v) for name, v in info.hparams.items()}


def _value(v: Any) -> Any:
    kind = v.WhichOneof("kind")
    return None if kind in (None, "null_value") else getattr(v, kind)


def _is_companion(d: Path, acc: Any) -> bool:
    """A directory torch's writer made for its parent: add_hparams or add_scalars."""
    return _hparams(acc) is not None or _scalars_prefix(d, acc) is not None


def _scalars_prefix(d: Path, acc: Any) -> str | None:
    """add_scalars("a/b", {"x": ..}) writes tag "a/b" in dir `a_b_x`: the metric "a/b/x"."""
    tags = set(acc.Tags().get("scalars", [])) | set(_scalar_tensor_tags(acc))
    if len(tags) != 1:
        return None
    (tag,) = tags
    head = tag.replace("/", "_") + "_"
    return f"{tag}/{d.name[len(head):]}" if d.name.startswith(head) and d.name != head else None


def _scalar_tensor_tags(acc: Any) -> list[str]:
    return [t for t in acc.Tags().get("tensors", [])
            if acc.SummaryMetadata(t).plugin_data.plugin_name == "scalars"]


def _read_into(run: TbRun, acc: Any, prefix: str | None) -> None:
    """Add a directory's scalars (named `prefix` when it folds add_scalars), hparams, text."""
    from tensorboard.util import tensor_util

    params = _hparams(acc)
    if params:
        run.params.update(params)
    for tag in acc.Tags().get("scalars", []):
        name = clean_tag(prefix or tag)
        for ev in acc.Scalars(tag):
            run.add(name, ev.step, ev.wall_time, _float32(ev.value))
    for tag in acc.Tags().get("tensors", []):
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        for ev in acc.Tensors(tag):
            array = tensor_util.make_ndarray(ev.tensor_proto)
            if plugin == "scalars" and array.size == 1:
                run.add(clean_tag(prefix or tag), ev.step, ev.wall_time, _number(array))
            elif plugin == "text":
                text = " ".join(x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
                                for x in array.flat)
                run.notes.append((ev.wall_time, ev.step, tag.removesuffix("/text_summary"), text))


def _float32(value: float) -> float:
    """TensorBoard stores float32: 0.9 comes back as 0.8999999761581421; show it as 0.9."""
    import numpy as np

    return float(str(np.float32(value)))


def _number(array: Any) -> float:
    item = array.reshape(()).item() if array.dtype.kind in "iuf" else float("nan")
    return _float32(item) if array.dtype.itemsize == 4 and array.dtype.kind == "f" else item


def write_run(logs: LogsDir, run: TbRun, experiment: str, logdir: Path) -> str:
    """Write one imported run, whole, under a hidden name, then rename it into place."""
    times = run.times or [os.path.getmtime(run.source)]
    first, last = min(times), max(times)
    spec = RunSpec(id=new_run_id(experiment, now=first), experiment=experiment,
                   params=run.params, command=("(imported from tensorboard)",),
                   created=first, tags=("tensorboard",))
    logs.ensure()
    for _ in range(20):
        final = logs.run(spec.id)
        if not final.dir.exists():
            break
        spec = replace(spec, id=new_run_id(experiment, now=first))
    staging = RunPaths(logs.runs / f".new-{spec.id}-{os.getpid()}")
    try:
        staging.ckpt.mkdir(parents=True)
        atomic.write_json(staging.spec, spec.to_json())
        atomic.write_json(staging.queue, {"attempt": 1, "priority": 0, "queued": first})
        # a record of "the process" so the run reads as ended, never as queued: its
        # status event below is final (pid: ours, which will be dead; start: the log's)
        atomic.write_json(staging.proc, {"pid": os.getpid(), "pgid": os.getpid(), "attempt": 1,
                                         "start_time": first, "started": first,
                                         "standalone": True, "imported": True})
        atomic.write_json(staging.dir / SOURCE_FILE, {"tensorboard": str(run.source),
                                                      "imported": time.time()})
        with open(staging.events, "wb") as f:
            f.write(_events(run, logdir, first, last))
        os.rename(staging.dir, final.dir)
    except BaseException:
        shutil.rmtree(staging.dir, ignore_errors=True)
        raise
    atomic.fsync_dir(logs.runs)
    return spec.id


def _events(run: TbRun, logdir: Path, first: float, last: float) -> bytes:
    enc = events.encode
    rel = str(run.source.relative_to(logdir)) if run.source != logdir else "."
    out = [enc("start", first, {"pid": None, "host": None, "argv": None}),
           enc("meta", first, {"source": "tensorboard", "tensorboard_dir": str(run.source),
                               "tensorboard_run": rel})]
    if run.params:
        out.append(enc("params", first, {"params": run.params}))
    for step in sorted(run.steps):
        t, values = run.steps[step]
        if 0 <= step < 2**63:
            out.append(enc("step", t, {**values, "step": step}))
    for t, step, tag, text in sorted(run.notes):
        out.append(enc("note", t, {"tag": tag, "text": text, "step": step}))
    out.append(enc("status", last, {"status": "finished",
                                    "message": f"imported from TensorBoard ({run.source})"}))
    return b"".join(out)


def _experiment_of(logdir: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", logdir.name).strip("-.") or "tensorboard"
    return check_experiment_name(name)
