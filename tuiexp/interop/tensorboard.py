"""Turn TensorBoard event files into tuiexp runs (`tuiexp import tb LOGDIR`).

One run per directory holding event files (as TensorBoard shows them), named after
TensorBoard's run name (`vgg_lr0.1`, its directory under LOGDIR), except the
directories torch's SummaryWriter makes beside a run: `add_scalars`' `<main_tag>_<tag>/`
and `add_hparams`' `<timestamp>/`, which fold into their parent's run (`main_tag/tag`
metrics, `params`). A tag becomes a metric name (cleaned as TensorBoard cleans tags), a
step a step, a wall time the event's `t`; hparams plugin data become the run's params
(a whole number an int: TensorBoard keeps every hparam number as a double).

The records are read by TensorBoard's own reader (`RawEventFileLoader`, what its
EventAccumulator reads through, without the accumulator's reservoirs), never framed by
hand. That reader stops quietly at a truncated or corrupt record; the bytes it got
through are counted against the file's size, so a damaged file imports what it can and
says so: a line naming the file and the record, a `warning` event, and the run's
message. A file with no readable record makes no run.

Importing is idempotent: each run records its source directory and its files' sizes and
modification times in `source.json`; a source imported before with the same files is
skipped, and one whose files changed since is imported again, as a new run.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import UsageError
from ..store import atomic, events
from ..store.metrics import clean_tag
from ..store.paths import LogsDir, RunPaths, is_run_id
from ..store.spec import RunSpec, check_experiment_name

EVENT_FILE = "events.out.tfevents."
SOURCE_FILE = "source.json"  # in an imported run's directory: where it came from
_RECORD_FRAME = 16  # a record's length (8 bytes), its CRC (4), the data, the data's CRC (4)


@dataclass
class Scalars:
    """One tag's points, in the order read: columns, so the float32 values are turned
    into numbers in one call (`_shortest`)."""

    steps: list[int] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    float32: bool = True  # every value was stored as a float32 (else they are kept exact)

    def append(self, step: int, wall: float, value: float) -> None:
        self.steps.append(step)
        self.walls.append(wall)
        self.values.append(value)


#: a tag's three column appends, bound once (the per-value loop is the import's hot path)
Appenders = tuple[Any, Any, Any]


@dataclass
class DirRead:
    """What one directory's event files hold."""

    path: Path
    scalars: dict[str, Scalars] = field(default_factory=dict)  # tag -> its points
    appenders: dict[str, Appenders] = field(default_factory=dict)  # tag -> its appends
    hparams: dict[str, Any] | None = None
    texts: list[tuple[float, int, str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # a sentence per damaged file
    files: dict[str, list[int]] = field(default_factory=dict)  # name -> [size, mtime_ns]
    records: int = 0


@dataclass
class TbRun:
    """What one TensorBoard run holds, read and folded, before it is written."""

    source: Path
    name: str  # TensorBoard's run name: the directory under LOGDIR
    params: dict[str, Any] = field(default_factory=dict)
    #: step -> (latest wall time, {metric: value})
    steps: dict[int, tuple[float, dict[str, float]]] = field(default_factory=dict)
    notes: list[tuple[float, int, str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: dict[str, list[int]] = field(default_factory=dict)
    records: int = 0
    scalars: int = 0

    def add(self, name: str, points: Scalars) -> None:
        steps = self.steps
        values = _shortest(points.values) if points.float32 else points.values
        for step, wall, value in zip(points.steps, points.walls, values, strict=True):
            got = steps.get(step)
            if got is None:
                steps[step] = (wall, {name: value})
            else:  # several tags of one step; a repeated step (a restart): the later wins
                got[1][name] = value
                if wall > got[0]:
                    steps[step] = (wall, got[1])
        self.scalars += len(points.values)

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.steps.values()] + [n[0] for n in self.notes]


@dataclass
class Imported:
    created: list[str] = field(default_factory=list)  # run ids
    skipped: list[Path] = field(default_factory=list)  # sources imported before, unchanged
    problems: list[str] = field(default_factory=list)  # damaged files, a sentence each
    scalars: int = 0


def event_dirs(logdir: Path) -> list[Path]:
    """Every directory under `logdir` (itself included) that holds event files."""
    found = {Path(root) for root, _, files in os.walk(logdir)
             if any(f.startswith(EVENT_FILE) for f in files)}
    return sorted(found)


def imported_sources(logs: LogsDir) -> dict[str, list[dict[str, list[int]] | None]]:
    """Source directory -> the file signatures of each import of it (None: an import
    that recorded none, from before they were recorded)."""
    sources: dict[str, list[dict[str, list[int]] | None]] = {}
    if not logs.runs.is_dir():
        return sources
    for entry in os.scandir(logs.runs):
        try:
            with open(os.path.join(entry.path, SOURCE_FILE)) as f:
                rec = json.load(f)
            sources.setdefault(rec["tensorboard"], []).append(rec.get("files"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sources


def import_tb(logs: LogsDir, logdir: str | Path, experiment: str | None = None) -> Imported:
    """Import every TensorBoard run under `logdir` into `logs`; skip those already there
    with the same files."""
    logdir = Path(logdir).expanduser().resolve()
    if not logdir.is_dir():
        raise UsageError(f"{logdir} is not a directory.")
    experiment = check_experiment_name(experiment) if experiment else _experiment_of(logdir)
    dirs = event_dirs(logdir)
    if not dirs:
        raise UsageError(f"no TensorBoard event files ({EVENT_FILE}*) under {logdir}.")
    done = imported_sources(logs)
    result = Imported()
    for run in read_runs(dirs, logdir):
        result.problems += run.problems
        before = done.get(str(run.source), [])
        if run.files in before or None in before:
            result.skipped.append(run.source)
            continue
        if not run.records:
            continue  # nothing readable: no run (the problem names the file)
        result.created.append(write_run(logs, run, experiment, logdir))
        result.scalars += run.scalars
    return result


def read_runs(dirs: list[Path], logdir: Path | None = None) -> list[TbRun]:
    """Read each directory; fold torch's add_scalars/add_hparams children into parents."""
    _require_tensorboard()
    runs: dict[Path, TbRun] = {}
    for d in dirs:  # sorted: a parent comes before its children
        parent = runs.get(d.parent)
        got = read_dir(d)
        prefix = _scalars_prefix(got)
        if parent is not None and (got.hparams is not None or prefix is not None):
            _fold(parent, got, prefix)
        else:
            runs[d] = TbRun(source=d, name=_run_name(d, logdir))
            _fold(runs[d], got, None)
    return list(runs.values())


def read_dir(d: Path) -> DirRead:
    """Every record of a directory's event files (in name order, as TensorBoard reads
    them), with a sentence for each file the reader could not read to its end."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event

    got = DirRead(d)
    plugins: dict[str, str] = {}  # tag -> plugin (its metadata comes with the first value)
    for path in sorted(p for p in d.iterdir() if p.name.startswith(EVENT_FILE) and p.is_file()):
        st = path.stat()
        got.files[path.name] = [st.st_size, st.st_mtime_ns]
        offset = n = 0
        for raw in RawEventFileLoader(str(path)).Load():
            offset += len(raw) + _RECORD_FRAME
            n += 1
            _read_event(got, Event.FromString(raw), plugins)
        got.records += n
        if offset < st.st_size:
            got.problems.append(_damage(path, n, offset, st.st_size))
        elif not n:
            got.problems.append(f"{path}: no record in it (an empty file); nothing imported "
                                "from it")
    return got


def _read_event(got: DirRead, ev: Any, plugins: dict[str, str]) -> None:
    """A record's scalars (simple values, and scalar tensors), texts and hparams."""
    if not ev.HasField("summary"):
        return
    step, wall = ev.step, ev.wall_time
    appenders = got.appenders
    for v in ev.summary.value:
        kind = v.WhichOneof("value")
        if kind == "simple_value":
            add = appenders.get(v.tag)
            if add is None:
                points = got.scalars[v.tag] = Scalars()
                add = appenders[v.tag] = (points.steps.append, points.walls.append,
                                          points.values.append)
            add[0](step)
            add[1](wall)
            add[2](v.simple_value)
            continue
        plugin = v.metadata.plugin_data.plugin_name
        if plugin:
            plugins[v.tag] = plugin
        else:
            plugin = plugins.get(v.tag, "")
        if plugin == "hparams":
            _read_hparams(got, v)
        elif kind == "tensor" and plugin in ("scalars", "text"):
            _read_tensor(got, v, plugin, step, wall)


def _read_hparams(got: DirRead, v: Any) -> None:
    from tensorboard.plugins.hparams import metadata

    if v.tag != metadata.SESSION_START_INFO_TAG:
        return
    info = metadata.parse_session_start_info_plugin_data(v.metadata.plugin_data.content)
    got.hparams = {name: _value(x) for name, x in info.hparams.items()}


def _read_tensor(got: DirRead, v: Any, plugin: str, step: int, wall: float) -> None:
    from tensorboard.util import tensor_util

    array = tensor_util.make_ndarray(v.tensor)
    if plugin == "scalars" and array.size == 1:
        points = got.scalars.get(v.tag)
        if points is None:
            points = got.scalars[v.tag] = Scalars()
            got.appenders[v.tag] = (points.steps.append, points.walls.append,
                                    points.values.append)
        points.append(step, wall, array.reshape(()).item() if array.dtype.kind in "iuf"
                      else float("nan"))
        points.float32 = points.float32 and array.dtype == "float32"
    elif plugin == "text":
        text = " ".join(x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
                        for x in array.flat)
        got.texts.append((wall, step, v.tag.removesuffix("/text_summary"), text))


def _damage(path: Path, good: int, offset: int, size: int) -> str:
    """One sentence on where the reader stopped in a file, and why."""
    why, total = "is damaged (fails its checksum)", ""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            head = f.read(12)
        if len(head) < 12 or offset + struct.unpack("<Q", head[:8])[0] + _RECORD_FRAME > size:
            why = "is truncated"
    except (OSError, struct.error):
        pass
    if good and why != "is truncated":  # what follows the damage, at the records' mean size
        total = f" of ~{round(good * size / offset):,}"
    kept = (f"imported the {good:,} record{'s' if good != 1 else ''} before it" if good
            else "nothing in it could be read")
    return (f"{path}: record {good + 1:,}{total} {why} at byte {offset:,} of {size:,}; "
            f"{kept}")


def _value(v: Any) -> Any:
    """An hparam value; a whole number below 2**53 is an int (TensorBoard keeps every
    number as a double: `batch_size` 64 would come back 64.0)."""
    kind = v.WhichOneof("kind")
    if kind in (None, "null_value"):
        return None
    x = getattr(v, kind)
    if kind == "number_value" and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x


def _scalars_prefix(got: DirRead) -> str | None:
    """add_scalars("a/b", {"x": ..}) writes tag "a/b" in dir `a_b_x`: the metric "a/b/x"."""
    if len(got.scalars) != 1:
        return None
    (tag,) = got.scalars
    head = tag.replace("/", "_") + "_"
    name = got.path.name
    return f"{tag}/{name[len(head):]}" if name.startswith(head) and name != head else None


def _fold(run: TbRun, got: DirRead, prefix: str | None) -> None:
    """Add a directory's scalars (named `prefix` when it folds add_scalars), hparams, text."""
    if got.hparams:
        run.params.update(got.hparams)
    for tag, points in got.scalars.items():
        run.add(clean_tag(prefix or tag), points)
    run.notes += got.texts
    run.problems += got.problems
    run.files.update({str((got.path / name).relative_to(run.source)): sig
                      for name, sig in got.files.items()})
    run.records += got.records


def _shortest(values: list[float]) -> list[float]:
    """TensorBoard stores float32: 0.9 comes back as 0.8999999761581421; each value as the
    shortest decimal that is the same float32 (0.9), all in one call (orjson writes a
    float32 array so); NaN and infinities (null there) stay as they were."""
    import numpy as np

    out: list[float | None] = orjson.loads(orjson.dumps(
        np.asarray(values, dtype=np.float32), option=orjson.OPT_SERIALIZE_NUMPY))
    return [values[i] if v is None else v for i, v in enumerate(out)]


def write_run(logs: LogsDir, run: TbRun, experiment: str, logdir: Path) -> str:
    """Write one imported run, whole, under a hidden name, then rename it into place."""
    times = run.times or [os.path.getmtime(run.source)]
    first, last = min(times), max(times)
    run_id = _run_id(logs, run.name, first)
    spec = RunSpec(id=run_id, experiment=experiment, params=run.params,
                   command=("(imported from tensorboard)",), created=first,
                   tags=("tensorboard",))
    logs.ensure()
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
                                                      "files": run.files,
                                                      "imported": time.time()})
        with open(staging.events, "wb") as f:
            f.write(_events(run, logdir, first, last))
        os.rename(staging.dir, logs.run(spec.id).dir)
    except BaseException:
        shutil.rmtree(staging.dir, ignore_errors=True)
        raise
    atomic.fsync_dir(logs.runs)
    return spec.id


def _run_id(logs: LogsDir, name: str, first: float) -> str:
    """`20231114-221320-vgg_lr0.1`: when the run began and TensorBoard's name for it, so
    `ls` shows it and `show vgg_lr0.1` finds it (a suffix); `-2`, `-3`... for another
    import of the same run."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(first))
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    safe = re.sub(r"\.{2,}", ".", safe)[:100] or "run"
    base = f"{stamp}-{safe}"
    run_id, n = base, 1
    while not is_run_id(run_id) or logs.run(run_id).dir.exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _line(kind: str, t: float, fields: dict[str, Any]) -> bytes:
    """An event line: orjson (several times faster) where it writes every value as the
    stdlib would; NaN and infinities (orjson writes null) through the stdlib's encoder."""
    if any(type(v) is float and not math.isfinite(v) for v in fields.values()):
        return events.encode(kind, t, fields)
    try:
        return orjson.dumps({"v": events.VERSION, "t": round(t, 6), "kind": kind, **fields},
                            option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a value orjson does not know
        return events.encode(kind, t, fields)


def _events(run: TbRun, logdir: Path, first: float, last: float) -> bytes:
    rel = str(run.source.relative_to(logdir)) if run.source != logdir else "."
    out = [_line("start", first, {"pid": None, "host": None, "argv": None}),
           _line("meta", first, {"source": "tensorboard", "tensorboard_dir": str(run.source),
                                 "tensorboard_run": rel})]
    if run.params:
        out.append(_line("params", first, {"params": run.params}))
    for problem in run.problems:
        out.append(_line("warning", first, {"message": problem}))
    for step in sorted(run.steps):
        t, values = run.steps[step]
        if 0 <= step < 2**63:
            out.append(_line("step", t, {**values, "step": step}))
    for t, step, tag, text in sorted(run.notes):
        out.append(_line("note", t, {"tag": tag, "text": text, "step": step}))
    message = f"imported from TensorBoard ({run.source})"
    if run.problems:
        message += "; partial: " + "; ".join(p.rsplit("/", 1)[-1] for p in run.problems)
    out.append(_line("status", last, {"status": "finished", "message": message}))
    return b"".join(out)


def _run_name(d: Path, logdir: Path | None) -> str:
    """TensorBoard's name for the run in `d`: its path under the log directory."""
    if logdir is None or d == logdir:
        return d.name
    return str(d.relative_to(logdir))


def _experiment_of(logdir: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", logdir.name).strip("-.") or "tensorboard"
    return check_experiment_name(name)


def _require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UsageError("`tuiexp import tb` needs the tensorboard package: "
                         "pip install 'tuiexp[tensorboard]'.") from None
