"""`tuiexp lr-find`: the LR range test on tiny real data, and its suggestion rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tuiexp.trainer.lrfind import suggest

from ..conftest import tuiexp, write_config
from ..trainer.conftest import tiny_toml

TINY = ("[experiments.tiny]\n" + tiny_toml(epochs=2)
        + '\n[experiments.script]\ncommand = "python fit.py"\nlr = 0.1\n')


def test_suggest_picks_the_steepest_descent_before_the_valley() -> None:
    lrs = [1e-6 * 10 ** (i / 20) for i in range(140)]  # 1e-6 .. ~1e1
    def loss(lr: float) -> float:
        x = math.log10(lr)
        return 2.3 if x < -3 else (2.3 - 1.5 * (x + 3) if x < -1 else 0.8 + 4 * (x + 1) ** 2)
    lr = suggest(lrs, [loss(lr) for lr in lrs])
    assert lr is not None and 1e-3 <= lr <= 1e-1
    assert suggest(lrs[:5], [2.0] * 5) is None  # too short to say anything


@pytest.mark.slow
def test_lr_find_on_the_built_in_trainer(tmp_path: Path) -> None:
    write_config(tmp_path, TINY)
    proc = tuiexp(tmp_path, "lr-find", "tiny", "--steps", "40", "--no-queue", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "suggested lr:" in proc.stdout and "learning rate (log)" in proc.stdout
    [folder] = (tmp_path / "logs" / "lr-find").iterdir()
    result = json.loads((folder / "lr_find.json").read_text())
    assert 10 <= result["steps"] <= 40 and len(result["lrs"]) == result["steps"]
    assert result["lrs"] == sorted(result["lrs"]) and result["suggestion"] > 0
    assert (folder / "lr_find.png").stat().st_size > 1000
    assert not (tmp_path / "logs" / "runs").exists() or not any((tmp_path / "logs" / "runs").iterdir())


def test_lr_find_refuses_a_script_experiment(tmp_path: Path) -> None:
    write_config(tmp_path, TINY)
    proc = tuiexp(tmp_path, "lr-find", "script")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("tuiexp: experiments.toml: lr-find runs the built-in trainer, "
                                   "but experiment 'script' has a `command`.")


def test_the_reading_says_which_rule_gave_the_suggestion() -> None:
    from tuiexp.search import lrfind
    from tuiexp.trainer.lrfind import rule

    lrs = [1e-6 * 10 ** (i / 20) for i in range(140)]
    losses = [2.3 - 0.01 * i if i < 100 else 1.3 + 0.2 * (i - 100) for i in range(140)]
    lr = suggest(lrs, losses)
    steep = {"lrs": lrs, "losses": losses, "suggestion": lr, "rule": rule(lrs, losses, lr),
             "stopped": "reached lr 10", "steps": 140}
    assert steep["rule"] == "steepest"
    assert lrfind.why(steep).startswith("Where the smoothed loss falls fastest against log(lr)")
    short = [2.3, 2.2, 2.1, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]  # the lowest at the 4th point
    lr = suggest(lrs[:11], short)
    assert lr == lrs[3] / 10 and rule(lrs[:11], short, lr) == "valley"
    assert lrfind.why({"lrs": lrs[:11], "losses": short, "suggestion": lr, "rule": "valley",
                       "stopped": "x", "steps": 11}).startswith("A tenth of the LR of the lowest")
    none = {"lrs": [], "losses": [], "suggestion": None, "rule": None,
            "stopped": "the loss became nan at lr 1e-07", "steps": 0}
    assert lrfind.diverged_at_once(none, "tiny") == (
        "The LR range test of tiny diverged at once (the loss became nan at lr 1e-07 after 0 "
        "steps), so there is no LR to suggest; check the model and data.")
