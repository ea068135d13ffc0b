"""Where a key of experiments.toml is: its line, for messages (tomllib keeps no positions)."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError
from .values import sentence


class Locator:
    """Finds the line of a key in the TOML text (tomllib keeps no positions)."""

    HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, name: str, text: str, raw_experiments: dict[str, Any]):
        self.name = name  # the file's name, as messages give it
        self.lines = text.splitlines()
        self.raw_experiments = raw_experiments
        self.sections: list[tuple[str, int]] = [("", 0)]
        for i, line in enumerate(self.lines):
            m = self.HEADER.match(line)
            if m:
                self.sections.append((re.sub(r"\s*\.\s*", ".", m.group(1)).replace('"', ""), i))

    def error(self, table: str, key: str | None, what: str) -> ConfigError:
        """`what` as one sentence placed at the key's line: `experiments.toml, line 12: ...`."""
        line = self.line(table, key)
        place = f"{self.name}, line {line}" if line else self.name
        return ConfigError(f"{place}: {sentence(what)}")

    def line(self, table: str, key: str | None) -> int | None:
        """1-based line of `key` in `[table]`; also found as a dotted key of an
        enclosing table (`sweep.lr = ...` under `[experiments.x]`) or as a sub-table."""
        found = self._line(table, key)
        parts = table.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            if found or not key:
                break
            found = self._line(".".join(parts[:cut]), ".".join([*parts[cut:], key]))
        if not found and key and "." in key:  # `[x.sweep]` then `lr = ...`
            head, rest = key.split(".", 1)
            found = self._line(f"{table}.{head}" if table else head, rest)
        if not found and key and len(parts) > 1 and table.startswith("experiments."):
            # inside an inline table (`random = { lr = {...} }`): the line of the table's key
            return self.line(".".join(parts[:-1]), parts[-1])
        return found

    def _line(self, table: str, key: str | None) -> int | None:
        full = f"{table}.{key}" if table and key else (key or table)
        pattern = None
        if key:
            dotted = r"\s*\.\s*".join(f'"?{re.escape(k)}"?' for k in key.split("."))
            pattern = re.compile(rf"^\s*{dotted}\s*[=.]")
        for idx, (name, start) in enumerate(self.sections):
            if name == full or (key and name.startswith(full + ".")):
                return start + 1
            if name == table and pattern is not None:
                end = self.sections[idx + 1][1] if idx + 1 < len(self.sections) else len(self.lines)
                for i in range(start + (1 if name else 0), end):
                    if pattern.match(self.lines[i]):
                        return i + 1
        return None

    def find_param(self, exp: str, key: str, chain: list[str]) -> tuple[int | None, str]:
        for name in chain or [exp]:
            line = self.line(f"experiments.{name}", key)
            if line:
                return line, f"experiments.{name}"
        line = self.line("defaults", key)
        if line:
            return line, "defaults"
        return self.line(f"experiments.{exp}", None), f"experiments.{exp}"
