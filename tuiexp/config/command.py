"""A user's command line, built from the spec at start: `{param}` templates and
`args = "flags"`. No shell is involved: the result is an argv list, so a value
with spaces or quotes is one argument, passed as is.

Rendering happens when the run starts, from `spec.params`, so a fork or a sweep
point changes what the script receives.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..store.spec import RunSpec

#: `{lr}`, `{model_args.width}`, `{lr:.3g}`; `{{` and `}}` are literal braces
FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)(?::([^{}]*))?\}|[{}]")


class TemplateError(ValueError):
    """A template that cannot be rendered; the message is one sentence fit for the user."""


def fields(template: str) -> list[str]:
    """The dotted param names a template refers to; a stray brace is a TemplateError."""
    names = []
    for m in FIELD.finditer(template):
        if m.group(0) in ("{", "}"):
            raise TemplateError(f"a lone `{m.group(0)}` in `{template}` (write `{m.group(0) * 2}` "
                                f"for a literal brace)")
        if m.group(1):
            names.append(m.group(1))
    return names


def lookup(params: dict[str, Any], dotted: str) -> Any:
    """params["model_args"]["width"] for "model_args.width"; KeyError if absent."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def format_value(value: Any) -> str:
    """One param as command-line text: floats round-trip (repr), bools as TOML spells
    them (true/false), lists joined with commas, tables as TOML-like inline text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)  # nan, inf, -inf
    if isinstance(value, list):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def render(template: str, params: dict[str, Any]) -> list[str]:
    """One argv element from a template; an element that is exactly `{name}` whose
    value is a list becomes one element per item (`--widths {widths}` → 16 32)."""
    whole = FIELD.fullmatch(template)
    if whole and whole.group(1) and not whole.group(2):
        value = lookup(params, whole.group(1))
        if isinstance(value, list):
            return [format_value(v) for v in value]

    def one(m: re.Match[str]) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        if m.group(1) is None:
            raise TemplateError(f"a lone `{m.group(0)}` in `{template}`")
        value = lookup(params, m.group(1))
        return format(value, m.group(2)) if m.group(2) else format_value(value)

    return [FIELD.sub(one, template)]


def flag_name(key: str) -> str:
    """`batch_size` → `--batch-size` (argparse's convention: it maps `-` back to `_`)."""
    return "--" + key.replace("_", "-")


def flags(params: dict[str, Any], prefix: str = "", skip: frozenset[str] = frozenset()) -> list[str]:
    """Every param as a flag: `--key value`; true bools as a bare `--key` (false ones
    omitted, as argparse's store_true expects); lists as repeated values after one
    flag (nargs="+"); nested tables as dotted flags (`--model_args.width 8`); a value
    that starts with `-` as `--key=-1e-05`, so argparse does not take it for an option.
    Dotted names in `skip` (those the command templates already) are left out."""
    out: list[str] = []
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else key
        if name in skip:
            continue
        if isinstance(value, dict):
            out += flags(value, name, skip)
        elif isinstance(value, bool):
            out += [_flag(name, prefix)] if value else []
        elif isinstance(value, list):
            out += [_flag(name, prefix), *(format_value(v) for v in value)] if value else []
        else:
            text = format_value(value)
            # argparse reads `-1e-05` or `-x` after a flag as another option: join them
            out += [f"{_flag(name, prefix)}={text}"] if text.startswith("-") else [_flag(name, prefix), text]
    return out


def _flag(name: str, prefix: str) -> str:
    # a nested key keeps its underscores: `--model_args.width`, the dotted path as written
    return "--" + name if prefix else flag_name(name)


def build_argv(spec: RunSpec) -> list[str]:
    """The user's command for this run: templates filled from spec.params, and with
    `args = "flags"`, every other param appended as a flag. A TemplateError for a missing
    param (config loading reports it first, with file and line)."""
    argv: list[str] = []
    for part in spec.command or ():
        try:
            argv += render(part, spec.params)
        except KeyError as e:
            raise TemplateError(f"the command names `{{{e.args[0]}}}`, a param this run "
                                f"does not have.") from None
    if spec.args == "flags":  # what the command templates is not passed twice
        argv += flags(spec.params, skip=frozenset(f for part in spec.command or () for f in fields(part)))
    return argv
