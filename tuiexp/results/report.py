"""`tuiexp report`: a folder with a Markdown report, its tables and its figures.

    DIR/report.md            the grouped table, the figures, each experiment's config
    DIR/results.{csv,tex,json}
    DIR/figures/*.png (and .svg)

Every file report.md links to is written before it; a figure that cannot be
drawn (no epochs yet) is replaced by a sentence saying why. The folder is written
under a hidden name beside DIR and renamed into place at the end, so a failure
(or Ctrl-C) never leaves half a report; an existing DIR is replaced only with
`force`, and only when it holds a report (never a folder of other files).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import TuiexpError, UsageError
from ..store import atomic, query
from ..store.index import Index, RunRow
from ..store.metrics import default_mode
from ..store.query import flatten, run_params
from . import export, plots
from .grouping import varying_keys


def write_report(
    records: list[RunRow],
    index: Index,
    out: Path,
    experiments: list[str] | None = None,
    statuses: list[str] | None = None,
    config_path: Path | None = None,
    svg: bool = False,
    now: float | None = None,
    pdf: bool = False,
    force: bool = False,
) -> Path:
    """Write the report folder `out` whole, or nothing; returns the path of report.md."""
    plots.require()  # before any work: without matplotlib there is no report
    _check_target(out, force)
    records = export.select(records, experiments, statuses)
    if not records:
        raise UsageError("no runs match; nothing to report.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)  # a leftover of an earlier process with our pid
    try:
        staging.mkdir()
        _write(records, index, staging, experiments, config_path, svg, now, pdf)
        _put_in_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "report.md"


def _check_target(out: Path, force: bool) -> None:
    """An existing `out` is replaced only with `force`, and only when it is a report."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UsageError(f"{out} is a file; give a folder for the report.")
    if not any(out.iterdir()):
        return
    if not (out / "report.md").is_file():
        raise UsageError(f"{out} holds other files, not a report; give a new folder for the report.")
    if not force:
        raise UsageError(f"{out} holds a report already; give another folder, or --force to replace it.")


def _put_in_place(staging: Path, out: Path) -> None:
    """Rename the finished folder into place; an old report (checked by _check_target)
    is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write(records: list[RunRow], index: Index, out: Path, experiments: list[str] | None,
           config_path: Path | None, svg: bool, now: float | None, pdf: bool) -> None:
    logs = index.logs
    names = experiments or sorted({r.experiment for r in records})
    (out / "figures").mkdir()
    config = _load_config(config_path)

    lines = [
        "# Results",
        "",
        f"{len(records)} runs of {len(names)} experiment(s) from `{logs.root}`, "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(now or time.time()))}. "
        "Rows group runs that differ only in their seed: mean ± sample std (n-1) over "
        "the runs that have the value; `(n=k)` where fewer runs than the row's have it.",
        "",
    ]
    table = export.build_table(records)
    for fmt, name in (("csv", "results.csv"), ("latex", "results.tex"), ("json", "results.json")):
        export.write(out / name, export.format_table(table, fmt))
    lines += [export.to_markdown(table),
              "Tables: [CSV](results.csv) · [LaTeX](results.tex) · [JSON](results.json)", ""]

    slugs: set[str] = set()
    for name in names:
        recs = [r for r in records if r.experiment == name]
        slug = _slug(name, slugs)
        lines += _experiment_section(name, slug, recs, index, out, config, (svg, pdf))
    atomic.write_text(out / "report.md", "\n".join(lines).rstrip() + "\n")


def curve_metrics(recs: list[RunRow]) -> list[str]:
    """What a report plots: the primary metric, and the held-out loss beside it (each
    by epoch where the runs log it per epoch, else by step: `query.series_scopes`)."""
    primaries = query.primary_metrics(recs)
    names = {n for r in recs for (n, _) in r.summaries}
    losses = sorted(n for n in names if n not in primaries and export.HELD_OUT.search(n)
                    and default_mode(n) == "min")
    return [*primaries[:1], *losses[:1]]


def winner(recs: list[RunRow]) -> RunRow | None:
    """The run with the best value of its primary metric (ties: the earliest)."""
    scored = [(r, r.best if r.mode != "min" else -r.best) for r in recs
              if r.best is not None and r.metric]
    if not scored:
        return None
    return max(scored, key=lambda pair: pair[1])[0]


def _experiment_section(name: str, slug: str, recs: list[RunRow], index: Index, out: Path,
                        config: dict[str, Any], extra: tuple[bool, bool]) -> list[str]:
    lines = [f"## {_md_text(name)}", ""]
    lines += [export.render(recs, "md"), ""]
    names = curve_metrics(recs)
    scopes = query.series_scopes(recs, names)
    query.attach_curves(index, recs, names, scopes)
    lines += _figure(f"{slug}-curves", "training curves", out, extra,
                     lambda: plots.curves(recs, names, scopes=scopes,
                                          all_records=query.with_ancestors(index, recs, names, scopes)))
    if len({r.num_params for r in recs if r.num_params}) > 1 or has_budget(recs):
        lines += _figure(f"{slug}-params", "best primary metric against parameter count", out,
                         extra, lambda: plots.params_plot(recs, fit=has_budget(recs)))
    best = winner(recs)
    cm_epochs = index.confusion_epochs(best.id) if best else []
    if best is not None and cm_epochs:
        epoch = best.best_at if best.best_at in cm_epochs else None
        lines += _figure(f"{slug}-confusion", f"confusion of the best run, {best.id}", out, extra,
                         lambda: plots.confusion_plot(plots.pick_confusion(index, best.id, epoch),
                                                      best.id))
    lines += _config_section(name, recs, config)
    return lines


def has_budget(recs: list[RunRow]) -> bool:
    """Were these runs sized to parameter budgets (`param_budget`, docs/SEARCH.md)?"""
    return any(r.params.get("param_budget") for r in recs)


def _figure(stem: str, title: str, out: Path, extra: tuple[bool, bool],
            draw: Callable[[], Any]) -> list[str]:
    try:
        fig = draw()
    except TuiexpError as e:
        return [f"*No {title}: {e}*", ""]
    written = plots.save(fig, out / "figures" / f"{stem}.png", *extra)
    rel = written[0].relative_to(out).as_posix()
    links = " · ".join(f"[{p.suffix[1:].upper()}]({p.relative_to(out).as_posix()})" for p in written[1:])
    return [f"![{title}]({rel})", *([links] if links else []), ""]


def _config_section(name: str, recs: list[RunRow], config: dict[str, Any]) -> list[str]:
    flats = [run_params(r) for r in recs]
    vary = set(varying_keys(flats))
    common = {k: v for k, v in flats[0].items() if k not in vary}
    lines = ["### Config", ""]
    declared = (config.get("experiments") or {}).get(name) if config else None
    if isinstance(declared, dict):
        lines += ["As declared in experiments.toml:", "", "```toml",
                  f"[experiments.{_toml_key(name)}]", *toml_lines(flatten(declared)), "```", ""]
    lines += ["Params every run shares (from the frozen specs, run.json):", "", "```toml",
              *toml_lines(common), "```", ""]
    if vary:
        lines += [f"Varying: {', '.join(f'`{k}`' for k in sorted(vary))}.", ""]
    lines += ["| run | seed | status | parent | fork at |", "|---|---|---|---|---|"]
    for r in sorted(recs, key=lambda r: (r.created, r.id)):
        lines.append(f"| {r.id} | {_cell(r.seed)} | {r.status} | {_cell(r.parent)} "
                     f"| {_cell(r.fork_epoch)} |")
    return [*lines, ""]


def toml_lines(flat: dict[str, Any]) -> list[str]:
    """Dotted-key TOML for flattened params (`augment.flip = true`)."""
    return [f"{'.'.join(_toml_key(p) for p in k.split('.'))} = {toml_value(v)}"
            for k, v in sorted(flat.items())]


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if v is None:
        return '""'
    return json.dumps(str(v), ensure_ascii=False)


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # the report still has the frozen specs


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "experiment"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


def _md_text(s: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", s)


def _cell(v: Any) -> str:
    return "" if v is None else str(v)
