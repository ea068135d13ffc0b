"""What a fork runs with: its parent's params plus the overrides, checked against the
trainer's schema (the CLI, the dashboard's fork form and PBT all ask here)."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import ConfigError, ForkError, ParamError
from .params import builtin_schema
from .values import deep_merge, describe_param_error, sentence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def fork_params(parent: dict[str, Any], overrides: dict[str, Any], epoch: int,
                builtin: bool) -> dict[str, Any]:
    """The params a fork at `epoch` runs with, or a ForkError saying why it cannot be.
    The dashboard's fork form checks with this too, so it shows what will be queued."""
    child = deep_merge(parent, overrides)
    epochs = child.get("epochs")
    if isinstance(epochs, int) and epochs <= epoch:
        raise ForkError(f"cannot fork at epoch {epoch}: epochs = {epochs} leaves nothing to train "
                        f"(set epochs above {epoch}).")
    if builtin:
        schema = builtin_schema()
        schema.check_fork(parent, child)  # first: "cannot change the model" beats its consequences
        if schema.schedule_keys & overrides.keys():
            child["schedule_start"] = epoch  # the new schedule starts at the fork
        try:
            schema.validate(child)
        except ParamError as e:
            raise ForkError(f"cannot fork: {sentence(describe_param_error(e.key, e.reason))}") from None
    return child


#: how the fork form and its messages show a schedule
SCHEDULE_EXAMPLE = "[{ epochs = 2, lr = 0.05 }]"


def parse_schedule(text: str) -> list[dict[str, Any]] | None:
    """A schedule as a person types it: its value (`[{ epochs = 2, lr = 0.05 }]`), the
    TOML line (`schedule = [...]`) or the README's `--set 'schedule=[...]'`, quotes or
    not. None for an empty text; a ConfigError in one sentence for anything else."""
    text = text.strip()
    if text.startswith("--set"):
        text = text[len("--set"):].strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    key, sep, value = text.partition("=")
    if sep and key.strip() == "schedule":
        text = value.strip()
    if not text:
        return None
    try:
        phases = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"the schedule is not a list of phases: write it as {SCHEDULE_EXAMPLE} "
                          "(check the brackets, the commas and each `key = value`).") from None
    if not isinstance(phases, list) or not all(isinstance(p, dict) for p in phases):
        raise ConfigError(f"the schedule must be a list of phases, each a {{ ... }} table, "
                          f"such as {SCHEDULE_EXAMPLE}.")
    return phases


def schedule_template(params: dict[str, Any], epochs_left: int) -> list[dict[str, Any]]:
    """What a fork's schedule field starts from: the parent's phases, else one phase of
    the epochs left with the parent's optimizer, LR and scheduler (what it trains with)."""
    if params.get("schedule"):
        return [dict(p) for p in params["schedule"]]
    phase: dict[str, Any] = {"epochs": max(1, epochs_left)}
    for key in ("optimizer", "lr", "scheduler"):
        if key in params:
            phase[key] = params[key]
    return [phase]
