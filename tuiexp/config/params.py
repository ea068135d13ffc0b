"""Param schemas: how the core checks the params of a trainer it does not import.

A trainer that tuiexp runs itself (today only the built-in one) declares its
params through a `ParamSchema` and registers it as a Python entry point in the
group `tuiexp.schemas`; the core finds it with importlib.metadata and never
imports the trainer's package by name, so the bottom layer depends on no layer
above it (docs/ARCHITECTURE.md; enforced by import-linter in pyproject.toml).

    [project.entry-points."tuiexp.schemas"]
    builtin = "tuiexp.trainer.config:SCHEMA"
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError

#: the entry point group schemas register in
GROUP = "tuiexp.schemas"
#: the entry point name of the built-in trainer's schema (runs without a `command`)
BUILTIN = "builtin"


@runtime_checkable
class ParamSchema(Protocol):
    """What the core needs to know about a trainer's params."""

    #: params whose change in a fork restarts the schedule at the fork epoch
    schedule_keys: frozenset[str]
    #: the metric names the trainer logs at epoch level (a primary metric must be one)
    metrics: tuple[str, ...]

    def defaults(self) -> dict[str, Any]:
        """Every param with its default (a fresh copy: callers may change it)."""
        ...

    def validate(self, params: Mapping[str, Any]) -> None:
        """Raise ParamError for the first unknown, mistyped or out-of-range param."""
        ...

    def check_fork(self, parent: Mapping[str, Any], child: Mapping[str, Any]) -> None:
        """Raise ForkError when `child` cannot start from `parent`'s weights."""
        ...


@runtime_checkable
class SizingSchema(Protocol):
    """A schema that can size its models to a parameter count (`param_budget`)."""

    def size_to_budget(self, params: Mapping[str, Any], budget: float) -> dict[str, Any]:
        """`params` with the model sized to within ±5 % of `budget` parameters; raise
        ParamError (key `param_budget`) when no model of its family lands there."""
        ...


class SchemaNotFound(ConfigError):
    """No installed distribution registers the schema asked for."""


def schema_for(target: Any) -> ParamSchema | None:
    """The param schema of an experiment, a RunSpec or a spec dict (run.json):
    the built-in trainer's for a run without a `command`, None for a user's command
    (its params are the script's business)."""
    command = target.get("command") if isinstance(target, Mapping) else target.command
    return None if command is not None else load(BUILTIN)


def builtin_schema() -> ParamSchema:
    """The built-in trainer's schema."""
    return load(BUILTIN)


@functools.cache
def load(name: str) -> ParamSchema:
    """The schema registered as entry point `name` in group `tuiexp.schemas`."""
    # imported here: importlib.metadata costs tens of ms, paid only by commands that validate
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        raise SchemaNotFound(
            f"no param schema `{name}` is registered (entry point group {GROUP}); "
            "tuiexp's install is stale: run `pip install -e .` (or reinstall tuiexp)."
        )
    schema = found[0].load()
    if not isinstance(schema, ParamSchema):
        raise SchemaNotFound(f"entry point {found[0].value} ({GROUP}) is not a ParamSchema.")
    return schema


def defaults_for(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """The defaults of a run's trainer, from its spec (run.json): the built-in trainer's
    for a run without a `command`, none for a user's command or a stale install. Shared,
    not copied: read it, never change it (`query.labels` and compare call it per row)."""
    command = spec.get("command")
    try:
        return {} if command is not None else _defaults(BUILTIN)
    except SchemaNotFound:  # no schema installed: what is written is all there is
        return {}


@functools.cache
def _defaults(name: str) -> Mapping[str, Any]:
    return load(name).defaults()
