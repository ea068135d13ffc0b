"""The first hour with tuiexp, as a new user lives it (issue 18), in real terminals of
80×24 and 100×30 side by side, from an EMPTY logs directory and the README's way in:
`tuiexp` in a folder with an experiments.toml, `n`, `enter` on `smoke`, watch.

One journey, split into steps so each step is its own test: the steps run in file
order and share the module's `journey` (the folder, both terminals, what earlier steps
saw). Each step leaves the screens as it found them, so a failing step does not take
the steps after it down. The built-in trainer trains for real (torch, on the CPU):
marked `slow`."""

from __future__ import annotations

import csv
import re

import pytest

from tests.journeys.conftest import Journey, dialog_open, dialog_text, seen
from tests.journeys.screen import (
    axis_labels,
    boxes,
    chart_region,
    is_loss_title,
    is_metric_title,
    sparks,
    table,
)
from tests.ui.tmux import Terminal, needs_tmux

pytestmark = [needs_tmux, pytest.mark.slow]
SIZES = ("80x24", "100x30")
NEW_SCHEDULE = [{"epochs": 2, "lr": 0.05}]
#: metric names the built-in trainer logs that no other one contains
TRAINER_METRICS = ("train_loss", "val_loss", "val_acc", "train_acc", "val_top5", "epoch_time",
                   "images_per_s", "batch_size")
FIRST_PARAMS = ("optimizer", "lr", "schedule", "batch_size", "dropout", "epochs", "model")
SCROLLBAR = " ▁▂▃▄▅▆▇█▉▊▋▌▍▎▏"  # a panel's scrollbar, drawn at its right edge


def seconds(clock: str | None) -> int | None:
    """`1:05` -> 65; `1h02` -> 3720."""
    if not clock:
        return None
    if "h" in clock:
        h, m = clock.split("h")
        return int(h) * 3600 + int(m) * 60
    m, s = clock.split(":")
    return int(m) * 60 + int(s)


# -- an empty logs directory -------------------------------------------------------------

def test_opens_on_an_empty_logs_dir_saying_how_to_start(journey: Journey):
    for term in journey.terminals.values():
        pane = term.wait_text("No runs yet", "press n")
        assert table(pane) is not None, pane


@pytest.mark.parametrize("size", SIZES)
def test_the_footer_names_filter_help_and_quit(journey: Journey, size: str):
    term = journey.terminals[size]
    footer = term.wait_text("No runs yet").rstrip().splitlines()[-1]
    words = footer.split()
    assert {"/", "?", "q"} <= set(words), footer


def test_help_lists_the_keys_of_every_screen(journey: Journey):
    term = journey.small
    term.keys("?")
    seen: list[str] = []
    try:
        term.wait(lambda: "where" in term.pane())
        for _ in range(8):  # page down until the end: what a reader sees of it
            pane = term.pane()
            seen += [line for line in pane.splitlines() if line not in seen]
            term.keys("PageDown")
            if term.pane() == pane:
                break
    finally:
        journey.clear(term)
    rows = [re.split(r"\s{2,}", line.strip()) for line in seen]
    keys = {(r[0].lower(), k) for r in rows if len(r) >= 3
            for k in re.split(r"[\s/,]+", r[1]) if k}

    def has(where: str, key: str) -> bool:
        return any(where in w and k == key for w, k in keys)

    missing = [f"{w}: {k}" for w, k in (("detail", "n"), ("detail", "p"), ("lr", "y"),
                                         ("tag", "enter"), ("note", "ctrl+s")) if not has(w, k)]
    assert not missing, "\n".join(seen)


def test_the_n_dialog_has_no_empty_rows(journey: Journey):
    term = journey.small
    try:
        pane = journey.open_new(term)
        inside = [line[1:-1] for line in pane.splitlines()
                  if line.startswith("█") and line.endswith("█") and "▀" not in line
                  and "▄" not in line]
        blanks = [i for i, line in enumerate(inside) if not line.strip()]
        assert not any(b + 1 in blanks for b in blanks), pane
    finally:
        journey.clear(term)


# -- queue `smoke` with `n` and watch it train ------------------------------------------

def test_queue_smoke_with_n_and_see_it_run(journey: Journey):
    from tests.journeys.screen import Recorder

    journey.recorder = Recorder({size: term.pane for size, term in journey.terminals.items()})
    journey.recorder.start()
    journey.queue_with_n(journey.small, "smoke")
    for term in journey.terminals.values():
        term.wait(lambda t=term: (tb := table(t.pane())) and tb.row(lambda label: label == "smoke")
                  and "running" in tb.row(lambda label: label == "smoke"), 60)
    journey.notes["queued smoke"] = True


def smoke_frames(journey: Journey, size: str) -> list[tuple[float, str]]:
    """What the terminal showed while smoke ran, once it finished (recorded throughout)."""
    journey.after("queued smoke")
    if journey.recording is None:
        journey.wait_runs(lambda rows: rows and rows[0]["status"] == "finished", "exp:smoke",
                          timeout=180)
        journey.recording = journey.recorder.stop()
    frames = []
    for t, pane in journey.recording.frames[size]:
        tb = table(pane)
        line = tb.row(lambda label: label == "smoke") if tb else None
        if line and "running" in line:
            frames.append((t, pane))
    assert frames, "smoke was never seen running"
    return frames


def spark_growth(frames: list[tuple[float, str]], title) -> list[int]:
    counts = []
    for _, pane in frames:
        tb = table(pane)
        line = tb.row(lambda label: label == "smoke")
        counts.append(sparks(tb.cell(line, title)))
    return counts


def increases(counts: list[int]) -> int:
    return sum(1 for a, b in zip(counts, counts[1:], strict=False) if b > a)


@pytest.mark.parametrize("size", SIZES)
def test_the_sparklines_appear_and_grow_while_it_trains(journey: Journey, size: str):
    """Several captures while smoke runs, each showing more of its curves than the one
    before: at 100×30 the loss and the primary metric; at 80×24 at least one of them."""
    frames = smoke_frames(journey, size)
    last = frames[-1][1]
    growth = {"loss": spark_growth(frames, is_loss_title),
              "metric": spark_growth(frames, is_metric_title)}
    for name, counts in growth.items():
        assert all(b >= a for a, b in zip(counts, counts[1:], strict=False)), (name, counts, last)
    grew = [name for name, counts in growth.items() if increases(counts) >= 3]
    want_both = size == "100x30"  # at 80×24 one sparkline column may be all that fits
    assert (grew == ["loss", "metric"]) if want_both else grew, (growth, last)


@pytest.mark.parametrize("size", SIZES)
def test_no_column_disappears_while_it_trains(journey: Journey, size: str):
    frames = smoke_frames(journey, size)
    shown: set[str] = set()
    for _, pane in frames:
        now = set(table(pane).columns)
        assert shown <= now, (sorted(shown - now), pane)
        shown |= now
    assert any(is_loss_title(c) or is_metric_title(c) for c in shown), frames[-1][1]


def test_the_eta_counts_down_within_an_epoch(journey: Journey):
    """Within each epoch seen for 2 s or more (by the clock of the captures), the ETA
    goes down and never up."""
    frames = smoke_frames(journey, "100x30")
    by_epoch: dict[str, list[tuple[float, int]]] = {}
    for t, pane in frames:
        tb = table(pane)
        line = tb.row(lambda label: label == "smoke")
        eta = seconds(tb.cell(line, "eta"))
        if eta is not None:
            by_epoch.setdefault(tb.cell(line, "epoch") or "", []).append((t, eta))
    long = {e: pts for e, pts in by_epoch.items() if pts[-1][0] - pts[0][0] >= 2}
    if not long:  # test_numbers_on_screen.py holds an epoch open on purpose
        pytest.skip(f"no epoch lasted 2 s on screen: nothing to see ({by_epoch})")
    for epoch, pts in long.items():
        etas = [eta for _, eta in pts]
        assert etas[-1] < etas[0] and all(b <= a for a, b in zip(etas, etas[1:], strict=False)), (epoch, pts)


# -- the detail of smoke at 80×24 ---------------------------------------------------------

def open_detail(journey: Journey, term: Terminal, filter_text: str) -> str:
    journey.show_only(term, filter_text, rows=1)
    term.keys("g", "Enter")
    return seen(term, lambda p: "╭" in p and "│" in chart_region(p))


def smoke_detail_pages(journey: Journey) -> list[str]:
    """The chart region of each page of smoke's detail at 80×24 (`n` to the next one)."""
    term = journey.small
    try:
        open_detail(journey, term, "exp:smoke")
        pages = [chart_region(term.pane())]
        for _ in range(6):
            term.keys("n")
            region = chart_region(term.pane())
            if region == pages[-1]:
                break
            pages.append(region)
    finally:
        journey.clear(term)
    return pages


def test_detail_charts_loss_and_metric_first_and_no_constant(journey: Journey):
    pages = smoke_detail_pages(journey)
    assert "val_acc" in pages[0] and ("train_loss" in pages[0] or "val_loss" in pages[0]), pages[0]
    assert not any(charted("batch_size", page) for page in pages), "\n\n".join(pages)


def charted(name: str, region: str) -> bool:
    """`name` titles a chart: the line under it has a y axis (`│`) a few cells right of it
    (a constant written as text, `batch_size 32`, is not charted)."""
    lines = region.splitlines()
    for i, line in enumerate(lines[:-1]):
        for m in re.finditer(re.escape(name), line):
            if "│" in lines[i + 1][m.start():m.start() + 12]:
                return True
    return False


def test_detail_titles_and_axis_labels_are_whole(journey: Journey):
    pages = smoke_detail_pages(journey)
    for page in pages:
        glued = [m.group() for name in TRAINER_METRICS
                 for m in re.finditer(r"\w" + re.escape(name), page)]
        assert not glued, (glued, page)
        clipped = [a for a in axis_labels(page) if re.search(r"e[-+]?\d?$", a)]
        assert not clipped, (clipped, page)


def test_detail_stdout_pane_is_at_least_half_the_width(journey: Journey):
    term = journey.small
    try:
        pane = open_detail(journey, term, "exp:smoke")
    finally:
        journey.clear(term)
    panels = boxes(pane)
    stdout = [w for w, content in panels if not any("optimizer" in line for line in content)]
    assert stdout and stdout[0] + 2 >= 40, pane


# -- a sweep with seeds -------------------------------------------------------------------

def test_sweep_with_seeds_labels_show_the_seed(journey: Journey):
    journey.queue_with_n(journey.small, "dropout")
    for size, term in journey.terminals.items():
        tb = term.wait(lambda t=term: (x := table(t.pane())) and sum(
            label.startswith("dropout") for label in x.labels()) == 4 and x, 30)
        labels = [label for label in tb.labels() if label.startswith("dropout")]
        assert len(set(labels)) == 4, labels
        assert sorted(label.split()[-1] for label in labels) == ["s0", "s0", "s1", "s1"], labels
        assert sum("d=0.3" in label for label in labels) == 2, labels
        journey.notes[f"sweep labels {size}"] = labels
    journey.notes["queued the sweep"] = True


def test_the_age_arrow_says_which_runs_come_first(journey: Journey):
    for term in journey.terminals.values():
        tb = table(term.pane())
        labels = tb.labels()
        smoke = labels.index("smoke")
        newer = [i for i, label in enumerate(labels) if label.startswith("dropout")]
        if "▼age" in tb.header:  # newest first
            assert all(i < smoke for i in newer), tb.header + "\n" + "\n".join(tb.lines)
        else:
            assert "▲age" in tb.header and all(i > smoke for i in newer), tb.header


def test_a_notification_leaves_the_spec_readable(journey: Journey):
    """The detail of smoke stays open while a run queued meanwhile finishes: its
    notification must leave the spec panel's params readable."""
    term = journey.small

    def spec_keys(pane: str) -> set[str]:  # `lr 0.01`: each param that matters, as shown
        lines = [line.rstrip(SCROLLBAR).split() for _, content in boxes(pane) for line in content]
        return {" ".join(words) for words in lines if words and words[0] in FIRST_PARAMS}

    try:
        before = spec_keys(open_detail(journey, term, "exp:smoke"))
        assert before, term.pane()
        journey.cli("run", "ping")  # from another terminal: a run that ends at once
        journey.wait_runs(lambda rows: rows and rows[0]["status"] == "finished", "exp:ping")
        try:  # what the screen shows while it tells of the run's end, if it does
            during = seen(term, lambda p: "finished." in p, 10)
        except AssertionError:
            during = term.pane()
        assert before <= spec_keys(during), during
    finally:
        journey.clear(term)


# -- fork with a new schedule ---------------------------------------------------------------

PARENT = "exp:dropout d=0.3 seed=0"


def sweep_finished(journey: Journey) -> list[dict]:
    journey.after("queued the sweep")
    return journey.wait_runs(lambda rows: len(rows) == 4 and all(
        r["status"] == "finished" for r in rows), "exp:dropout", timeout=180)


def open_fork_form(journey: Journey, term: Terminal) -> str:
    sweep_finished(journey)
    journey.show_only(term, PARENT, rows=1)
    term.keys("g", "f")
    return term.wait_text("from epoch", "schedule")


def choose_epoch_1_and_go_to_the_schedule(term: Terminal) -> None:
    term.keys("Enter")  # the list of epochs with a checkpoint
    term.wait_text("epoch 1", "epoch 2")
    term.keys("Home", "Enter")
    term.wait_text("ready to fork from epoch 1")
    term.keys(*["Tab"] * 8, "F7")  # past the fields to the schedule; select all of it


def test_the_fork_form_opens_ready_with_a_schedule_to_edit(journey: Journey):
    term = journey.small
    try:
        pane = open_fork_form(journey, term)
        pane = seen(term, lambda p: "fork" in p and "epoch" in p)
        assert "cannot" not in pane and "ready to fork" in pane, pane
        assert re.search(r"epochs\s*=", pane), pane  # the schedule field holds a template
    finally:
        journey.clear(term)


def test_the_fork_form_takes_the_schedule_as_its_value(journey: Journey):
    term = journey.small
    try:
        open_fork_form(journey, term)
        choose_epoch_1_and_go_to_the_schedule(term)
        term.type("[{ epochs = 2, lr = 0.05 }]")
        pane = seen(term, lambda p: "epochs = 2, lr = 0.05" in p)
        assert "TOML" not in pane, pane
        term.wait_text("ready to fork from epoch 1", "→", timeout=5)
    finally:
        journey.clear(term)


def test_fork_with_a_new_schedule_typed_in_the_form(journey: Journey):
    term = journey.small
    parent = sweep_finished(journey)
    parent = next(r for r in parent if r["params"]["dropout"] == 0.3 and r_seed(r) == 0)
    try:
        open_fork_form(journey, term)
        choose_epoch_1_and_go_to_the_schedule(term)
        term.type("schedule = [{ epochs = 2, lr = 0.05 }]")
        term.wait_text("ready to fork from epoch 1", "schedule:", "lr = 0.05 }]")
        term.keys("C-s")
        child = journey.wait_runs(lambda rows: any(r["parent"] == parent["id"] for r in rows),
                                  "exp:dropout")
        child = next(r for r in child if r["parent"] == parent["id"])
        assert child["fork_epoch"] == 1 and child["params"]["schedule"] == NEW_SCHEDULE
        journey.notes["parent"], journey.notes["fork"] = parent["id"], child["id"]
    finally:
        journey.clear(term)
    for t in journey.terminals.values():
        t.wait(lambda t=t: (tb := table(t.pane())) and any(
            label.startswith("└") for label in tb.labels()))


def r_seed(run: dict) -> int | None:
    return run.get("seed", run["params"].get("seed"))


@pytest.mark.parametrize("size", SIZES)
def test_the_fork_leaves_its_siblings_labels_as_they_were(journey: Journey, size: str):
    term = journey.terminals[size]
    before = journey.notes[f"sweep labels {size}"]
    tb = term.wait(lambda: (x := table(term.pane())) and any(
        label.startswith("└") for label in x.labels()) and x)
    after = [label for label in tb.labels() if label.startswith("dropout")]
    assert sorted(after) == sorted(before), (before, "\n".join(tb.lines))


def test_compare_the_parent_and_its_fork(journey: Journey):
    term = journey.small
    try:
        tb = journey.show_only(term, PARENT, rows=2)
        assert tb.labels()[1].startswith("└"), tb.lines
        journey.mark_all(term, 2)
        term.keys("C")
        pane = term.wait_text("comparing", "schedule")
        params = [line.split()[0] for line in pane.splitlines() if line.split()]
        assert "schedule" in params, pane
        assert not {"dropout", "optimizer", "schedule_start"} & set(params), pane
    finally:
        journey.clear(term)


# -- bulk cancel and resume -----------------------------------------------------------------

def test_queue_more_and_fork_from_the_command_line(journey: Journey):
    journey.queue_with_n(journey.small, "bs")
    journey.wait_runs(lambda rows: len(rows) == 3, "exp:bs")
    parent = next(r for r in journey.runs("exp:dropout")
                  if r["params"]["dropout"] == 0.0 and r_seed(r) == 1)
    fork = journey.cli("fork", parent["id"], "--epoch", "1", "--set", "dropout=0.1").split()[-1]
    journey.notes["queued fork"] = fork
    for term in journey.terminals.values():
        term.wait(lambda t=term: (tb := table(t.pane())) and sum(
            label.startswith("bs") for label in tb.labels()) == 3)


def test_a_queued_fork_shows_the_same_epochs_in_ls_and_the_dashboard(journey: Journey):
    fork = journey.notes["queued fork"]
    term = journey.wide
    try:
        tb = journey.show_only(term, f"id:{fork}", rows=1)
        shown = tb.cell(tb.lines[0], "epoch")
        head, *lines = journey.cli("ls").splitlines()
        line = next(x for x in lines if x.startswith(fork))
        status, epochs = (line[head.index(h):].split()[0] for h in ("STATUS", "PROGRESS"))
        if "queued" not in tb.lines[0] or status != "queued":
            pytest.skip("the fork started before it was looked at")
        assert epochs == shown, (line, tb.lines[0])
    finally:
        journey.clear(term)


def test_cancel_the_queued_fork_from_the_command_line(journey: Journey):
    """By the CLI, while it waits: a fork that never started (a bulk cancel could let it
    start first, as cancelling the running runs frees their slots)."""
    fork = journey.notes["queued fork"]
    assert [r["status"] for r in journey.runs(f"id:{fork}")] == ["queued"]
    journey.cli("cancel", fork)
    assert [r["status"] for r in journey.runs(f"id:{fork}")] == ["cancelled"]


def live_rows(journey: Journey, term: Terminal):
    return journey.show_only(term, "status:queued,starting,running")


def test_bulk_cancel_the_live_runs(journey: Journey):
    term = journey.small
    try:
        tb = live_rows(journey, term)
        live = [r["id"] for r in journey.runs() if r["status"] in ("queued", "starting", "running")]
        assert len(tb.lines) == len(live) >= 3, (tb.lines, live)
        journey.mark_all(term, len(tb.lines))
        term.keys("c")
        question = dialog_text(term.wait_text("Yes (y)"))
        named = (all(rid in question for rid in live)
                 or all(label.split("…")[0].strip() in question for label in tb.labels()))
        assert named, question
        term.keys("y")
        journey.wait_runs(lambda rows: all(r["status"] == "cancelled" for r in rows
                                           if r["id"] in live), timeout=60)
        journey.notes["cancelled"] = [*live, journey.notes["queued fork"]]
    finally:
        journey.clear(term)


def cancelled_rows(journey: Journey, term: Terminal):
    ids = journey.notes["cancelled"]
    tb = journey.show_only(term, "status:cancelled", rows=len(ids))
    journey.mark_all(term, len(ids))
    return tb


def test_the_resume_dialog_names_runs_as_the_table_does(journey: Journey):
    term = journey.small
    try:
        tb = cancelled_rows(journey, term)
        term.keys("r")
        question = dialog_text(term.wait_text("Yes (y)"))
        assert not re.search(r"\d{8}-\d{6}-", question), question
        for label in tb.labels():
            assert label.lstrip("└ ").split("…")[0].strip() in question, (label, question)
        term.keys("n")
    finally:
        journey.clear(term)


def test_the_resume_dialog_says_a_fork_resumes_from_its_fork_epoch(journey: Journey):
    term = journey.small
    fork = journey.notes["queued fork"]
    try:
        tb = cancelled_rows(journey, term)
        label = next(x for x in tb.labels() if x.lstrip("└ ").startswith("dropout"))
        label = label.lstrip("└ ").split("…")[0].strip()
        term.keys("r")
        question = dialog_text(term.wait_text("Yes (y)"))
        term.keys("n")
        part = next(p for p in re.split(r"[;.] ", question) if fork in p or label in p)
        assert "beginning" not in part and re.search(r"epoch 1\b", part), question
    finally:
        journey.clear(term)


def test_bulk_resume(journey: Journey):
    term = journey.small
    ids = journey.notes["cancelled"]
    try:
        cancelled_rows(journey, term)
        term.keys("r")
        term.wait_text(f"Queue {len(ids)} runs again", "Yes (y)")
        term.keys("y")
        journey.wait_runs(lambda rows: not any(r["status"] == "cancelled" for r in rows
                                               if r["id"] in ids), timeout=60)
    finally:
        journey.clear(term)
        live = {r["id"] for r in journey.runs("status:queued,starting,running")}
        for rid in live & set(ids):  # they have shown what they had to: give the CPU back
            journey.cli("cancel", rid)


# -- tag and export ---------------------------------------------------------------------------

def test_tag_a_run(journey: Journey):
    term = journey.small
    smoke = journey.runs("exp:smoke")[0]["id"]
    try:
        journey.show_only(term, "exp:smoke", rows=1)
        term.keys("g", "T")
        term.wait_text("Tags of")
        term.type("+best")
        term.keys("Enter")
        term.wait(lambda: not dialog_open(term.pane()))
        assert [r["id"] for r in journey.wait_runs(lambda rows: len(rows) == 1, "tag:best")] == [smoke]
    finally:
        journey.clear(term)


@pytest.mark.parametrize("size", SIZES)
def test_the_tag_shows_in_the_table(journey: Journey, size: str):
    term = journey.terminals[size]
    pane = seen(term, lambda p: (tb := table(p)) is not None and "smoke" in tb.labels(), 10)
    assert "best" in table(pane).row(lambda label: label == "smoke"), pane


def test_enter_in_the_export_dialog_writes(journey: Journey):
    term = journey.small
    try:
        journey.show_only(term, "exp:dropout")
        term.keys("e")
        term.wait_text("Export")
        term.keys("Enter")
        pane = seen(term, lambda p: "Wrote" in p or "LaTeX" in p, 10)  # written, or the list
        assert "Wrote" in pane, pane
    finally:
        journey.clear(term)
        (journey.root / "runs.csv").unlink(missing_ok=True)


def test_export_what_the_filter_shows(journey: Journey):
    term = journey.small
    (journey.root / "runs.csv").unlink(missing_ok=True)
    want = sorted(r["id"] for r in journey.runs("exp:dropout"))
    try:
        journey.show_only(term, "exp:dropout", rows=len(want))
        term.keys("e")
        term.wait_text(f"Export the {len(want)} runs matching 'exp:dropout'")
        term.keys("C-s")
        term.wait_text("Wrote")
    finally:
        journey.clear(term)
    with open(journey.root / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # runs that differ only in seed are one row, `ID +1` (docs/RESULTS.md)
    firsts = [row["run"].split()[0] for row in rows]
    more = sum(int(row["run"].split("+")[1]) for row in rows if "+" in row["run"])
    assert set(firsts) <= set(want) and len(firsts) + more == len(want), rows


# -- a study started from `n`, and the overrides of `n` ------------------------------------------

def test_a_study_started_from_n_reads_one_trial_a_line(journey: Journey):
    term = journey.small
    journey.queue_with_n(term, "tune")
    journey.wait_runs(lambda rows: len(rows) == 2 and all(
        r["status"] == "finished" for r in rows), "exp:tune", timeout=90)
    try:
        journey.show_only(term, "exp:tune", rows=2)
        term.keys("g", "S")
        pane = term.wait_text("study tune", "best so far")
        wrapped = [line for line in pane.splitlines() if re.match(r"(lr|dropout)=", line)]
        assert not wrapped, pane
    finally:
        journey.clear(term)


def script_overrides(journey: Journey, term: Terminal, text: str) -> None:
    journey.open_new(term)
    term.keys(*["Down"] * 4, "Tab")
    term.type(text)
    seen(term, lambda p: text in p, 5)  # typed into the overrides


def test_overrides_set_the_seeds(journey: Journey):
    term = journey.small
    try:
        script_overrides(journey, term, "seeds = [7, 8]")
        term.keys("C-s")
        pane = seen(term, lambda p: "unknown key" in p or not dialog_open(p), 10)
        assert "unknown key" not in pane, pane
        runs = journey.wait_runs(lambda rows: len(rows) == 2, "exp:script", timeout=10)
        assert sorted(r_seed(r) for r in runs) == [7, 8]
    finally:
        journey.clear(term)


def test_an_error_goes_when_its_line_is_deleted(journey: Journey):
    term = journey.small
    before = len(journey.runs("exp:script"))
    try:
        script_overrides(journey, term, "epochs = [")
        term.keys("C-s")
        term.wait_text("not a TOML value")
        term.keys("F7", "BSpace")
        term.wait(lambda: "not a TOML value" not in term.pane(), 5)
    finally:
        journey.clear(term)
    assert len(journey.runs("exp:script")) == before  # nothing queued


def test_quit_leaves_the_runs_going(journey: Journey):
    for term in journey.terminals.values():
        journey.clear(term)
        term.keys("q")
        term.wait(lambda t=term: "supervisor" not in t.pane(), 15)
    assert journey.runs("exp:smoke")[0]["status"] == "finished"
