"""`tuiexp report -o DIR` writes DIR whole or not at all (issue 18.6): a failure
halfway leaves neither DIR nor its staging folder; an existing report is replaced only
with --force, and a folder of other files never."""

from __future__ import annotations

import pytest

from tests.results.test_export import parse
from tuiexp.errors import UsageError
from tuiexp.results import plots


def report(logs, out, *more: str) -> int:
    """The real `report` command on the shared logs (the `records` fixture indexed them)."""
    args = parse(["report", "--logs", str(logs.root), "--config", "/nonexistent", "-o", str(out), *more])
    return args.func(args)


def test_a_failure_halfway_leaves_no_folder(logs, records, tmp_path, monkeypatch):
    saved = []
    real = plots.save

    def save_then_fail(fig, out, *a, **kw):
        if saved:
            raise KeyboardInterrupt  # Ctrl-C while the second figure is written
        saved.append(out)
        return real(fig, out, *a, **kw)

    monkeypatch.setattr(plots, "save", save_then_fail)
    with pytest.raises(KeyboardInterrupt):
        report(logs, tmp_path / "rep")
    assert saved  # it did get halfway: the tables and a figure were written, then removed
    assert list(tmp_path.iterdir()) == []  # no DIR, no hidden staging folder


def test_an_existing_report_is_replaced_only_with_force(logs, records, tmp_path):
    out = tmp_path / "rep"
    assert report(logs, out) == 0
    (out / "stale.txt").write_text("from an older report")
    with pytest.raises(UsageError, match="holds a report already.*--force"):
        report(logs, out)
    assert (out / "stale.txt").exists()
    assert report(logs, out, "--force") == 0
    assert (out / "report.md").is_file() and not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # nothing left beside it


def test_a_folder_of_other_files_is_never_replaced(logs, records, tmp_path):
    mine = tmp_path / "paper"
    mine.mkdir()
    (mine / "draft.tex").write_text("my paper")
    for more in ((), ("--force",)):
        with pytest.raises(UsageError, match="holds other files"):
            report(logs, mine, *more)
    assert [p.name for p in mine.iterdir()] == ["draft.tex"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report(logs, empty) == 0 and (empty / "report.md").is_file()
