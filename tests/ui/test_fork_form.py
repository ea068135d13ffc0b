"""The fork form (issue 18.8): it opens on an epoch that leaves epochs to train, its
schedule field holds a template from the parent, and takes a schedule as the README
writes it; its errors are sentences, never a parser's message."""

from __future__ import annotations

import pytest

from tuiexp.config.fork import parse_schedule
from tuiexp.errors import ConfigError
from tuiexp.ui.screens.fork import first_epoch, plan, schedule_text

PARENT = {"epochs": 3, "optimizer": "sgd", "lr": 0.2, "scheduler": "onecycle", "batch_size": 32}
NO_CHANGE = {"batch_size": "32"}


def test_it_opens_on_the_newest_checkpoint_that_leaves_epochs_to_train():
    assert first_epoch([1, 2, 3], best=3, epochs=3) == 2
    assert first_epoch([1, 2, 3], best=2, epochs=10) == 3
    assert first_epoch([3], best=3, epochs=3) == 3  # none leaves any: the form asks for more


@pytest.mark.parametrize("typed", [
    "[{ epochs = 2, lr = 0.05 }]",
    "schedule = [{ epochs = 2, lr = 0.05 }]",
    "--set 'schedule=[{ epochs = 2, lr = 0.05 }]'",
    "schedule=[{epochs=2, lr=0.05}]",
    "[\n  { epochs = 2, lr = 0.05 },\n]",
])
def test_the_schedule_is_taken_as_a_person_types_it(typed: str):
    assert parse_schedule(typed) == [{"epochs": 2, "lr": 0.05}]
    overrides, error = plan(PARENT, True, 1, NO_CHANGE, typed)
    assert error is None and overrides == {"schedule": [{"epochs": 2, "lr": 0.05}]}


def test_an_untouched_template_changes_nothing_and_a_wrong_schedule_is_a_sentence():
    from tuiexp.config.fork import schedule_template

    template = schedule_text(schedule_template(PARENT, 2))
    assert "epochs = 2" in template and 'optimizer = "sgd"' in template
    assert plan(PARENT, True, 1, NO_CHANGE, template, template) == ({}, None)
    _, error = plan(PARENT, True, 1, NO_CHANGE, "[{ epochs = 2, lr = 0.05 }")
    assert error and "TOML" not in error and "line 1" not in error and error.endswith(".")
    with pytest.raises(ConfigError, match="list of phases"):
        parse_schedule("3")
