"""Queue an experiment, whatever it is: its runs, or, for one with a `[search]` table or
`pbt`, its study or population (search/study.py) — what `tuiexp run X` does, for the
dashboard's `n` and `L` and for `tuiexp lr-find --queue`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.model import Config
from ..queue.client import Client
from . import study as studies


@dataclass(frozen=True)
class Launched:
    """What was started: the queued runs' ids (none for a study: the supervisor queues its
    trials), the study's name, and one sentence saying so."""

    ids: list[str]
    study: str | None
    text: str


def launch(client: Client, cfg: Config, experiment: str, overrides: dict[str, Any]) -> Launched:
    """Queue `experiment`'s runs with `overrides`, or start its study or population."""
    exp = cfg.experiment(experiment)
    if exp.search is None and exp.pbt is None:
        ids = client.enqueue(cfg, experiment, overrides)
        return Launched(ids, None, queued_text(ids, experiment))
    kind = "pbt" if exp.pbt is not None else "search"
    name = studies.create(client.logs, cfg, experiment, overrides, kind=kind)
    client.ensure_daemon()
    if exp.pbt is not None:
        p = exp.pbt
        text = (f"Started population {name}: {p['population']} members, every {p['interval']} "
                f"epochs the bottom {p['quantile']:.0%} replaced by forks of the top; "
                f"S on a member's row opens it.")
    else:
        s = exp.search
        assert s is not None
        text = (f"Started study {name}: {s['trials']} trials, {s['parallel']} at a time, "
                f"{s['sampler']} sampler, {s['pruner']} pruner; S on a trial's row opens it.")
    return Launched([], name, text)


def queued_text(ids: list[str], name: str) -> str:
    """"Queued 3 runs of NAME: id, id, id." (the first three ids, then an ellipsis)."""
    more = "…" if len(ids) > 3 else "."
    return f"Queued {len(ids)} run{'s' if len(ids) != 1 else ''} of {name}: {', '.join(ids[:3])}{more}"
