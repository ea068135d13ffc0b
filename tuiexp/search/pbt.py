"""Population-based training on forks: `pbt = { population, interval, perturb, quantile }`.

`tuiexp run x` writes the population's definition (`logs/studies/NAME.json`, kind
"pbt"); the supervisor's tick drives it (search/studies.py). Slot i's first
run is `PREFIX-m{i}` (member 0 with the experiment's params, the others perturbed).
Once every member has logged epoch E, a multiple of `interval` below `epochs` (or
ended before it), the members are ranked by their primary metric at E: each one in
the bottom `quantile` is pruned (`prune.request`: it ends `pruned` at its next epoch,
its checkpoints kept) and replaced by `PREFIX-m{i}-e{E}`, a fork of a top-quantile
member from that member's checkpoint at E (its latest where E's was not kept), with
each `perturb` param multiplied by 0.8 or 1.2. Members train on meanwhile: nobody
waits for the slowest. Forks are ordinary forks, so the lineage tree shows the
population's history.

Every decision is named by its slot and epoch, and a replacement's run id says
both, so a supervisor killed mid-decision and started again makes none twice:
`NAME.pbt.jsonl` records the decisions that kept a member, a replacement's run
directory the ones that replaced it. One boundary is decided per step, on lineages
read at that moment: a slot replaced at epoch 2 is judged at epoch 4 by its
replacement, once that has got there. The population is done when every boundary is
decided and every run of it has ended. The steps of a decision are fault points
(store/faults.py): a test kills the supervisor at each one.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import replace
from typing import Any

from ..config.fork import fork_params
from ..config.values import deep_merge, get_dotted, set_dotted
from ..errors import ForkError, UsageError
from ..store import atomic, faults, runstore
from ..store.events import TERMINAL
from ..store.index import Index
from ..store.paths import LogsDir
from ..store.spec import RunSpec

log = logging.getLogger("tuiexp.pbt")

FACTORS = (0.8, 1.2)


def perturbed(params: dict[str, Any], keys: list[str], rng: random.Random) -> dict[str, Any]:
    """The overrides: each key's value times 0.8 or 1.2 (an int stays an int, ≥ 1)."""
    flat = {}
    for key in keys:
        value = get_dotted(params, key)
        new = value * rng.choice(FACTORS)
        flat[key] = max(1, round(new)) if isinstance(value, int) else new
    return set_dotted({}, flat)


def member_id(definition: dict[str, Any], slot: int, epoch: int | None = None) -> str:
    base = f"{definition['prefix']}-m{slot}"
    return base if epoch is None else f"{base}-e{epoch}"


_WAIT = object()  # a member has not reached the boundary yet


class PbtDriver:
    """One population: starts its members and, at each boundary epoch that every member
    has reached (or ended before), replaces the bottom quantile with perturbed forks of
    the top, taken from their checkpoints at that epoch."""

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
        """Decide the first undecided boundary every slot has reached, if any (one per
        step: the next is judged on the lineages this one made); else, once every run of
        the population has ended, mark it done."""
        template = RunSpec.from_json(self.definition["spec"])
        slots = range(self.pbt["population"])
        lineages = [self._lineage(slot, template) for slot in slots]
        rows = {rid: self._row(rid) for lineage in lineages for rid in lineage}
        if any(r is None for r in rows.values()):
            return
        epochs = template.params.get("epochs")
        last = epochs if isinstance(epochs, int) else max((r.epoch or 0) for r in rows.values()) + 1
        interval = self.pbt["interval"]
        for boundary in range(interval, last, interval):
            if all(self._judged(slot, boundary) for slot in slots):
                continue
            values = [self._value_at(lineages[slot], rows, boundary) for slot in slots]
            if not any(v is _WAIT for v in values):
                self._decide(boundary, lineages, rows, values)
            return  # later boundaries wait for this one
        if all(row.status in TERMINAL for row in rows.values()):
            self.finished = True
            atomic.write_json(self.logs.root / "studies" / f"{self.name}.json",
                              {**self.definition, "done": True, "ended": time.time()})
            log.info("population %s finished", self.name)

    def _lineage(self, slot: int, template: Any) -> list[str]:
        """Slot's runs, oldest first (its first one made here if it has none yet)."""
        base = member_id(self.definition, slot)
        if not self.logs.run(base).dir.exists():
            params = template.params
            if slot:
                rng = random.Random(f"{self.pbt['seed']}:{slot}")
                params = deep_merge(params, perturbed(params, self.pbt["perturb"], rng))
            spec = replace(template, id=base, params=params, created=time.time(),
                           seed=params.get("seed"), study=self.name, trial=slot)
            self._create(spec)
        forks = [rid for rid in runstore.run_ids(self.logs) if rid.startswith(base + "-e")]
        return [base, *sorted(forks, key=lambda r: int(r.rsplit("-e", 1)[1]))]

    def _judged(self, slot: int, boundary: int) -> bool:
        return ((slot, boundary) in self.decided
                or self.logs.run(member_id(self.definition, slot, boundary)).dir.exists())

    def _create(self, spec: Any, init: Any = None) -> None:
        try:
            runstore.create(self.logs, spec, init_checkpoint=init)
        except UsageError:
            pass  # made before a restart: never a second one
        faults.point("pbt.create.directory")
        self.index.add_run(spec)

    def _row(self, rid: str) -> Any:
        row = self.index.run(rid)
        if row is None and self.logs.run(rid).dir.exists():
            self.index.reindex_run(rid)
            row = self.index.run(rid)
        return row

    def _covering(self, lineage: list[str], rows: dict[str, Any], boundary: int) -> Any:
        """The run of a slot that trained its epoch `boundary` (the latest forked before it)."""
        covering = rows[lineage[0]]
        for rid in lineage[1:]:
            if (rows[rid].fork_epoch or 0) < boundary:
                covering = rows[rid]
        return covering

    def _value_at(self, lineage: list[str], rows: dict[str, Any], boundary: int) -> Any:
        """The slot's primary metric at epoch `boundary`; None where it ended without one
        (ranked last); _WAIT while it has not got there."""
        row = self._covering(lineage, rows, boundary)
        if row.metric:
            points = self.index.points(row.num, row.metric, "epoch", after=boundary - 1, limit=1)
            if points and points[0][0] == boundary:
                v = points[0][1]
                return v if math.isfinite(v) else None
            if points:  # it logged later epochs but not this one
                return None
        return None if row.status in TERMINAL else _WAIT

    def _decide(self, boundary: int, lineages: list[list[str]], rows: dict[str, Any],
                values: list[Any]) -> None:
        """Rank the slots at `boundary`; the bottom quantile get forks of the top."""
        faults.point("pbt.decide")
        n = max(1, math.floor(self.pbt["quantile"] * len(values)))
        scored = sorted((i for i, v in enumerate(values) if v is not None),
                        key=lambda i: values[i], reverse=self.maximize)  # best first
        ranked = scored + [i for i, v in enumerate(values) if v is None]
        donors, losers = scored[:n], ranked[-n:]
        for slot in range(len(values)):
            if self._judged(slot, boundary):
                continue
            if slot not in losers or not donors or slot in donors:
                self._record(slot, boundary, "kept")
                continue
            rng = random.Random(f"{self.pbt['seed']}:{slot}:{boundary}")
            donor = self._covering(lineages[rng.choice(donors)], rows, boundary)
            try:
                self._replace(slot, rows[lineages[slot][-1]], donor, boundary, rng)
            except ForkError as e:  # the donor kept no checkpoint to fork: keep the member
                self._record(slot, boundary, f"kept ({e})")

    def _replace(self, slot: int, loser: Any, donor: Any, boundary: int, rng: random.Random) -> None:
        new_id = member_id(self.definition, slot, boundary)
        parent = runstore.load_spec(self.logs.run(donor.id))
        have = runstore.checkpoint_epochs(self.logs.run(donor.id))
        epoch, source = runstore.fork_source(self.logs.run(donor.id),
                                             boundary if boundary in have else None)
        overrides = perturbed(parent.params, self.pbt["perturb"], rng)
        params = fork_params(parent.params, overrides, epoch, builtin=parent.command is None)
        child = replace(parent.forked(new_id, epoch, params), trial=slot)
        if loser.status not in TERMINAL:
            atomic.write_text(self.logs.run(loser.id).prune, f"{time.time()}\n")
        faults.point("pbt.replace.pruned")
        self._create(child, init=source)
        faults.point("pbt.replace.created")
        log.info("population %s: %s replaced at epoch %d by %s, a fork of %s at epoch %d",
                 self.name, loser.id, boundary, new_id, donor.id, epoch)

    def _record(self, slot: int, epoch: int, action: str) -> None:
        faults.point("pbt.record")
        self.decided.add((slot, epoch))
        with open(self.decisions, "a") as f:
            f.write(json.dumps({"slot": slot, "epoch": epoch, "action": action, "t": time.time()}) + "\n")
        faults.point("pbt.recorded")


def summary(logs: LogsDir, definition: dict[str, Any]) -> str:
    """The population as text: each slot's lineage with status and best."""
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
