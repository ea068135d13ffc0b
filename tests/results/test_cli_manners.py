"""CLI manners: a reader that leaves early (`| head`) ends the command quietly; an
export file follows the umask and is never replaced without `--force`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.results.test_export import parse
from tuiexp.errors import UsageError

CLI = [sys.executable, "-c", "import sys; from tuiexp.cli import main; sys.exit(main())"]


def test_a_closed_pipe_ends_quietly(logs):
    """The reader is gone before the command writes: no "Broken pipe", status 0."""
    proc = subprocess.Popen([*CLI, "ls", "--logs", str(logs.root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head` that already read its lines
    _, err = proc.communicate(timeout=60)
    assert err == b"" and proc.returncode == 0


def test_export_follows_the_umask_and_does_not_overwrite(logs, tmp_path):
    out = tmp_path / "runs.csv"
    old = os.umask(0o022)
    try:
        args = parse(["export", "--logs", str(logs.root), "-o", str(out)])
        assert args.func(args) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644
    out.write_text("mine\n")
    args = parse(["export", "--logs", str(logs.root), "-o", str(out)])
    with pytest.raises(UsageError, match=r"runs\.csv exists; give another file, or --force"):
        args.func(args)
    assert out.read_text() == "mine\n"
    args = parse(["export", "--logs", str(logs.root), "-o", str(out), "--force"])
    assert args.func(args) == 0 and out.read_text() != "mine\n"
