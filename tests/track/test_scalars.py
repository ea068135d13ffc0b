"""Stdout scalars: an unmodified argparse script's `key: value` lines become metrics,
through the real wrapper process and the real supervisor."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import tuiexp, wait_for, write_config
from tuiexp.store import events
from tuiexp.store.paths import LogsDir
from tuiexp.track.scalars import Backlog, Batcher, Parser, parse_all

#: a training script that has never heard of tuiexp
PLAIN = """
import argparse, sys
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--exit-code", type=int, default=0)
args = p.parse_args()
print(f"Namespace: {vars(args)}")
for step in range(1, 4):
    print(f"step={step} loss={1 / step:.4f} lr={args.lr}")
for epoch in range(1, args.epochs + 1):
    print(f"epoch: {epoch} val_acc: {0.5 + epoch / 10} val/loss: {1 / epoch}")
    print("note: not a number here", file=sys.stderr)
print("acc: 87%")
print("loss: 0.25")
print("loss: 0.125", end="")
sys.exit(args.exit_code)
"""

#: counts the SIGTERMs it gets, exits with 10 + that count
TERM_COUNTER = """
import signal, sys, time
got = []
signal.signal(signal.SIGTERM, lambda *a: got.append(1))
print("ready", flush=True)
while not got:
    time.sleep(0.01)
time.sleep(0.5)  # a duplicate would arrive meanwhile
sys.exit(10 + len(got))
"""


def metric_events(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("v", "t")}
            for e in events.read_all(run_dir / "events.jsonl")]


def test_parser_rule():
    p = Parser()
    assert p.events("epoch=3 loss=0.41 acc=0.87") == [("epoch", {"epoch": 3, "loss": 0.41, "acc": 0.87})]
    assert p.events("step: 7 epoch: 1 Loss/train: 2") == [("step", {"step": 7, "epoch": 1, "Loss/train": 2.0})]
    assert p.events("- loss: 0.2950 - accuracy: 0.9157") == [
        ("step", {"step": 0, "loss": 0.295}), ("step", {"step": 0, "accuracy": 0.9157})]
    assert p.events("loss: nan")[0][1]["loss"] != p.events("loss: nan")[0][1]["loss"]  # NaN kept
    assert p.events("loss=inf") == [("step", {"step": 3, "loss": math.inf})]
    for noise in ("acc: 87%", "Namespace(lr=0.1, batch_size=64)", "step: next loss: 1",
                  "epoch=-1 acc=1", "12:00:03 started", "kind=1 t=2", "", "x" * 200 + "=1"):
        assert p.events(noise) == [], noise
    rx = Parser(re.compile(r"(?P<key>\w+) -> (?P<value>[^,\s]+)"))
    assert rx.events("epoch -> 2, acc -> 0.5") == [("epoch", {"epoch": 2, "acc": 0.5})]


def test_indexed_lines_prose_and_echoed_params():
    p = Parser(params=frozenset({"lr", "seed"}))
    # an indexed line: `name value` pairs as well, other words ignored
    assert p.events("epoch 1 train_loss 2.566 val_acc 0.126") == [
        ("epoch", {"epoch": 1, "train_loss": 2.566, "val_acc": 0.126})]
    assert p.events("Epoch 3/10 - loss: 0.41 - acc: 0.87") == [("epoch", {"epoch": 3, "loss": 0.41, "acc": 0.87})]
    assert p.events("iter 100: loss 2.3041, time 30.12ms, mfu 2.3%") == [("step", {"step": 100, "loss": 2.3041})]
    assert p.events("[Step 7] lr 0.05") == [("step", {"step": 7, "lr": 0.05})]  # a schedule: a metric
    # prose is never metrics; a line of pairs with progress counts and units is not prose
    for prose in ("training with lr=0.01 seed=0", "Validation loss=0.3", "Epochs: 10 planned",
                  "Train Epoch: 1 [0/60000 (0%)]\tLoss: 2.305400"):
        assert p.events(prose) == [], prose
    assert p.events("1875/1875 [====] - 3s 2ms/step - loss: 0.29, accuracy=0.91") == [
        ("step", {"step": 0, "loss": 0.29}), ("step", {"step": 0, "accuracy": 0.91})]
    # the run's params printed without an index are its config echoed
    assert p.events("lr: 0.01") == [] and p.events("seed=0 width=16") == [("step", {"step": 0, "width": 16.0})]
    # a name given two values is ambiguous; a line with two steps has no place
    assert p.events("step 100: train loss 2.30, val loss 2.31 acc 0.5") == [("step", {"step": 100, "acc": 0.5})]
    assert p.events("epoch 1 loss 0.3 epoch 2") == []
    assert p.metrics == 10  # values recorded, counted for the "no metric" warning


ECHO_TRACK = """
import os, sys
from tuiexp.store import events
print("no metric printed here")
with open(os.path.join(os.environ["TUIEXP_RUN_DIR"], "events.jsonl"), "ab") as f:  # as tuiexp.track does
    f.write(events.encode("epoch", 1.0, {"epoch": 1, "val_acc": 0.5}))
"""


def test_a_run_whose_output_gave_no_metric_gets_one_warning_unless_it_logged_through_track(tmp_path):
    def warnings(code: str, rc: int = 0) -> list[str]:
        run = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        run.mkdir()
        (run / "events.jsonl").write_bytes(events.encode("epoch", 0.0, {"epoch": 0, "x": 1}))  # an earlier attempt
        env = {**os.environ, "TUIEXP_RUN_DIR": str(run)}
        out = subprocess.run([sys.executable, "-m", "tuiexp.track.scalars", "--", sys.executable, "-c", code],
                             env=env, capture_output=True, timeout=60)
        assert out.returncode == rc
        return [e["message"] for e in metric_events(run) if e["kind"] == "warning"]

    (said,) = warnings("print('training with lr=0.01'); print('done')")
    assert "no metric" in said and "`epoch N name value`" in said
    assert warnings(ECHO_TRACK) == []
    assert warnings("print('loss: 0.5')") == []
    assert warnings("import sys; sys.exit(3)", rc=3) == []  # a failed run says why already


def test_lines_split_across_chunks_carriage_returns_and_a_full_backlog(tmp_path):
    backlog, batcher = Backlog(limit=64), Batcher(tmp_path / "events.jsonl")
    for chunk in (b"los", b"s: 1\rloss: 2\r\nacc=", b"0.5\n", b"x" * 100, b"loss: 9\n", b"loss: 3"):
        backlog.put(chunk)  # the 100 bytes overflow: a gap, and the next chunk still fits
    backlog.close()
    parse_all(backlog, Parser(), batcher)
    batcher.flush()
    got = metric_events(tmp_path)
    assert got[:3] == [{"kind": "step", "step": 0, "loss": 1.0}, {"kind": "step", "step": 1, "loss": 2.0},
                       {"kind": "step", "step": 0, "acc": 0.5}]
    assert got[3]["kind"] == "warning" and "fell behind" in got[3]["message"]
    assert got[4:] == [{"kind": "step", "step": 2, "loss": 9.0}, {"kind": "step", "step": 3, "loss": 3.0}]


def test_wrapper_passes_output_through_and_writes_metrics(tmp_path):
    (tmp_path / "plain.py").write_text(PLAIN)
    env = {**os.environ, "TUIEXP_RUN_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tuiexp.track.scalars", "--", sys.executable, "plain.py", "--lr", "0.1"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=60)
    direct = subprocess.run(cmd[4:], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=60)
    assert out.returncode == 0
    assert out.stdout == direct.stdout and b"note: not a number here\n" in out.stdout  # unchanged
    assert metric_events(tmp_path) == [
        {"kind": "step", "step": 1, "loss": 1.0, "lr": 0.1},
        {"kind": "step", "step": 2, "loss": 0.5, "lr": 0.1},
        {"kind": "step", "step": 3, "loss": 0.3333, "lr": 0.1},
        {"kind": "epoch", "epoch": 1, "val_acc": 0.6, "val/loss": 1.0},
        {"kind": "epoch", "epoch": 2, "val_acc": 0.7, "val/loss": 0.5},
        {"kind": "step", "step": 0, "loss": 0.25},
        {"kind": "step", "step": 1, "loss": 0.125},  # the last line had no newline
    ]
    failed = subprocess.run([*cmd, "--exit-code", "3"], cwd=tmp_path, env=env, capture_output=True)
    assert failed.returncode == 3


def test_wrapper_dies_of_the_childs_signal_and_reports_a_missing_command(tmp_path):
    kill = [sys.executable, "-m", "tuiexp.track.scalars", "--", sys.executable, "-c",
            "import os, signal; print('loss: 1', flush=True); os.kill(os.getpid(), signal.SIGKILL)"]
    out = subprocess.run(kill, env={**os.environ, "TUIEXP_RUN_DIR": str(tmp_path)}, capture_output=True)
    assert out.returncode == -signal.SIGKILL
    assert metric_events(tmp_path) == [{"kind": "step", "step": 0, "loss": 1.0}]
    out = subprocess.run([sys.executable, "-m", "tuiexp.track.scalars", "--", "no-such-command-x"],
                         capture_output=True, text=True)
    assert out.returncode == 127 and "`no-such-command-x` could not start" in out.stderr


def _start_counter(tmp_path: Path) -> subprocess.Popen[str]:
    (tmp_path / "term.py").write_text(TERM_COUNTER)
    proc = subprocess.Popen([sys.executable, "-m", "tuiexp.track.scalars", "--", sys.executable, "term.py"],
                            cwd=tmp_path, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_sigterm_reaches_the_child_once(tmp_path):
    # the supervisor signals the whole group: the child has it, the wrapper must not repeat it
    proc = _start_counter(tmp_path)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 11
    # someone else signals the wrapper alone (kill PID): it passes the signal on
    proc = _start_counter(tmp_path)
    subprocess.run(["kill", "-TERM", str(proc.pid)], check=True)
    assert proc.wait(timeout=30) == 11


CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 2

[defaults]
scalars = "stdout"
metric = "val/loss"

[experiments.plain]
command = "python plain.py --lr {lr}"
lr = 0.1
epochs = 3
args = "flags"

[experiments.plain_fails]
extends = "plain"
exit_code = 3

[experiments.arrows]
command = "python -c 'print(\\"epoch -> 1, acc -> 0.5\\")'"
scalars = '(?P<key>\\w+) -> (?P<value>[^,\\s]+)'
"""


def test_unmodified_script_through_the_supervisor(workdir):
    (workdir / "plain.py").write_text(PLAIN)
    write_config(workdir, CONFIG)
    ids = {name: tuiexp(workdir, "run", name, check=True).stdout.split()[0]
           for name in ("plain", "plain_fails", "arrows")}
    logs = LogsDir.at(workdir / "logs")

    def status(rid: str) -> str | None:
        rows = json.loads(tuiexp(workdir, "ls", "--json", check=True).stdout)
        row = next((r for r in rows if r["id"] == rid), None)
        return row["status"] if row and row["status"] not in ("queued", "starting", "running") else None

    assert wait_for(lambda: status(ids["plain"]), timeout=60) == "finished"
    assert wait_for(lambda: status(ids["plain_fails"]), timeout=60) == "failed"
    assert wait_for(lambda: status(ids["arrows"]), timeout=60) == "finished"
    run = logs.run(ids["plain"])
    spec = json.loads(run.spec.read_text())
    assert (spec["metric"], spec["mode"], spec["args"], spec["scalars"]) == ("val/loss", "min", "flags", "stdout")
    epochs = [e for e in metric_events(run.dir) if e["kind"] == "epoch"]
    assert epochs == [{"kind": "epoch", "epoch": e, "val_acc": 0.5 + e / 10, "val/loss": 1 / e}
                      for e in (1, 2, 3)]  # --epochs 3 came from args = "flags"
    assert "epoch: 3 val_acc: 0.8" in run.stdout.read_text()
    assert [e["kind"] for e in metric_events(logs.run(ids["plain_fails"]).dir)].count("epoch") == 3
    assert metric_events(logs.run(ids["arrows"]).dir) == [{"kind": "epoch", "epoch": 1, "acc": 0.5}]
