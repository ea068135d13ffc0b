"""What a fork runs with: its parent's params plus the overrides, checked against the
trainer's schema (the CLI, the dashboard's fork form and PBT all ask here)."""

from __future__ import annotations

from typing import Any

from ..errors import ForkError, ParamError
from .params import builtin_schema
from .values import deep_merge, describe_param_error, sentence


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
