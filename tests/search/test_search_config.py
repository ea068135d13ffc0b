"""[experiments.x.search]: every mistake is one sentence with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiexp.config import loader, model
from tuiexp.errors import ConfigError

from ..conftest import tuiexp, write_config

HEAD = """
[queue]
gpus = "none"
cpu_jobs = 2

[experiments.s]
command = "python fit.py"
lr = 0.1
dropout = 0.0

[experiments.s.search]
"""


def load(tmp_path: Path, search: str) -> model.Config:
    return loader.load(write_config(tmp_path, HEAD + search))


def error(tmp_path: Path, search: str) -> str:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, search)
    return str(e.value)


def test_a_good_search_table(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'sampler = "random"\ntrials = 4\nparallel = 2\npruner = "asha"\n'
                         'lr = { log_uniform = [1e-4, 1e-1] }\ndropout = { choice = [0.0, 0.5] }\n')
    s = cfg.experiment("s").search
    assert s is not None and s["sampler"] == "random" and s["trials"] == 4
    assert set(s["space"]) == {"lr", "dropout"} and s["pruner"] == "asha"


def test_grid_counts_its_points(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'sampler = "grid"\ndropout = { choice = [0.0, 0.1, 0.2] }\n'
                         'lr = { choice = [0.1, 0.01] }\n')
    assert cfg.experiment("s").search["trials"] == 6


@pytest.mark.parametrize(("search", "said"), [
    ("trials = 2\nlr = { uniform = [0.1, 0.1] }\n", "line 13: `search.lr.uniform` = [0.1, 0.1] is an empty range."),
    ("trials = 2\nlr = { log_uniform = [1e-1, 1e-4] }\n", "line 13: `search.lr.log_uniform` = [0.1, 0.0001] is inverted"),
    ('sampler = "tpee"\ntrials = 2\nlr = { uniform = [0, 1] }\n', "line 12: unknown sampler 'tpee' — did you mean `tpe`?"),
    ('pruner = "medain"\ntrials = 2\nlr = { uniform = [0, 1] }\n', "line 12: unknown pruner 'medain' — did you mean `median`?"),
    ("trials = 2\nsampeler = \"tpe\"\nlr = { uniform = [0, 1] }\n", "line 13: unknown key `sampeler` in [search] — did you mean `sampler`?"),
    ('pruner = "asha"\nmin_resource = 2\ntrials = 2\nlr = { uniform = [0, 1] }\n',
     "line 13: unknown key `min_resource` in [search] — Optuna's `min_resource` is `warmup` here"),
    ("n_startup_trials = 3\ntrials = 2\nlr = { uniform = [0, 1] }\n",
     "line 12: unknown key `n_startup_trials` in [search] — Optuna's `n_startup_trials` is `startup_trials` here"),
    ("lr = { uniform = [0, 1] }\n", "`search.trials` is missing"),
    ('sampler = "grid"\nlr = { uniform = [0, 1] }\n', 'sampler = "grid" takes `choice` or `int_uniform` values'),
    ('sampler = "grid"\ntrials = 5\nlr = { choice = [0.1, 0.2] }\n', "`search.trials` = 5 is more than the grid's 2 points"),
    ("trials = 0\nlr = { uniform = [0, 1] }\n", "`search.trials` must be an integer of at least 1"),
    ("trials = 2\n", "`search` names no param to search"),
])
def test_bad_search_tables_say_what_and_where(tmp_path: Path, search: str, said: str) -> None:
    message = error(tmp_path, search)
    assert said in message and message.startswith("experiments.toml")
    assert message.count(". ") == 0 or message.endswith(".")  # one sentence


def test_a_search_over_a_param_the_trainer_lacks_is_refused(tmp_path: Path) -> None:
    # (a command's params are whatever its experiment names: a searched key is one of them)
    path = write_config(tmp_path, "[experiments.t]\n\n[experiments.t.search]\ntrials = 2\n"
                                  "lrr = { uniform = [0.1, 1] }\n")
    with pytest.raises(ConfigError, match=r"line 5: search over `lrr`, a key that does not exist "
                                          r"— did you mean `lr`\?"):
        loader.load(path)


def test_parallel_above_the_queue_is_refused_by_check_and_run(tmp_path: Path) -> None:
    """How many runs fit at once depends on this machine: `check` and `run` say it."""
    write_config(tmp_path, HEAD + "trials = 2\nparallel = 3\nlr = { uniform = [0, 1] }\n")
    said = "line 13: `parallel = 3` is more than the queue can run at once (2"
    for args in (["check"], ["run", "s"]):
        proc = tuiexp(tmp_path, *args)
        assert proc.returncode == 2 and said in proc.stdout + proc.stderr, (args, proc)
    assert not (tmp_path / "logs" / "studies").exists()


def test_search_cannot_be_mixed_with_a_sweep(tmp_path: Path) -> None:
    body = HEAD.replace("[experiments.s.search]", "sweep.lr = [0.1, 0.2]\n\n[experiments.s.search]")
    with pytest.raises(ConfigError, match="cannot be combined with `sweep`"):
        loader.load(write_config(tmp_path, body + "trials = 2\ndropout = { uniform = [0, 1] }\n"))


def test_check_refuses_a_bad_search_with_exit_2(tmp_path: Path) -> None:
    write_config(tmp_path, HEAD + "trials = 2\nlr = { uniform = [1, 0] }\n")
    proc = tuiexp(tmp_path, "check")
    assert proc.returncode == 2 and "is inverted" in proc.stderr
    proc = tuiexp(tmp_path, "run", "s")
    assert proc.returncode == 2 and not (tmp_path / "logs" / "studies").exists()


def test_study_show_names_an_unknown_study(tmp_path: Path) -> None:
    proc = tuiexp(tmp_path, "study", "show", "nope")
    assert proc.returncode == 2 and "no study 'nope'" in proc.stderr


def test_a_trainer_search_range_must_stay_valid(tmp_path: Path) -> None:
    body = """
[experiments.t]
epochs = 2

[experiments.t.search]
trials = 2
dropout = { uniform = [0.0, 1.5] }
"""
    with pytest.raises(ConfigError) as e:
        loader.load(write_config(tmp_path, body))
    assert str(e.value).startswith("experiments.toml, line 7: `search.dropout` reaches 1.5, but `dropout`")


def test_check_counts_a_study_s_trials(tmp_path: Path) -> None:
    write_config(tmp_path, HEAD.replace('"python fit.py"', '"true"')
                 + "trials = 7\nlr = { uniform = [0.1, 0.2] }\n")
    proc = tuiexp(tmp_path, "check")
    assert proc.returncode == 0, proc.stderr
    assert "7 runs" in proc.stdout


def test_a_client_does_not_queue_a_study_as_one_run(tmp_path: Path) -> None:
    from tuiexp.errors import UsageError
    from tuiexp.queue.client import Client
    from tuiexp.store.paths import LogsDir

    cfg = load(tmp_path, "trials = 2\nlr = { uniform = [0.1, 0.2] }\n")
    with Client(LogsDir.at(tmp_path / "logs"), autostart=False) as client:
        with pytest.raises(UsageError, match="is a study: start it with `tuiexp run s`"):
            client.enqueue(cfg, "s")


def test_the_reduction_factor_reaches_the_pruner(tmp_path: Path) -> None:
    from tuiexp.search import study as studies

    optuna = studies.optuna_module()
    path = tmp_path / "experiments.toml"
    path.write_text('[experiments.x]\nlr = 0.1\n[experiments.x.search]\npruner = "asha"\n'
                    'trials = 4\nreduction = 3\nlr = { log_uniform = [1e-4, 1e-1] }\n')
    search = loader.load(path).experiment("x").search
    assert search is not None and search["reduction"] == 3
    assert studies.make_pruner(optuna, search, 9)._reduction_factor == 3
    path.write_text(path.read_text().replace("reduction = 3", "reduction = 1"))
    with pytest.raises(ConfigError, match=r"line 6: `search.reduction` must be an integer of at least 2"):
        loader.load(path)


@pytest.mark.parametrize("pruner", ["asha", "median", "hyperband"])
def test_warmup_is_the_first_epoch_a_pruner_can_stop_a_trial_at(tmp_path: Path, pruner: str) -> None:
    """`warmup` is the median pruner's n_warmup_steps and ASHA's and Hyperband's
    min_resource (their first rung): a hopeless trial goes on through epoch 1 and, where
    the pruner rules at its first rung (ASHA, median), stops at epoch 2."""
    from tuiexp.search import study as studies

    optuna = studies.optuna_module()
    path = tmp_path / "experiments.toml"
    path.write_text(f'[experiments.x]\nlr = 0.1\n[experiments.x.search]\npruner = "{pruner}"\n'
                    'trials = 8\nwarmup = 2\nstartup_trials = 2\nlr = { log_uniform = [1e-4, 1e-1] }\n')
    search = loader.load(path).experiment("x").search
    assert search is not None
    study = optuna.create_study(direction="maximize", pruner=studies.make_pruner(optuna, search, 8))
    for _ in range(4):  # good trials, ahead at every epoch (ASHA records a rung when asked)
        good = study.ask()
        for epoch in range(1, 9):
            good.report(1.0, epoch)
            assert not good.should_prune()
        study.tell(good, 1.0)
    bad = study.ask()
    stopped = None
    for epoch in range(1, 9):
        bad.report(0.0, epoch)
        if bad.should_prune():
            stopped = epoch
            break
    assert stopped is not None and stopped >= 2
    if pruner != "hyperband":  # (a Hyperband trial's bracket may start at a later rung)
        assert stopped == 2
    assert studies.next_verdict(search, 4, 0, 8) == 2
