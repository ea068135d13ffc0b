"""Population-based training on forks: `pbt = { population, interval, perturb, quantile }`.

`tuiexp run x` writes the population's definition (`logs/studies/NAME.json`, kind
"pbt"); the supervisor's tick drives it (core/study.py `Studies`). Slot i's first
run is `PREFIX-m{i}` (member 0 with the experiment's params, the others perturbed);
whenever a slot's current run has logged an epoch that is a multiple of `interval`
(and not its last), it is ranked by its primary metric against the latest values of
the other slots: in the bottom `quantile` it is pruned (`prune.request`: it ends
`pruned` at its next epoch, its checkpoints kept) and replaced by `PREFIX-m{i}-e{E}`,
a fork of a top-quantile member from that member's latest checkpoint, with each
`perturb` param multiplied by 0.8 or 1.2. Forks are ordinary forks, so the lineage
tree shows the population's history.

Every decision is named by its slot and epoch, and a replacement's run id says
both, so a supervisor killed mid-decision and started again makes none twice:
`NAME.pbt.jsonl` records the decisions that kept a member, a replacement's run
directory the ones that replaced it.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import random
import time
from dataclasses import replace
from typing import Any

from . import atomic, runstore
from .errors import ForkError, UsageError
from .events import TERMINAL
from .paths import LogsDir

log = logging.getLogger("tuiexp.pbt")

KEYS = {"population": 4, "interval": 2, "perturb": None, "quantile": 0.25, "seed": 0}
FACTORS = (0.8, 1.2)


def parse_pbt(raw: Any, params: dict[str, Any], fail: Any) -> dict[str, Any]:
    """A checked `pbt` table; `fail(key, what)` makes the ConfigError at its line."""
    if not isinstance(raw, dict):
        raise fail(None, "`pbt` must be a table: { population = 8, interval = 2, "
                         "perturb = [\"lr\"], quantile = 0.25 }")
    for key in raw:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            raise fail(key, f"unknown key `{key}` in `pbt`{hint}")
    out = {k: raw.get(k, v) for k, v in KEYS.items()}
    for key, low in (("population", 2), ("interval", 1), ("seed", 0)):
        v = out[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise fail(key, f"`pbt.{key}` must be an integer of at least {low}, got {v!r}")
    q = out["quantile"]
    if not isinstance(q, (int, float)) or isinstance(q, bool) or not 0 < q <= 0.5:
        raise fail("quantile", f"`pbt.quantile` must be a fraction in (0, 0.5], got {q!r}")
    perturb = out["perturb"]
    if not (isinstance(perturb, list) and perturb and all(isinstance(k, str) for k in perturb)):
        raise fail("perturb", "`pbt.perturb` must be a non-empty list of param names")
    for key in perturb:
        value = _get(params, key)
        if value is _MISSING:
            close = difflib.get_close_matches(key.split(".")[-1], _keys(params, key), n=1, cutoff=0.6)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            raise fail("perturb", f"`pbt.perturb` names `{key}`, a param this experiment does "
                                  f"not have{hint}")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise fail("perturb", f"`pbt.perturb` names `{key}` = {value!r}; only numbers can be "
                                  "perturbed")
    return out


_MISSING = object()


def _get(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _keys(params: dict[str, Any], dotted: str) -> list[str]:
    node: Any = params
    for part in dotted.split(".")[:-1]:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return list(node) if isinstance(node, dict) else []


def perturbed(params: dict[str, Any], keys: list[str], rng: random.Random) -> dict[str, Any]:
    """The overrides: each key's value times 0.8 or 1.2 (an int stays an int, ≥ 1)."""
    from .config import set_dotted

    flat = {}
    for key in keys:
        value = _get(params, key)
        new = value * rng.choice(FACTORS)
        flat[key] = max(1, round(new)) if isinstance(value, int) else new
    return set_dotted({}, flat)


def create(logs: LogsDir, config: Any, experiment: str, overrides: dict[str, Any]) -> str:
    """Write a new population of `experiment` (named after it); returns its name."""
    from .study import create as create_study

    return create_study(logs, config, experiment, overrides, kind="pbt")


def member_id(definition: dict[str, Any], slot: int, epoch: int | None = None) -> str:
    base = f"{definition['prefix']}-m{slot}"
    return base if epoch is None else f"{base}-e{epoch}"


class PbtDriver:
    """One population: starts its members, and at each interval replaces the bottom
    quantile with perturbed forks of the top."""

    def __init__(self, logs: LogsDir, index: Any, definition: dict[str, Any]):
        self.logs, self.index, self.definition = logs, index, definition
        self.name: str = definition["name"]
        self.pbt: dict[str, Any] = definition["pbt"]
        self.maximize = definition["direction"] == "maximize"
        self.decisions = logs.root / "studies" / f"{self.name}.pbt.jsonl"
        self.decided: set[tuple[int, int]] = set()
        if self.decisions.exists():
            for line in self.decisions.read_text().splitlines():
                try:
                    d = json.loads(line)
                    self.decided.add((int(d["slot"]), int(d["epoch"])))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line: that decision is made again, the same way
        self.finished = False

    def step(self) -> None:
        from .spec import RunSpec

        template = RunSpec.from_json(self.definition["spec"])
        epochs = template.params.get("epochs")
        current = [self._current(slot, template) for slot in range(self.pbt["population"])]
        rows = [self._row(rid) for rid in current]
        if any(r is None for r in rows):
            return
        scores = [self._score(r) for r in rows]
        for slot, row in enumerate(rows):
            self._judge(slot, row, rows, scores, epochs)
        if all(r.status in TERMINAL for r in rows):
            self.finished = True
            atomic.write_json(self.logs.root / "studies" / f"{self.name}.json",
                              {**self.definition, "done": True, "ended": time.time()})
            log.info("population %s finished", self.name)

    def _current(self, slot: int, template: Any) -> str:
        """Slot's latest run (its first one made here if it has none yet)."""
        base = member_id(self.definition, slot)
        if not self.logs.run(base).dir.exists():
            params = template.params
            if slot:
                from .config import deep_merge

                rng = random.Random(f"{self.pbt['seed']}:{slot}")
                params = deep_merge(params, perturbed(params, self.pbt["perturb"], rng))
            spec = replace(template, id=base, params=params, created=time.time(),
                           seed=params.get("seed"), study=self.name, trial=slot)
            self._create(spec)
        forks = [rid for rid in runstore.run_ids(self.logs) if rid.startswith(base + "-e")]
        return max(forks, key=lambda r: int(r.rsplit("-e", 1)[1]), default=base)

    def _create(self, spec: Any, init: Any = None) -> None:
        try:
            runstore.create(self.logs, spec, init_checkpoint=init)
        except UsageError:
            pass  # made before a restart: never a second one
        self.index.add_run(spec)

    def _row(self, rid: str) -> Any:
        row = self.index.run(rid)
        if row is None and self.logs.run(rid).dir.exists():
            self.index.reindex_run(rid)
            row = self.index.run(rid)
        return row

    def _score(self, row: Any) -> float | None:
        if not row.metric or row.epoch is None:
            return None
        points = self.index.points(row.num, row.metric, "epoch", after=row.epoch - 1)
        v = points[-1][1] if points else None
        return v if v is not None and math.isfinite(v) else None

    def _judge(self, slot: int, row: Any, rows: list[Any], scores: list[float | None],
               epochs: Any) -> None:
        """At a boundary epoch: keep the member, or replace it with a perturbed fork."""
        interval = self.pbt["interval"]
        if row.status != "running" or not row.epoch or row.epoch < interval:
            return
        boundary = row.epoch - row.epoch % interval  # a tick may see the run past it
        if isinstance(epochs, int) and boundary >= epochs:
            return
        key = (slot, boundary)
        replacement = member_id(self.definition, slot, boundary)
        if key in self.decided or self.logs.run(replacement).dir.exists():
            return
        ranked = sorted((i for i, s in enumerate(scores) if s is not None),
                        key=lambda i: scores[i], reverse=self.maximize)  # best first
        n = max(1, math.floor(self.pbt["quantile"] * len(rows)))
        if len(ranked) < 2 * n or slot not in ranked[-n:]:
            self._record(slot, boundary, "kept")
            return
        rng = random.Random(f"{self.pbt['seed']}:{slot}:{boundary}")
        donor = rows[rng.choice(ranked[:n])]
        try:
            self._replace(slot, row, donor, replacement, rng)
        except ForkError as e:  # the donor has no checkpoint yet: keep the member this time
            self._record(slot, boundary, f"kept ({e})")

    def _replace(self, slot: int, row: Any, donor: Any, new_id: str, rng: random.Random) -> None:
        from .client import fork_params

        parent = runstore.load_spec(self.logs.run(donor.id))
        epoch, source = runstore.fork_source(self.logs.run(donor.id), None)
        overrides = perturbed(parent.params, self.pbt["perturb"], rng)
        params = fork_params(parent.params, overrides, epoch, builtin=parent.command is None)
        child = replace(parent.forked(new_id, epoch, params), trial=slot)
        atomic.write_text(self.logs.run(row.id).prune, f"{time.time()}\n")
        self._create(child, init=source)
        log.info("population %s: %s replaced by %s, a fork of %s at epoch %d", self.name,
                 row.id, new_id, donor.id, epoch)

    def _record(self, slot: int, epoch: int, action: str) -> None:
        self.decided.add((slot, epoch))
        with open(self.decisions, "a") as f:
            f.write(json.dumps({"slot": slot, "epoch": epoch, "action": action, "t": time.time()}) + "\n")


def summary(logs: LogsDir, definition: dict[str, Any]) -> str:
    """The population as text: each slot's lineage with status and best."""
    from .index import Index

    p = definition["pbt"]
    lines = [f"population {definition['name']} ({'done' if definition.get('done') else 'running'}): "
             f"{p['population']} members, every {p['interval']} epochs the bottom "
             f"{p['quantile']:.0%} forked from the top, perturbing {', '.join(p['perturb'])}"]
    with Index(logs, readonly=True) as index:
        for slot in range(p["population"]):
            base = member_id(definition, slot)
            ids = sorted((r for r in runstore.run_ids(logs) if r == base or r.startswith(base + "-e")),
                         key=lambda r: int(r.rsplit("-e", 1)[1]) if "-e" in r[len(base):] else -1)
            parts = []
            for rid in ids:
                row = index.run(rid)
                if row is None:
                    continue
                best = f"{row.best:.4g}" if row.best is not None else "-"
                src = f" ← {row.parent}@{row.fork_epoch}" if row.parent else ""
                parts.append(f"{rid} {row.status} best {best}{src}")
            lines.append(f"  member {slot}: " + ("; ".join(parts) or "not started"))
    return "\n".join(lines)
