"""Small operations on param tables and override text, and the wording of messages,
shared by the loader, the checks, forks and studies."""

from __future__ import annotations

import difflib
import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError


def deep_merge(base: dict[str, Any], over: dict[str, Any],
               replace: frozenset[str] = frozenset()) -> dict[str, Any]:
    """`over` on top of `base`; tables merge key by key (but those named in `replace`),
    everything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in replace:
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def set_dotted(target: dict[str, Any], flat: dict[str, Any]) -> dict[str, Any]:
    """{"augment.flip": False} → {"augment": {"flip": False}} merged into target."""
    for key, value in flat.items():
        node = target
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return target


MISSING = object()


def get_dotted(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def sibling_keys(params: dict[str, Any], dotted: str) -> list[str]:
    node: Any = params
    for part in dotted.split(".")[:-1]:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return list(node) if isinstance(node, dict) else []


def overridden(dotted: str, overrides: dict[str, Any]) -> bool:
    """Does `overrides` set the dotted key (or a table or value above it)?"""
    node: Any = overrides
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
        if not isinstance(node, dict):
            return True
    return True


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set key=value` pairs; values are TOML inline values, bare words are strings."""
    flat: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", key):
            raise ConfigError(f"--set {pair!r} must look like key=value (e.g. --set lr=0.05).")
        flat[key] = parse_value(value.strip())
    return set_dotted({}, flat)


def parse_value(text: str, what: str = "--set value") -> Any:
    """A TOML value, or a bare word; `what` names where the text came from in the error."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[\w.:/+-]+", text):
            return text  # a bare word such as adam or tv:resnet18
        raise ConfigError(f"{what} {text!r} is not a TOML value (quote strings, e.g. '\"x y\"').") from None


def describe_param_error(key: str, reason: str) -> str:
    if reason.startswith("unknown key"):
        return f"unknown key `{key}`{reason[len('unknown key'):]}"
    return f"`{key}` {reason}"


def sentence(text: str) -> str:
    """End a message with a full stop unless it ends with one or a question."""
    return text if text.endswith((".", "?")) else text + "."


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean `{close[0]}`?" if close else ""
