"""What track.log accepts and refuses, at the call (issue 9 "Bad input", issue 10 #1, #2, #7)."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from tuiexp import track
from tuiexp.store import events, runstore
from tuiexp.store.paths import LogsDir
from tuiexp.store.spec import RunSpec


@pytest.fixture
def run(tmp_path):
    paths = runstore.create(LogsDir.at(tmp_path / "logs"), RunSpec(id="r1", experiment="t", params={}))
    r = track.Run(paths.dir)
    yield r
    r.close()


def logged(run):
    run.flush()
    return [e for e in events.read_all(run.paths.events) if e["kind"] in ("step", "epoch")]


@pytest.mark.parametrize("value", ["0.5", None, {"a": 1}, [1.0], True, np.bool_(True),
                                   torch.ones(2), torch.tensor([[1.0, 2.0]]), np.ones(3),
                                   torch.tensor(True), complex(1, 2), object()])
def test_a_value_that_is_not_a_real_number_raises_typeerror_naming_the_metric(run, value):
    with pytest.raises(TypeError, match="'val/acc'"):
        run.log({"val/acc": value}, step=1)
    assert logged(run) == []  # nothing half-logged


@pytest.mark.parametrize("value, stored", [
    (torch.tensor(0.25), 0.25), (torch.tensor([0.5]), 0.5), (torch.tensor(3), 3),
    (np.float32(0.5), 0.5), (np.int64(7), 7), (np.array(1.5), 1.5), (np.float64(2.5), 2.5),
    (Fraction(1, 4), 0.25), (10**30, 1e30), (-(2**63), -(2**63)),
])
def test_one_element_tensors_numpy_scalars_and_numbers_are_stored_as_numbers(run, value, stored):
    run.log(step=0, x=value)
    assert logged(run)[0]["x"] == stored


def test_a_tensor_is_read_by_the_flush_thread_not_at_the_call(run):
    value = torch.tensor(0.5)
    run.log(step=0, loss=value)
    assert run._pending[-1]["loss"] is value  # still the tensor: no .item() in the loop
    assert logged(run)[0]["loss"] == 0.5


def test_nan_and_infinities_are_accepted_and_stored(run):
    run.log(step=0, a=math.nan, b=math.inf, c=-math.inf, d=torch.tensor(math.nan))
    ev = logged(run)[0]
    text = run.paths.events.read_text()
    assert "NaN" in text and "Infinity" in text and "-Infinity" in text
    assert math.isnan(ev["a"]) and ev["b"] == math.inf and ev["c"] == -math.inf and math.isnan(ev["d"])


@pytest.mark.parametrize("name", ["val acc", "é", "a" * 129, "", "loss!", "x\n"])
def test_a_bad_metric_name_raises_valueerror_naming_it(run, name):
    with pytest.raises(ValueError, match="metric name"):
        run.log({name: 1.0}, step=0)


@pytest.mark.parametrize("name", ["v", "t", "kind"])
def test_reserved_names_raise(run, name):
    with pytest.raises(ValueError, match="reserved"):
        run.log({name: 1.0}, step=0)


def test_names_with_slashes_dots_and_dashes_are_fine(run):
    names = ["val/acc", "Loss/train", "f1_macro", "a.b-c", "x" * 128]
    run.log({n: 1.0 for n in names}, step=3)
    assert set(names) <= set(logged(run)[0])


@pytest.mark.parametrize("step, error", [(-1, ValueError), (2**63, ValueError), (10**30, ValueError),
                                         (1.5, TypeError), ("3", TypeError), (True, TypeError),
                                         (None, TypeError)])
def test_step_and_epoch_must_be_ints_in_range(run, step, error):
    with pytest.raises(error, match="step|epoch"):
        run.log(step=step, x=1.0) if step is not None else run.log(x=1.0)
    with pytest.raises(error, match="epoch|step"):
        run.log(epoch=step, x=1.0) if step is not None else run.log(x=1.0)


def test_numpy_ints_are_steps(run):
    run.log(step=np.int64(5), epoch=np.int32(2), x=1.0)
    assert logged(run)[0]["step"] == 5 and logged(run)[0]["epoch"] == 2
    run.log(step=2**63 - 1, x=1.0)
    assert logged(run)[-1]["step"] == 2**63 - 1


def test_past_max_names_later_names_are_dropped_with_one_warning(run, monkeypatch):
    monkeypatch.setattr(track.run, "MAX_NAMES", 5)
    for i in range(10):
        run.log({f"m{i}": float(i), "m0": 0.0}, step=i)
    steps = logged(run)
    assert len(steps) == 10 and all(e["m0"] == 0.0 for e in steps)  # the run keeps working
    assert {k for e in steps for k in e if k.startswith("m")} == {f"m{i}" for i in range(5)}
    warnings = [e for e in events.read_all(run.paths.events) if e["kind"] == "warning"]
    assert len(warnings) == 1 and "m5" in warnings[0]["message"]


def test_log_after_finish_raises_and_finish_is_final(run):
    run.log(step=0, x=1.0)
    run.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        run.log(step=1, x=2.0)
    with pytest.raises(RuntimeError, match="finish"):
        run.meta(a=1)
    with pytest.raises(RuntimeError, match="finish"):
        run.finish("failed")
    evs = events.read_all(run.paths.events)
    assert evs[-1]["kind"] == "status" and evs[-1]["status"] == "finished"
    assert [e["kind"] for e in evs].count("status") == 1


def test_finish_refuses_an_unknown_status(run):
    with pytest.raises(ValueError, match="status"):
        run.finish("done")
    run.finish("diverged", "loss became nan")


def test_a_name_is_checked_once_then_remembered(run, monkeypatch):
    """The fast path: a known name never reaches the regex again (timing: bench/)."""
    run.log(step=0, train_loss=0.5, lr=0.1, val_acc=0.2)
    monkeypatch.setattr(track.checks, "check_name", lambda name: pytest.fail(name))
    for i in range(1, 100):
        run.log(step=i, train_loss=0.5, lr=0.1, val_acc=0.2)
    assert len(logged(run)) == 100


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_logging_a_cuda_tensor_never_waits_for_the_device(run):
    loss = torch.ones(8, device="cuda").mean()
    with run._write_lock:  # keep the flush thread (which does the .item()) out meanwhile
        torch.cuda.set_sync_debug_mode("error")  # any host-device sync now raises
        try:
            for i in range(10):
                run.log(step=i, loss=loss, lr=0.1)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    assert logged(run)[-1]["loss"] == 1.0
