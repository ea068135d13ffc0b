"""One domain error type, carrying a sentence fit for the user."""

from __future__ import annotations


class TuiexpError(Exception):
    """A mistake the user can fix; its message is shown as is, without a traceback."""

    exit_code = 1


class ConfigError(TuiexpError):
    """experiments.toml (or a --set value) is wrong."""

    exit_code = 2


class ParamError(ConfigError):
    """A param that is unknown, of the wrong kind or out of range: `key` names it
    (dotted for nested tables, `schedule[1].lr` for lists), `reason` says why."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"param `{key}`: {reason}")
        self.key = key
        self.reason = reason


class UsageError(TuiexpError):
    """A command was asked for something that does not exist or cannot be done."""

    exit_code = 2


class RunNotFound(UsageError):
    pass


class ForkError(UsageError):
    """A fork or resume that cannot start (no checkpoint, incompatible change)."""
