"""The dashboard must never load torch (it starts in well under a second)."""

import subprocess
import sys


def test_ui_does_not_import_torch():
    code = ("import sys, tuiexp.ui.app, tuiexp.ui.screens.fork, tuiexp.ui.screens.detail, "
            "tuiexp.ui.screens.new, tuiexp.ui.screens.compare, tuiexp.ui.screens.help, "
            "tuiexp.ui.screens.lrfind, tuiexp.ui.screens.study; "
            "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
