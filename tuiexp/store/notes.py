"""Notes and tags: what a user says about a run, kept in its directory.

`annotations.json` in the run directory holds {"note": str, "tags": [str, ...]}. The
directory is the record: the index mirrors the file (`note`, `tags` columns) and a
`reindex` reads it again. A run whose file has no `tags` key (or no file at all) has
its experiment's `tags` from experiments.toml (the spec's); once edited, the file's
list is the run's tags, so a tag the config gave can be removed too.

Edits are `+best -old` words (a bare word adds); tag names are checked here, and every
mistake is one sentence naming the tag and what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import UsageError
from . import atomic
from .paths import RunPaths

TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,39}$")
TAG_RULE = ("letters, digits, '_', '.', '/', '-', at most 40 characters, "
            "starting with a letter, a digit or '_'")
MAX_NOTE = 4000  # characters: a note, not a lab book
MAX_TAGS = 32


@dataclass(frozen=True)
class Annotations:
    """A run's note and tags as its directory holds them (`tags` None: never edited,
    the spec's tags stand)."""

    note: str = ""
    tags: tuple[str, ...] | None = None

    def tags_of(self, spec_tags: Iterable[str]) -> list[str]:
        """The run's tags: the edited list, else the spec's."""
        return list(self.tags) if self.tags is not None else list(spec_tags)


def check_tag(name: str) -> str:
    """A valid tag name, or a UsageError saying what a tag may hold."""
    if not TAG_RE.match(name):
        raise UsageError(f"'{name}' is not a valid tag name ({TAG_RULE}).")
    return name


def parse_edits(words: Sequence[str]) -> tuple[list[str], list[str]]:
    """`["+best", "-old", "keep"]` -> (add ["best", "keep"], remove ["old"]); every name
    checked. Words may also be comma- or space-separated in one argument."""
    add: list[str] = []
    remove: list[str] = []
    for word in (w for arg in words for w in re.split(r"[\s,]+", arg) if w):
        if word[0] in "+-" and len(word) > 1:
            (add if word[0] == "+" else remove).append(check_tag(word[1:]))
        else:
            add.append(check_tag(word))
    return add, remove


def apply_edits(tags: Iterable[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """`tags` with `remove` taken out and `add` appended (each once, in order)."""
    gone = set(remove)
    out = [t for t in dict.fromkeys(tags) if t not in gone]
    out += [t for t in dict.fromkeys(add) if t not in out and t not in gone]
    if len(out) > MAX_TAGS:
        raise UsageError(f"a run may carry at most {MAX_TAGS} tags ({len(out)} asked).")
    return out


def check_note(text: str) -> str:
    """A note as stored: trailing white space dropped, at most MAX_NOTE characters."""
    text = text.strip()
    if len(text) > MAX_NOTE:
        raise UsageError(f"a note holds at most {MAX_NOTE} characters ({len(text)} given).")
    return text


def read(paths: RunPaths, strict: bool = False) -> Annotations:
    """The run's annotations; none where the file is missing. A file that cannot be read
    as annotations is a UsageError with `strict` (an edit must not overwrite it blindly),
    else ignored (a reindex goes on)."""
    try:
        data = json.loads(paths.annotations.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Annotations()
    except (OSError, ValueError) as e:
        if strict:
            raise UsageError(f"{paths.annotations} cannot be read ({e}); fix or delete it.") from None
        return Annotations()
    try:
        return _decode(data)
    except (TypeError, ValueError) as e:
        if strict:
            raise UsageError(f"{paths.annotations} {e}; fix or delete it.") from None
        return Annotations()


def _decode(data: object) -> Annotations:
    if not isinstance(data, dict):
        raise ValueError("does not hold a JSON object")
    note = data.get("note", "")
    if not isinstance(note, str):
        raise ValueError("has a `note` that is not a string")
    tags = data.get("tags")
    if tags is None:
        return Annotations(note)
    if not (isinstance(tags, list) and all(isinstance(t, str) and TAG_RE.match(t) for t in tags)):
        raise ValueError(f"has `tags` that are not a list of tag names ({TAG_RULE})")
    return Annotations(note, tuple(dict.fromkeys(tags)))


def write(paths: RunPaths, ann: Annotations) -> None:
    """Write the file atomically (a reader sees the old one or the new one)."""
    data: dict[str, object] = {"note": ann.note}
    if ann.tags is not None:
        data["tags"] = list(ann.tags)
    atomic.write_json(paths.annotations, data)


def edit(paths: RunPaths, spec_tags: Sequence[str], note: str | None = None,
         append: bool = False, add: Sequence[str] = (), remove: Sequence[str] = ()
         ) -> tuple[str, list[str]]:
    """Change a run's note (None: keep it; `append`: add a line to it) and tags; write
    the file; return the note and tags as they now are. The caller serialises edits of
    one run (the index's write lock)."""
    old = read(paths, strict=True)
    new_note = old.note
    if note is not None:
        text = check_note(note)
        if append:  # a line more; appending nothing keeps the note
            text = "\n".join(part for part in (old.note, text) if part)
        new_note = check_note(text)
    tags = old.tags_of(spec_tags)
    new_tags = apply_edits(tags, add, remove) if add or remove else tags
    keep_tags = old.tags is not None or new_tags != list(spec_tags)
    new = Annotations(new_note, tuple(new_tags) if keep_tags else None)
    if new != old:
        write(paths, new)
    return new_note, new_tags
