"""DESIGN.md's layer table, enforced: import each layer in a fresh process, look at sys.modules."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HEADLESS = ("tuiexp.errors", "tuiexp.store", "tuiexp.config", "tuiexp.queue", "tuiexp.search",
            "tuiexp.results", "tuiexp.interop", "tuiexp.doctor")
FORBIDDEN = {
    **{layer: ("torch", "torchvision", "textual", "tuiexp.trainer", "tuiexp.ui") for layer in HEADLESS},
    "tuiexp.track": ("torch", "torchvision", "textual"),
    "tuiexp.cli": ("torch", "torchvision", "textual"),
    "tuiexp.trainer.config": ("torch", "torchvision", "textual"),
    "tuiexp.ui": ("torch", "torchvision"),
}

PROBE = """
import importlib, pkgutil, sys
name = sys.argv[1]
pkg = importlib.import_module(name)
for m in pkgutil.walk_packages(getattr(pkg, "__path__", []), name + "."):
    importlib.import_module(m.name)
print(" ".join(sorted(b for b in sys.argv[2:] if b in sys.modules)))
"""


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import(layer):
    if layer == "tuiexp.ui":
        pytest.importorskip("tuiexp.ui.app")
    out = subprocess.run([sys.executable, "-c", PROBE, layer, *FORBIDDEN[layer]],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{layer} imports {out.stdout.strip()}"


# -- the same table as an import contract: import-linter, configured in pyproject.toml ----------

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the `tuiexp` package under `root`, with root's pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}  # grimp must find this tree's tuiexp first
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                               "sys.exit(lint_imports_command())", "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )


def test_import_contract_is_kept() -> None:
    pytest.importorskip("importlinter")
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "says"),
    [
        ("store/paths.py", "from ..trainer import config as _c", "tuiexp.store is not allowed to import tuiexp.trainer"),
        ("store/spec.py", "import torch", "tuiexp.store is not allowed to import torch"),
        ("store/events.py", "from ..ui import app as _a", "tuiexp.store is not allowed to import tuiexp.ui"),
        ("queue/daemon.py", "import textual", "tuiexp.queue is not allowed to import textual"),
        ("ui/messages.py", "import torch", "tuiexp.ui is not allowed to import torch"),
        ("ui/messages.py", "from ..trainer import models", "tuiexp.ui is not allowed to import tuiexp.trainer"),
        ("trainer/config.py", "import torch", "tuiexp.trainer.config is not allowed to import torch"),
        ("trainer/loop.py", "import textual", "tuiexp.trainer is not allowed to import textual"),
        ("track/__init__.py", "from ..trainer import config as _c", "tuiexp.track is not allowed to import tuiexp.trainer"),
    ],
)
def test_import_contract_breaks_on_a_forbidden_import(tmp_path: Path, module: str, line: str,
                                                       says: str) -> None:
    """A copy of the package with one forbidden import added fails the check and says which."""
    pytest.importorskip("importlinter")
    shutil.copytree(ROOT / "tuiexp", tmp_path / "tuiexp", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "tuiexp" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    out = lint_imports(tmp_path)
    assert out.returncode != 0, out.stdout
    assert says + ":" in out.stdout, out.stdout
