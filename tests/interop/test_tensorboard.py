"""TensorBoard interop: the SummaryWriter drop-in, and `tuiexp import tb` on real event files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuiexp.store import events, runstore
from tuiexp.store.metrics import clean_tag
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec

pytest.importorskip("tensorboard", reason="the [tensorboard] extra is not installed")

TB_SCRIPT = """
import sys, torch
if sys.argv[1] == "torch":
    from torch.utils.tensorboard import SummaryWriter
else:
    from tuiexp.track import SummaryWriter
with SummaryWriter(sys.argv[2]) as writer:
    for step in range(5):
        writer.add_scalar("Loss/train", torch.tensor(1.0 / (step + 1)), step)
        writer.add_scalar("Accuracy/val", step / 8, step)
    writer.add_scalars("lr", {"head": 0.5, "body": 0.25}, 4)
    writer.add_scalar("loss val", 0.75, 4)
    writer.add_text("notes", "first try", 0)
    writer.add_hparams({"lr": 0.5, "opt": "sgd"}, {"hparam/best": 0.5})
"""


def run_tb_script(where: Path, flavour: str, env=None):
    path = where / "tb_script.py"
    path.write_text(TB_SCRIPT)
    base = {k: v for k, v in os.environ.items() if not k.startswith("TUIEXP_")}
    proc = subprocess.run([sys.executable, str(path), flavour, str(where / "tb" / "run1")],
                          cwd=where, env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def tuiexp(where: Path, *args: str):
    return subprocess.run([sys.executable, "-m", "tuiexp.cli", *args], cwd=where,
                          capture_output=True, text=True, timeout=120)


def only_run(logs_root: Path):
    (d,) = [d for d in (logs_root / "runs").iterdir() if not d.name.startswith(".")]
    return json.loads((d / "run.json").read_text()), events.read_all(d / "events.jsonl"), d


def metrics_by_step(evs):
    out: dict[int, dict[str, float]] = {}
    for e in evs:
        if e["kind"] == "step":
            out.setdefault(e["step"], {}).update(
                {k: v for k, v in e.items() if k not in events.RESERVED})
    return out


def test_the_drop_in_writer_and_an_import_of_torchs_writer_give_the_same_metrics(tmp_path):
    (tmp_path / "shim").mkdir()
    (tmp_path / "real").mkdir()
    run_tb_script(tmp_path / "shim", "tuiexp")
    run_tb_script(tmp_path / "real", "torch")
    imp = tuiexp(tmp_path / "real", "import", "tb", "tb")
    assert imp.returncode == 0, imp.stderr

    shim_spec, shim_evs, _ = only_run(tmp_path / "shim" / "logs")
    real_spec, real_evs, _ = only_run(tmp_path / "real" / "logs")
    shim, real = metrics_by_step(shim_evs), metrics_by_step(real_evs)
    assert shim.keys() == real.keys()
    for step in shim:  # TensorBoard keeps float32: the import shows 1/3 as 0.33333334
        assert shim[step] == pytest.approx(real[step], rel=1e-6)
    assert real[4] == {"Loss/train": 0.2, "Accuracy/val": 0.5, "lr/head": 0.5, "lr/body": 0.25,
                       "loss_val": 0.75}
    assert real[0] == {"Loss/train": 1.0, "Accuracy/val": 0.0, "hparam/best": 0.5}  # step None: 0
    for evs in (shim_evs, real_evs):
        (params,) = [e["params"] for e in evs if e["kind"] == "params"]
        assert params == {"lr": 0.5, "opt": "sgd"}
        (note,) = [e for e in evs if e["kind"] == "note"]
        assert (note["tag"], note["text"], note["step"]) == ("notes", "first try", 0)
        assert [e for e in evs if e["kind"] == "status"][-1]["status"] == "finished"
    assert real_spec["params"] == {"lr": 0.5, "opt": "sgd"} and real_spec["experiment"] == "tb"
    assert shim_spec["experiment"] == "tb_script"


def test_import_is_idempotent_keeps_wall_times_and_makes_one_run_per_directory(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    walls = {}
    for name, lr in (("a", 0.1), ("b/seed1", 0.2)):
        with SummaryWriter(str(tmp_path / "tb" / name)) as w:
            for step in (0, 10, 20):
                w.add_scalar("val/acc", lr * step, step, walltime=1_700_000_000 + step)
            w.add_scalar("epoch", 3, 20, walltime=1_700_000_020)
        walls[name] = lr
    first = tuiexp(tmp_path, "import", "tb", "tb", "--experiment", "old")
    assert first.returncode == 0, first.stderr
    assert "imported 2 runs (8 scalars)" in first.stdout
    ids = first.stdout.split()[:2]
    again = tuiexp(tmp_path, "import", "tb", str(tmp_path / "tb"), "--experiment", "other")
    assert again.returncode == 0 and "imported 0 runs" in again.stdout
    assert "2 already imported" in again.stdout
    assert len(list((tmp_path / "logs" / "runs").iterdir())) == 2

    for rid in ids:
        paths = LogsDir.at(tmp_path / "logs").run(rid)
        spec = runstore.load_spec(paths)
        evs = events.read_all(paths.events)
        steps = [e for e in evs if e["kind"] == "step"]
        assert spec.experiment == "old" and [e["step"] for e in steps] == [0, 10, 20]
        assert [e["t"] for e in steps] == [1_700_000_000, 1_700_000_010, 1_700_000_020]
        assert steps[-1]["epoch_"] == 3  # a reserved name gains a trailing "_"
        last = runstore.last_status([e for e in evs])
        assert runstore.derive_status(paths, last).status == "finished"
        source = json.loads((paths.dir / "source.json").read_text())["tensorboard"]
        lr = walls["a" if source.endswith("/a") else "b/seed1"]
        assert [e["val/acc"] for e in steps] == pytest.approx([0, lr * 10, lr * 20])
    show = tuiexp(tmp_path, "ls")
    assert all(rid in show.stdout for rid in ids)


def test_import_errors_are_one_sentence(tmp_path):
    missing = tuiexp(tmp_path, "import", "tb", "nope")
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = tuiexp(tmp_path, "import", "tb", "empty")
    assert empty.returncode == 2 and "no TensorBoard event files" in empty.stderr
    assert "Traceback" not in missing.stderr + empty.stderr


def test_the_writer_uses_the_supervisors_run_and_leaves_the_status_to_the_exit_code(tmp_path):
    paths = runstore.create(LogsDir.at(tmp_path / "logs"), RunSpec(id="r1", experiment="t",
                                                                  params={"lr": 0.5}))
    run_tb_script(tmp_path, "tuiexp", env={"TUIEXP_RUN_DIR": str(paths.dir)})
    evs = events.read_all(paths.events)
    assert not [e for e in evs if e["kind"] == "status"]  # the supervisor reads the exit code
    assert metrics_by_step(evs)[1] == {"Loss/train": 0.5, "Accuracy/val": 0.125}
    assert not [e for e in evs if e["kind"] == "warning"]  # hparams lr agrees with the spec


@pytest.mark.parametrize("tag, name", [("Loss/train", "Loss/train"), ("a b:c", "a_b_c"),
                                       ("/lead", "lead"), ("step", "step_"), ("é", "_"),
                                       ("x" * 200, "x" * 128)])
def test_tags_are_cleaned_as_tensorboard_cleans_them(tag, name):
    assert clean_tag(tag) == name
