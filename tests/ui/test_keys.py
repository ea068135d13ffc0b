"""Every key is listed (issue 18.11): each screen binds a list of ui/keys.py, `?` is
made from those lists, and the footer of the runs screen names filter, help and quit."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from textual.binding import Binding
from textual.screen import Screen

import tuiexp.ui.screens
from tuiexp.ui import keys
from tuiexp.ui.widgets.runs_table import RunsTable


def screen_classes() -> list[type[Screen]]:
    found = []
    for info in pkgutil.iter_modules(tuiexp.ui.screens.__path__):
        module = importlib.import_module(f"tuiexp.ui.screens.{info.name}")
        found += [c for _, c in inspect.getmembers(module, inspect.isclass)
                  if issubclass(c, Screen) and c.__module__ == module.__name__
                  and "BINDINGS" in c.__dict__]
    return found


def test_every_binding_of_every_screen_is_in_the_help():
    listed = {(where, key) for where, key, _ in keys.rows()}
    lists = [bindings for _, bindings in keys.SCREENS]
    classes = screen_classes()
    assert len(classes) >= 11, classes
    for cls in [*classes, RunsTable]:
        assert any(cls.BINDINGS is b or all(x in b for x in cls.BINDINGS) for b in lists), cls
        for b in cls.BINDINGS:
            assert isinstance(b, Binding)
            if b in keys.GLOBAL:
                continue
            assert any(key == keys.key_text(b.key) for _, key in listed), (cls, b)
    for where, key in (("detail", "n / pgdn"), ("detail", "p / pgup"), ("LR range test", "y"),
                       ("tags", "enter"), ("note", "ctrl+s")):
        assert (where, key) in listed, (where, key)


def test_the_runs_footer_puts_filter_help_and_quit_first():
    shown = [b.key for b in keys.RUNS if isinstance(b, Binding) and b.show]
    assert shown[:6] == ["enter", "n", "f", "slash", "question_mark", "q"]
