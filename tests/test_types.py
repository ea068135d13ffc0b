"""The package type-checks: `python -m mypy` with pyproject.toml's [tool.mypy] (strict on
the headless layers and tuiexp.ui, mypy's defaults elsewhere), the same command CI runs here."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def mypy(root: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m mypy` in `root`: root's pyproject.toml is the configuration and its
    `files` (root's tuiexp, whatever tuiexp is installed) what is checked."""
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(900)
def test_the_package_type_checks() -> None:
    """Cold (no .mypy_cache) it takes about a minute of one core; warm, seconds."""
    pytest.importorskip("mypy")
    out = mypy(ROOT, timeout=840)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout, out.stdout


UNTYPED = "def twice(x):\n    return x * 2\n"


def test_core_and_ui_are_strict_the_rest_is_not(tmp_path: Path) -> None:
    """With the project's configuration, an unannotated function is an error in
    the headless layers and tuiexp.ui (and only there): the strict part is really strict."""
    pytest.importorskip("mypy")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (tmp_path / "tuiexp").mkdir()
    (tmp_path / "tuiexp" / "__init__.py").touch()
    for module in ("store/untyped.py", "ui/untyped.py", "trainer/untyped.py", "cli/new.py"):
        path = tmp_path / "tuiexp" / module
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(UNTYPED)
    out = mypy(tmp_path, "--cache-dir", str(tmp_path / "cache"), timeout=120)
    errors = sorted(line.split(":")[0] for line in out.stdout.splitlines() if ": error:" in line)
    assert errors == ["tuiexp/store/untyped.py", "tuiexp/ui/untyped.py"], out.stdout + out.stderr
    assert "[no-untyped-def]" in out.stdout
    assert out.returncode == 1
