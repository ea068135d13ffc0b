"""The params tables of docs/TRAINER.md, generated from the declaration in config.py.

    python -m tuiexp.trainer.paramdoc docs/TRAINER.md          # rewrite the tables in place
    python -m tuiexp.trainer.paramdoc --check docs/TRAINER.md  # exit 1 when they are stale

Each table sits between `<!-- params:SECTION -->` and `<!-- /params -->`; the text
around them is left alone. tests/trainer/test_config.py fails when they are stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .config import PARAMS, TABLES, Spec, _toml, specs

_BLOCK = re.compile(r"(<!-- params:(\w+) -->\n)(.*?)(<!-- /params -->)", re.S)


def accepts(spec: Spec) -> str:
    """What a param accepts, in words, from its kind, choices and range."""
    if spec.choices:
        return ", ".join(f"`{c}`" for c in spec.choices)
    if spec.accepts:
        return spec.accepts.replace('"', "`").replace("`a fraction", "a fraction")
    if spec.kind == "bool":
        return ", ".join(f"`{a}`" for a in spec.also) + (", " if spec.also else "") + "`true`, `false`"
    if spec.kind in ("int", "float"):
        word = "integer" if spec.kind == "int" else "number"
        lo = None if spec.lo is None else f"{spec.lo} {'<' if spec.lo_open else '≤'} "
        hi = None if spec.hi is None else f" {'<' if spec.hi_open else '≤'} {spec.hi}"
        if lo and hi:
            return f"{word}, {lo}x{hi}"
        if lo:
            return f"{word} {'>' if spec.lo_open else '≥'} {spec.lo}"
        return word + (f"{hi}" if hi else "")
    return {"str": "string", "table": "table", "list": "list of tables"}[spec.kind]


def _default(spec: Spec) -> str:
    return "unset" if spec.default is None else f"`{_toml(spec.default)}`"


def table(section: str) -> str:
    """The markdown table of one section's params (table params get a row per key)."""
    rows = ["| param | default | accepts | meaning |", "| --- | --- | --- | --- |"]
    for name, spec in PARAMS.items():
        if spec.section != section:
            continue
        rows.append(f"| `{name}` | {_default(spec)} | {accepts(spec)} | {spec.doc} |")
        for key, sub in specs(TABLES[name]).items() if name in TABLES else ():
            rows.append(f"| `{name}.{key}` | {_default(sub)} | {accepts(sub)} | {sub.doc} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    """`text` with every params block replaced by its table as declared now."""
    return _BLOCK.sub(lambda m: m.group(1) + table(m.group(2)) + m.group(4), text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    if len(paths) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path = Path(paths[0])
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if new == text:
        return 0
    if check:
        print(f"{path}: the params tables are stale; run python -m tuiexp.trainer.paramdoc {path}")
        return 1
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
