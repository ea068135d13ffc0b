"""`tuiexp note` and `tuiexp tag`: a run's note and tags (tuiexp/store/notes.py).

Both write the run directory's annotations.json, then its index row; `ls`, `show`,
`export`, the dashboard and `--filter tag:NAME` show them.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import UsageError
from ..queue.client import Client
from ..store import notes, query
from ..store.paths import LogsDir
from ..store.text import printable

#: `dash_words`: the argument that takes the words argparse leaves over, those that
#: start with '-' (`tag RUN -old`, `note RUN -5% after the fix`)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `note` and `tag` on the CLI's subparsers."""
    text = "set, append to or clear a run's note (no TEXT: print it)"
    p = sub.add_parser("note", parents=[common], help=text, description=text)
    p.add_argument("run")
    p.add_argument("text", nargs="*", help="the note (several words are joined); '' clears it")
    p.add_argument("--append", "-a", action="store_true", help="add TEXT as a line of the note")
    p.set_defaults(func=cmd_note, dash_words="text")

    text = ("add (+NAME, or a bare NAME after the first edit) and remove (-NAME) tags of runs; "
            "no edit: print their tags")
    p = sub.add_parser("tag", parents=[common], help=text, add_help=False,
                       description=f"{text}. Example: tuiexp tag RUN1 RUN2 +best -old")
    p.add_argument("--help", action="help", help="show this help and exit")  # no -h: `-hard`
    p.add_argument("words", nargs="*", metavar="RUN... [+TAG] [-TAG]")
    p.add_argument("--filter", metavar="TEXT",
                   help=f"tag every run this filter selects ({query.FILTER_HELP})")
    p.set_defaults(func=cmd_tag, dash_words="words")


def _logs(args: argparse.Namespace) -> LogsDir:
    return LogsDir.at(args.logs)


def cmd_note(args: argparse.Namespace) -> int:
    with Client(_logs(args), autostart=False) as client:
        client.index_new_directories()
        if not args.text:
            print("\n".join(printable(line) for line in client.row(args.run).note.splitlines()))
            return 0
        rid, note, _ = client.annotate(args.run, " ".join(args.text), append=args.append)
    print(f"{rid}  note: {printable(note)}" if note else f"{rid}  note cleared")
    return 0


def split_words(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    """`RUN1 RUN2 +best -old keep` -> (runs, tags to add, tags to remove): bare words
    before the first edit are runs, after it tags to add."""
    runs: list[str] = []
    edits: list[str] = []
    for w in words:
        if edits or (w[:1] in "+-" and len(w) > 1):
            edits.append(w)
        else:
            runs.append(w)
    add, remove = notes.parse_edits(edits)
    return runs, add, remove


def cmd_tag(args: argparse.Namespace) -> int:
    refs, add, remove = split_words(args.words)
    if not refs and args.filter is None:
        raise UsageError("name the runs to tag (or --filter TEXT), then +TAG / -TAG edits; "
                         "e.g. `tuiexp tag RUN +best -old`.")
    with Client(_logs(args), autostart=False) as client:
        client.index_new_directories()  # runs written by hand, as `ls` sees them
        ids = [_resolve(client, r, hint=not (add or remove) and i > 0)
               for i, r in enumerate(refs)]  # every id checked before any is changed
        if args.filter is not None:
            chosen = query.filter_rows(client.index.runs(), args.filter)
            if not chosen:
                raise UsageError(f"no run matches the filter {args.filter!r}.")
            ids += [r.id for r in chosen if r.id not in ids]
        for rid in ids:
            if add or remove:
                rid, _, tags = client.annotate(rid, add=add, remove=remove)
            else:
                tags = client.row(rid).tags
            print(f"{rid}  tags: {printable(' '.join(tags)) or '(none)'}")
    return 0


def _resolve(client: Client, ref: str, hint: bool) -> str:
    """A run id; where a later bare word is no run, say how a tag is written."""
    try:
        return client.resolve(ref)
    except UsageError as e:
        if not hint:
            raise
        raise UsageError(f"{str(e).rstrip('.')}; to add the tag {ref!r}, write +{ref}.") from None
