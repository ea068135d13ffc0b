"""DESIGN.md's layer table, enforced: import each layer in a fresh process, look at sys.modules."""

import subprocess
import sys

import pytest

FORBIDDEN = {
    "tuiexp.core": ("torch", "torchvision", "textual"),
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
