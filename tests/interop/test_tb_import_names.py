"""`tuiexp import tb` keeps what the user called things (issue 18.12): each run is
known by its TensorBoard run name (`vgg_lr0.1`, the directory TensorBoard lists it
under), not `tb-logs-80bc`; an integer hparam comes back an integer (`batch_size` 64,
not 64.0). Event files written by torch's own SummaryWriter, read through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tuiexp

pytest.importorskip("tensorboard", reason="the [tensorboard] extra is not installed")

WRITE = """
from torch.utils.tensorboard import SummaryWriter
for name, lr in (("vgg_lr0.1", 0.1), ("vgg_lr0.01", 0.01)):
    with SummaryWriter(f"tb-logs/{name}") as writer:
        for step in range(5):
            writer.add_scalar("Loss/train", 1.0 / (step + 1), step)
        writer.add_hparams({"lr": lr, "batch_size": 64, "opt": "sgd"}, {"hparam/acc": 0.5})
"""


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("tbnames")
    (where / "write.py").write_text(WRITE)
    out = subprocess.run([sys.executable, "write.py"], cwd=where, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    out = tuiexp(where, "import", "tb", "tb-logs")
    assert out.returncode == 0, out.stderr
    assert "imported 2 runs" in out.stdout
    return where


def test_imported_runs_are_known_by_their_tensorboard_run_names(imported):
    listing = tuiexp(imported, "ls", check=True).stdout
    rows = [x for x in listing.splitlines()[1:] if x.strip()]
    assert len(rows) == 2
    # (neither name is part of the other: "vgg_lr0.1" is not in "vgg_lr0.01")
    assert sum("vgg_lr0.1" in x for x in rows) == 1, listing
    assert sum("vgg_lr0.01" in x for x in rows) == 1, listing
    out = tuiexp(imported, "show", "vgg_lr0.01", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["params"]["lr"] == 0.01


def test_integer_hparams_come_back_as_integers(imported):
    rows = json.loads(tuiexp(imported, "ls", "--json", check=True).stdout)
    for row in rows:
        batch = row["params"]["batch_size"]
        assert batch == 64 and type(batch) is int, row["params"]
        assert type(row["params"]["lr"]) is float and row["params"]["opt"] == "sgd"
        show = tuiexp(imported, "show", row["id"], check=True).stdout
        assert '"batch_size": 64,' in show, show  # the params line, as the user reads it
