"""Issue 19, cases 7 and 8: what a logs directory or a script may hand tuiexp.

Case 7: `doctor --fix` must never delete outside the logs directory through a run
directory that is a symlink (everything here lives in the test's own tmp_path: the
"outside" folder is a sibling of the logs directory, never anything else).
Case 8: input the tracking API must refuse at the call, and names printed safely.
"""

from __future__ import annotations

import random
import shutil
import sqlite3

from tests.conftest import write_config
from tests.faults.outside import cli, ok, run_by_hand, script

CONFIG = """
[queue]
gpus = "none"
cpu_jobs = 1

[experiments.quick]
command = "python FAKE_RUN"
epochs = 2
"""

DEAD_PID = 99_999_999  # above any pid_max: never a live writer


# -- case 7: doctor --fix through a symlinked run directory -------------------------------
def test_case7_doctor_never_deletes_outside_the_logs_directory(workdir):
    write_config(workdir, CONFIG)
    rid = ok(workdir, "run", "quick", "--wait").split()[0]
    ok(workdir, "daemon", "stop")
    logs = workdir / "logs"
    outside = workdir / "outside"  # someone's folder beside the logs: not tuiexp's to touch
    shutil.move(logs / "runs" / rid, outside)
    (logs / "runs" / rid).symlink_to(outside, target_is_directory=True)
    # files that look like leftovers of a dead writer (pid DEAD_PID), outside the logs dir
    precious = [outside / f".results.csv.{DEAD_PID}.tmp",
                outside / f".notes.json.{DEAD_PID}.abcdef.tmp",
                outside / "ckpt" / f".epoch-1.pt.{DEAD_PID}.tmp"]
    for path in precious:
        path.write_text("not tuiexp's\n")
    assert logs.resolve() not in outside.resolve().parents

    out = cli(workdir, "doctor")
    assert "symlink" in out.stdout + out.stderr, out.stdout  # the odd run directory is reported
    cli(workdir, "doctor", "--fix")
    gone = [p.name for p in precious if not p.exists()]
    assert not gone, f"doctor --fix deleted {gone} outside the logs directory"
    assert (outside / "run.json").exists() and (outside / "events.jsonl").exists()


# -- case 8: input refused at the call, names printed safely ---------------------------------
BAD_CONFUSION = """
from tuiexp import track

run = track.init(experiment="confused")
try:
    track.confusion(1, ["a"], [[1, 2], [3]])  # 1 class, a ragged 2-row matrix
except ValueError as e:
    print("refused:", e)
track.finish()
print(run.id)
"""


def test_case8_a_confusion_matrix_of_the_wrong_shape_is_refused_at_the_call(workdir):
    out = run_by_hand(workdir, script(workdir, "confused.py", BAD_CONFUSION))
    assert out.returncode == 0, out.stderr
    rid = out.stdout.split()[-1]
    plot = cli(workdir, "plot", "confusion", rid, "-o", str(workdir / "c.png"))
    assert "Traceback" not in plot.stderr, plot.stderr
    assert out.stdout.startswith("refused:"), out.stdout


NAMED = """
from tuiexp import track

try:
    run = track.init(experiment="two\\nlines\\x1b[2Jcleared")
except ValueError as e:
    print("refused:", e)
else:
    track.log(epoch=1, val_acc=0.5)
    track.finish()
    print(run.id)
"""


def test_case8_control_characters_in_a_name_never_reach_the_terminal(workdir):
    out = run_by_hand(workdir, script(workdir, "named.py", NAMED))
    assert out.returncode == 0, out.stderr
    if out.stdout.startswith("refused:"):
        return  # refused at the call: nothing to print
    rid = out.stdout.split()[-1]
    for args in (("show", rid), ("ls",), ("ls", "--filter", "exp:two"), ("export", "--format", "csv")):
        shown = cli(workdir, *args)
        text = shown.stdout + shown.stderr
        assert "\x1b" not in text and "two\nlines" not in text, (args, text)


BIG_EPOCH = """
from tuiexp import track

track.init(experiment="far")
try:
    track.log(epoch=10**12, val_acc=0.5)
except ValueError as e:
    print("refused:", e)
track.finish()
"""


def test_case8_an_absurd_epoch_is_refused_at_the_call(workdir):
    out = run_by_hand(workdir, script(workdir, "far.py", BIG_EPOCH))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused:"), out.stdout
    assert "1000000000000" not in ok(workdir, "ls")


QUIET = """
from tuiexp import track

for i in range(3):
    with track.start(experiment="quiet", params={"i": i}):
        for epoch in range(1, 4):
            track.log(epoch=epoch, val_acc=epoch / 4)
"""


def test_case8_a_malformed_index_is_not_blamed_on_disk_space(workdir):
    """Without a supervisor: runs by hand, indexed by `ls`, then every page of the index
    but its header overwritten (a damaged file, not a full disk)."""
    assert run_by_hand(workdir, script(workdir, "quiet.py", QUIET)).returncode == 0
    listed = ok(workdir, "ls")
    assert listed.count("-quiet-") == 3  # one row per run (ids hold the experiment)
    index = workdir / "logs" / "index.sqlite"
    with sqlite3.connect(index) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = index.stat().st_size
    with open(index, "r+b") as f:
        f.seek(4096)
        f.write(random.Random(8).randbytes(size - 4096))
    for args in (("ls",), ("reindex",), ("plot", "curves", "-o", str(workdir / "c.png")),
                 ("doctor",)):
        out = cli(workdir, *args)
        assert "space" not in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
