import json
import os
import subprocess
import sys
import time

from tuiexp import track
from tuiexp.store import events, runstore
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec


def make_run(tmp_path, **params):
    logs = LogsDir.at(tmp_path / "logs")
    return runstore.create(logs, RunSpec(id="r1", experiment="t", params=params))


def test_log_buffers_then_flushes_in_order(tmp_path):
    paths = make_run(tmp_path, lr=0.1)
    run = track.Run(paths.dir)
    assert run.params == {"lr": 0.1}
    for i in range(1000):
        run.log(step=i, train_loss=1.0 / (i + 1))
    run.log(epoch=1, val_acc=0.5)
    run.flush()
    evs = events.read_all(paths.events)
    assert [e["step"] for e in evs if e["kind"] == "step"] == list(range(1000))
    assert evs[-1]["kind"] == "epoch" and evs[-1]["v"] == events.VERSION
    run.close()


def test_background_flush_makes_events_visible_without_explicit_flush(tmp_path):
    paths = make_run(tmp_path)
    run = track.Run(paths.dir)
    run.log(step=1, train_loss=0.3)
    deadline = time.monotonic() + 5
    while not events.read_all(paths.events) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert events.read_all(paths.events)[0]["train_loss"] == 0.3
    run.close()


SCRIPT = """
import os, signal, sys, time
from tuiexp import track
run = track.init()
track.log(step=1, train_loss=1.0)
if sys.argv[1] == "raise":
    raise RuntimeError("bad batch")
if sys.argv[1] == "term":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
"""


def run_script(paths, mode):
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], env={
        **os.environ, "TUIEXP_RUN_DIR": str(paths.dir)}, capture_output=True, text=True)


def test_an_exception_is_recorded_as_failed_with_where(tmp_path):
    paths = make_run(tmp_path)
    proc = run_script(paths, "raise")
    assert proc.returncode == 1
    evs = events.read_all(paths.events)
    status = [e for e in evs if e["kind"] == "status"][-1]
    assert status["status"] == "failed" and "RuntimeError: bad batch" in status["message"]
    assert any(e["kind"] == "step" for e in evs)  # flushed before dying


def test_sigterm_is_recorded_as_cancelled(tmp_path):
    paths = make_run(tmp_path)
    proc = run_script(paths, "term")
    assert proc.returncode != 0
    status = [e for e in events.read_all(paths.events) if e["kind"] == "status"][-1]
    assert status["status"] == "cancelled"


def test_standalone_script_creates_its_own_run(tmp_path):
    code = "from tuiexp import track; r = track.init(params={'lr': 0.5}); track.log(epoch=1, val_acc=0.9)"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    (run_dir,) = (tmp_path / "logs" / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["params"] == {"lr": 0.5}
    evs = events.read_all(run_dir / "events.jsonl")
    assert evs[-1]["kind"] == "status" and evs[-1]["status"] == "finished"


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_an_unwritable_field_becomes_a_warning_and_the_flush_thread_lives_on(tmp_path):
    paths = make_run(tmp_path)
    run = track.Run(paths.dir)
    loop = []
    loop.append(loop)
    run.log(step=0, x=1.0)
    run.meta(ok=1, bad={(1, 2): "tuple key"}, cyclic=loop)
    run.log(step=1, x=2.0)
    wait_for(lambda: any(e["kind"] == "step" and e["step"] == 1 for e in events.read_all(paths.events)))
    evs = events.read_all(paths.events)
    assert [e["kind"] for e in evs] == ["step", "meta", "warning", "step"]
    assert evs[1]["ok"] == 1 and "bad" not in evs[1] and "cyclic" not in evs[1]
    assert "'bad'" in evs[2]["message"] and "'cyclic'" in evs[2]["message"]
    assert run._flusher.is_alive()
    run.log(step=2, x=3.0)  # the background thread still writes
    wait_for(lambda: events.read_all(paths.events)[-1].get("step") == 2)
    run.close()


def test_reopening_cleans_checkpoint_temp_files_of_dead_writers(tmp_path):
    paths = make_run(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    orphan = paths.ckpt / f".epoch-0003.pt.{dead.stdout.strip()}.tmp"
    alive = paths.ckpt / f".epoch-0004.pt.{os.getppid()}.tmp"  # a live writer: kept
    mine = paths.ckpt / f".epoch-0005.pt.{os.getpid()}.tmp"  # our pid, not saving yet
    for p in (orphan, alive, mine):
        p.write_bytes(b"partial")
    (paths.ckpt / "epoch-0002.pt").write_bytes(b"real")
    run = track.Run(paths.dir)
    assert not orphan.exists() and not mine.exists() and alive.exists()
    assert (paths.ckpt / "epoch-0002.pt").exists()
    run.close()


SIGKILL_SAVE = """
import os, signal, torch
from tuiexp import track
run = track.init()
big = {"w": torch.zeros(1000)}
def kill_in_save(src, dst):  # die between the temp file's write and its rename
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = kill_in_save
track.save_checkpoint(big, 1)
"""


def test_a_sigkill_during_save_leaves_a_tmp_that_the_resume_removes(tmp_path):
    paths = make_run(tmp_path)
    env = {**os.environ, "TUIEXP_RUN_DIR": str(paths.dir)}
    proc = subprocess.run([sys.executable, "-c", SIGKILL_SAVE], env=env)
    assert proc.returncode == -9
    assert [p.name for p in paths.ckpt.glob(".epoch-*.tmp")]  # the orphan
    resume = "from tuiexp import track; track.init()"  # the resume's first step
    subprocess.run([sys.executable, "-c", resume], env=env, check=True)
    assert list(paths.ckpt.iterdir()) == []


SIGKILL_AFTER_SAVE = """
import os, signal, torch
from tuiexp import track
track.init()
track.log(epoch=1, val_acc=0.75)
replace = os.replace
def replace_then_die(src, dst):  # the checkpoint is in place; nothing after it runs
    replace(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace_then_die
track.save_checkpoint({"w": torch.zeros(3)}, 1)
"""


def test_a_sigkill_right_after_a_checkpoint_loses_no_metric_it_reflects(tmp_path):
    # a resume starts after the checkpoint's epoch, so that epoch's metrics are never
    # logged again: they must be on disk before the checkpoint is
    paths = make_run(tmp_path)
    env = {**os.environ, "TUIEXP_RUN_DIR": str(paths.dir)}
    proc = subprocess.run([sys.executable, "-c", SIGKILL_AFTER_SAVE], env=env)
    assert proc.returncode == -9
    assert paths.checkpoint(1).exists()
    assert [e["val_acc"] for e in events.read_all(paths.events) if e["kind"] == "epoch"] == [0.75]


def test_init_with_another_run_dir_raises_and_init_again_returns_the_open_run(tmp_path):
    a, b = make_run(tmp_path), runstore.create(LogsDir.at(tmp_path / "logs"),
                                               RunSpec(id="r2", experiment="t", params={}))
    code = f"""
from tuiexp import track
from tuiexp.errors import UsageError
run = track.init({str(a.dir)!r})
assert track.init() is run and track.init({str(a.dir)!r}) is run
try:
    track.init({str(b.dir)!r})
except UsageError as e:
    print("refused:", e)
track.finish()
try:
    track.init({str(a.dir)!r})
except UsageError as e:
    print("refused:", e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and "r1 is open" in lines[0] and "already finished" in lines[1]
    assert not events.read_all(b.events)


DISK_FULL = """
import os, resource, signal, sys, time
from tuiexp import track
from tuiexp.track import run as runmod
runmod.MAX_BACKLOG = int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-limit write fails with EFBIG instead
run = track.init()
run.flush()
size = os.path.getsize(run.paths.events)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 300, resource.RLIM_INFINITY))  # "disk full"
for i in range(int(sys.argv[1])):
    track.log(step=i, loss=float(i))
time.sleep(3 * track.FLUSH_INTERVAL)  # the flush thread meets the full disk, and lives
assert run._flusher.is_alive()
print("backlog", len(run._backlog), "dropped", run._dropped, flush=True)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
track.log(step=10_000, loss=0.0)
track.finish()
"""


def disk_full(paths, n, backlog):
    env = {**os.environ, "TUIEXP_RUN_DIR": str(paths.dir)}
    proc = subprocess.run([sys.executable, "-c", DISK_FULL, str(n), str(backlog)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, events.read_all(paths.events)


def test_a_full_disk_keeps_events_pending_and_writes_them_when_space_returns(tmp_path):
    paths = make_run(tmp_path)
    out, evs = disk_full(paths, 500, 64 << 20)
    assert "backlog 0 " not in out  # it did wait in memory
    steps = [e["step"] for e in evs if e["kind"] == "step"]
    assert steps == [*range(500), 10_000]  # none lost, none doubled, in order
    assert evs[-1]["kind"] == "status" and evs[-1]["status"] == "finished"


def test_past_the_backlog_bound_events_are_dropped_counted_and_the_status_kept(tmp_path):
    paths = make_run(tmp_path)
    out, evs = disk_full(paths, 2000, 4000)
    steps = [e["step"] for e in evs if e["kind"] == "step"]
    warning = [e for e in evs if e["kind"] == "warning"]
    assert 0 < len(steps) < 2001 and steps == sorted(steps)
    assert len(warning) == 1 and "dropped while the disk refused writes" in warning[0]["message"]
    n_dropped = int(warning[0]["message"].split()[0])
    assert len(steps) + n_dropped == 2001
    assert evs[-1]["kind"] == "status" and evs[-1]["status"] == "finished"
