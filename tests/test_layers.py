"""docs/ARCHITECTURE.md's layers, enforced twice: import each layer in a fresh process and
look at sys.modules; and import-linter's contracts (pyproject.toml) over every import."""

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
        # the path of a run: a layer never imports one above it
        ("store/events.py", "from ..queue import daemon as _d", "tuiexp.store is not allowed to import tuiexp.queue:"),
        ("config/values.py", "from ..search import study as _s", "tuiexp.config is not allowed to import tuiexp.search:"),
        ("queue/client.py", "from ..results import export as _e", "tuiexp.queue is not allowed to import tuiexp.results:"),
        ("results/export.py", "from ..search import launch as _l", "tuiexp.results is not allowed to import tuiexp.search:"),
        ("track/run.py", "from ..config import loader as _l", "tuiexp.track is not allowed to import tuiexp.config:"),
        # no circles, at any depth
        ("store/paths.py", "from . import index as _i", "No cycles are allowed in tuiexp.store."),
        ("ui/screens/base.py", "from .. import app as _a", "No cycles are allowed in tuiexp.ui."),
        # what each layer must never load
        ("store/spec.py", "import torch", "tuiexp.store is not allowed to import torch:"),
        ("queue/daemon.py", "import textual", "tuiexp.queue is not allowed to import textual:"),
        ("ui/messages.py", "import torch", "tuiexp.ui is not allowed to import torch:"),
        ("ui/messages.py", "from ..trainer import models", "tuiexp.ui is not allowed to import tuiexp.trainer:"),
        ("trainer/config.py", "import torch", "tuiexp.trainer.config is not allowed to import torch:"),
        ("trainer/loop.py", "import textual", "tuiexp.trainer is not allowed to import textual:"),
        ("trainer/loop.py", "from ..store import paths as _p", "tuiexp.trainer is not allowed to import tuiexp.store:"),
    ],
)
def test_import_contract_breaks_on_a_forbidden_import(tmp_path: Path, module: str, line: str,
                                                       says: str) -> None:
    """A copy of the package with one forbidden import added fails the check and says which."""
    pytest.importorskip("importlinter")
    copy = copy_package(tmp_path)
    target = copy / "tuiexp" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    out = lint_imports(copy)
    assert out.returncode != 0, out.stdout
    assert says in out.stdout, out.stdout


def test_a_package_left_out_of_the_layers_breaks_the_contract(tmp_path: Path) -> None:
    """Every package of tuiexp has its place in the layers: a new one must be given one."""
    pytest.importorskip("importlinter")
    copy = copy_package(tmp_path)
    (copy / "tuiexp" / "extra").mkdir()
    (copy / "tuiexp" / "extra" / "__init__.py").write_text('"""A package nobody placed."""\n')
    out = lint_imports(copy)
    assert out.returncode != 0 and "- tuiexp.extra" in out.stdout, out.stdout


def copy_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "tuiexp", tmp_path / "tuiexp", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path
