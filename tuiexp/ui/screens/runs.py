"""The main screen: the resource strip, the runs table, a filter line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Footer, Input

from ...errors import TuiexpError
from ...queue.client import Client
from ...results import export
from ...search.launch import launch
from ...store import query
from ...store.index import Index, RunRow
from ...store.runstore import checkpoint_epochs
from .. import keys
from ..actions import Plan, archive_plan, cancel_plan, resume_plan
from ..data import SORTS, Delta, Resources
from ..messages import ClientFailed, ClientSucceeded
from ..widgets.resources import ResourceStrip
from ..widgets.runs_table import RunsTable
from .base import DashboardScreen
from .dialogs import FORMAT_NAMES, ConfirmScreen, ExportScreen

if TYPE_CHECKING:
    from .fork import Request as ForkRequest
    from .new import Request as NewRequest



class FilterInput(Input):
    """The filter line. Enter hands the keys back to the table before the next key is
    dispatched: a priority binding runs as the app reads the key, while the Input's own
    would run later, from its queue, after the keys behind it were routed to it. So a
    burst such as `/lr`, enter, `j` moves the cursor instead of typing a `j`."""

    BINDINGS = [Binding("enter", "submit", "Keep the filter", show=False, priority=True)]

    async def action_submit(self) -> None:
        self.screen.set_focus(self.screen.query_one(RunsTable))
        await super().action_submit()


class RunsScreen(DashboardScreen):
    BINDINGS = [*keys.RUNS]  # typed as Textual's list[BindingType]

    def __init__(self) -> None:
        super().__init__()
        self._hidden_dirty: set[str] = set()  # runs changed while a screen hid this one
        self._resources: Resources | None = None

    def compose(self) -> ComposeResult:
        yield ResourceStrip("reading the index…", id="resources")
        yield RunsTable(extra=self.dashboard.ui.columns, id="runs")
        yield FilterInput(placeholder="words, tag:T, status:S, exp:E, lr=0.1, -TERM; enter keeps, "
                          "esc clears", id="filter", classes="hidden")
        yield Footer()

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    def apply_poll(self, delta: Delta) -> None:
        """Fold a delta in; draw it only while visible (else on the way back)."""
        if not self.query(RunsTable):  # the app is closing: the children are gone
            return
        if delta.resources is not None:
            self._resources = delta.resources
        if not self.visible_now:
            self.table.fold(delta.changed, delta.removed)
            self._hidden_dirty.update(st.id for st in delta.changed)
            return
        self.table.apply(delta.changed, delta.removed, delta.polled_at)
        if delta.resources is not None:
            self.query_one(ResourceStrip).show(delta.resources)

    @property
    def visible_now(self) -> bool:
        """True unless a full screen (not a dialog over this one) hides it."""
        stack = self.app.screen_stack
        if self not in stack:
            return False
        return all(isinstance(s, ModalScreen) for s in stack[stack.index(self) + 1:])

    def on_screen_resume(self) -> None:
        if self._hidden_dirty:
            dirty, self._hidden_dirty = self._hidden_dirty, set()
            self.table.show(self.dashboard.clock(), dirty)
        if self._resources is not None:
            self.query_one(ResourceStrip).show(self._resources)

    def selected(self) -> str | None:
        rid = self.table.current_id
        if rid is None:
            self.notify("No run selected.", severity="warning")
        return rid

    # -- queue commands (blocking: a worker thread each) -------------------------
    @work(thread=True, exit_on_error=False, group="client")
    def call_client(self, what: Callable[[Client], str]) -> None:
        try:
            with Client(self.dashboard.logs) as client:
                text = what(client)
        except TuiexpError as e:
            self.app.post_message(ClientFailed(str(e)))
        except Exception as e:  # the app never dies with a traceback
            self.app.post_message(ClientFailed(f"{type(e).__name__}: {e}"))
        else:
            self.app.post_message(ClientSucceeded(text))

    @work(thread=True, exit_on_error=False, group="client")
    def export_table(self, fmt: str, path: Path, ids: list[str] | None = None) -> None:
        """Write the runs `ids` (all when None) as a table in `fmt`."""
        if path.exists():
            self.app.post_message(ClientFailed(
                f"{path} exists; give another file name (an export replaces nothing)."))
            return
        try:
            with Index(self.dashboard.logs) as index:
                records = query.load_runs(index)
            if ids is not None:
                keep = set(ids)
                records = [r for r in records if r.id in keep]
            where = export.write(path, export.render(records, fmt)).resolve()
        except Exception as e:  # noqa: BLE001 - whatever it is, say it; the app stays up
            self.app.post_message(ClientFailed(f"Export failed: {e}"))
        else:
            self.app.post_message(ClientSucceeded(
                f"Wrote {len(records)} runs as {FORMAT_NAMES[fmt]} to {where}."))

    def targets(self) -> list[RunRow]:
        """The rows an action applies to: the marked runs (in table order), else the one
        under the cursor."""
        table = self.table
        ids = [rid for rid, _ in table.order if rid in table.marked]
        if not ids and (rid := self.selected()):
            ids = [rid]
        return [table.states[rid].row for rid in ids if rid in table.states]

    def run_plan(self, plan: Plan, verb: str, act: Callable[[Client, str], object],
                 nothing: str) -> None:
        """Ask the plan's question (if any), then act on each of its runs in one worker."""
        if not plan.ids:
            self.notify(nothing, severity="warning")
            return
        command = each(plan.ids, verb, act, self.table.names)
        if plan.question is None:
            self.call_client(command)
        else:
            self.confirm_then(plan.question, command)

    def action_cancel(self) -> None:
        if rows := self.targets():
            self.run_plan(cancel_plan(rows, self.table.names), "Cancelled", lambda c, rid: c.cancel(rid),
                          "None of these runs is queued or running.")

    def action_resume(self) -> None:
        if rows := self.targets():
            self.run_plan(resume_plan(rows, self.table.names), "Resumed", lambda c, rid: c.resume(rid),
                          "None of these runs can resume (only failed, crashed, cancelled, "
                          "oom, diverged or preempted ones).")

    def action_move(self, direction: int) -> None:
        if rid := self.selected():
            self.call_client(lambda c: "" if c.move(rid, direction)
                             else f"{rid} is not queued or is already at the end of the queue.")

    def action_archive(self) -> None:
        if rows := self.targets():
            self.run_plan(archive_plan(rows, self.table.names), "Archived", lambda c, rid: c.archive(rid),
                          "These runs still run or wait; cancel them before archiving them.")

    def action_tags(self) -> None:
        """`T`: add and remove tags of the marked runs (else the one under the cursor)."""
        from .notes import TagEdit, TagScreen

        rows = self.targets()
        if not rows:
            return
        ids = [r.id for r in rows]

        def done(edit: TagEdit | None) -> None:
            if edit:
                add, remove = edit
                self.call_client(each(ids, "Tagged", lambda c, rid: c.annotate(
                    rid, add=add, remove=remove), self.table.names))

        self.app.push_screen(TagScreen(rows, self.table.names), done)

    def action_note(self) -> None:
        """`N`: write the note of the marked runs (else the one under the cursor)."""
        from .notes import NoteScreen

        rows = self.targets()
        if not rows:
            return
        ids = [r.id for r in rows]

        def done(text: str | None) -> None:
            if text is not None:
                verb = "Saved the note of" if text else "Cleared the note of"
                self.call_client(each(ids, verb, lambda c, rid: c.annotate(rid, note=text),
                                      self.table.names))

        self.app.push_screen(NoteScreen(rows, self.table.names), done)

    def action_unmark(self) -> None:
        if self.table.marked:
            self.table.marked.clear()
            self.table.show(self.dashboard.clock(), None)

    def confirm_then(self, question: str, command: Callable[[Client], str]) -> None:
        """Ask first; run the client command only on a yes."""
        def answered(yes: bool | None) -> None:
            if yes:
                self.call_client(command)

        self.app.push_screen(ConfirmScreen(question), answered)

    # -- other screens -------------------------------------------------------------
    def action_detail(self) -> None:
        from .detail import DetailScreen

        if rid := self.selected():
            self.app.push_screen(DetailScreen(rid, self.table.names))

    def on_runs_table_selected(self, event: RunsTable.Selected) -> None:
        self.table.select_run(event.run_id)
        self.action_detail()

    def action_study(self) -> None:
        from .study import StudyScreen

        rid = self.selected()
        if rid is None or rid not in self.table.states:
            return
        name = self.table.states[rid].row.spec.get("study")
        if not name:
            self.notify(f"Run {rid} is not a trial of a study.", severity="warning")
            return
        self.app.push_screen(StudyScreen(name))

    def action_fork(self) -> None:
        if rid := self.selected():
            self.open_fork(rid)

    def open_fork(self, rid: str) -> None:
        from .fork import ForkScreen

        if rid in self.table.states:
            st = self.table.states[rid]
            epochs = checkpoint_epochs(self.dashboard.logs.run(rid))
            if not epochs:
                self.notify(f"Run {rid} has no checkpoint to fork from.", severity="error")
                return

            def done(req: ForkRequest | None) -> None:
                if req:
                    epoch, overrides = req
                    name = self.table.names.get(rid, rid)
                    self.call_client(lambda c: f"Forked {name} at epoch {epoch}: its fork "
                                     f"{c.fork(rid, overrides, epoch)} is queued.")

            self.app.push_screen(ForkScreen(st.row, epochs, self.table.names.get(rid, rid)), done)

    def action_new(self) -> None:
        from .new import NewScreen

        def done(req: NewRequest | None) -> None:
            if req:
                cfg, name, overrides = req
                self.call_client(lambda c: launch(c, cfg, name, overrides).text)

        self.app.push_screen(NewScreen(self.dashboard.config_path), done)

    def action_lr_find(self) -> None:
        """The LR range test of the experiment of the run under the cursor (else pick one)."""
        from .lrfind import ExperimentPicker, LrFindScreen

        def start(name: str | None) -> None:
            if name:
                self.app.push_screen(LrFindScreen(name, self.call_client))

        rid = self.table.current_id
        if rid is not None and rid in self.table.states:
            start(self.table.states[rid].row.experiment)
        else:
            self.app.push_screen(ExperimentPicker(self.app.config_path), start)  # type: ignore[attr-defined]

    def action_mark(self) -> None:
        if rid := self.table.current_id:
            self.table.marked ^= {rid}
            self.table.show(self.dashboard.clock())
            self.table.move_cursor(row=self.table.cursor_row + 1)

    def action_compare(self) -> None:
        from .compare import CompareScreen

        ids = [rid for rid, _ in self.table.order if rid in self.table.marked]
        if len(ids) < 2 and (cur := self.table.current_id) and cur not in ids:
            ids.append(cur)
        if len(ids) < 2:
            self.notify("Mark two or more runs with space to compare them.", severity="warning")
            return
        self.app.push_screen(CompareScreen(ids, self.table.names))

    def action_export(self) -> None:
        """Export what the table shows: the marked runs, else the filtered rows, else all."""
        table = self.table
        shown = [rid for rid, _ in table.order]
        marked = [rid for rid in shown if rid in table.marked]
        if marked:
            ids, what = marked, f"the {len(marked)} marked runs"
        elif table.filter_text.strip():
            ids, what = shown, f"the {len(shown)} runs matching {table.filter_text.strip()!r}"
        else:
            ids, what = None, f"all {len(table.states)} runs"

        def done(req: tuple[str, Path] | None) -> None:
            if req:
                self.export_table(*req, ids)

        self.app.push_screen(ExportScreen(what), done)

    # -- view options --------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        # now, not after a refresh (Widget.focus defers): keys typed right after `/`
        # belong to the filter, not to the table's bindings
        self.set_focus(box)

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.table.filter_text = event.value
        self.table.show(self.dashboard.clock())

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.add_class("hidden")
        self.set_focus(self.table)

    def action_sort(self) -> None:
        keys = list(SORTS)
        self.table.sort_by = keys[(keys.index(self.table.sort_by) + 1) % len(keys)]
        self.table.show(self.dashboard.clock())
        self.notify(f"Sorted by {self.table.sort_by}.", timeout=2)

    def action_tree(self) -> None:
        self.table.as_tree = not self.table.as_tree
        self.table.show(self.dashboard.clock())
        self.notify("Forks under their parent." if self.table.as_tree else "Flat list.", timeout=2)


def each(ids: list[str], verb: str, act: Callable[[Client, str], object],
         names: Mapping[str, str]) -> Callable[[Client], str]:
    """A client command doing `act` on every run: what was done (the runs named as the
    table names them), and each refusal."""
    def run(client: Client) -> str:
        done, refused = [], []
        for rid in ids:
            try:
                act(client, rid)
                done.append(rid)
            except TuiexpError as e:
                refused.append(str(e))
        if not done:
            raise TuiexpError(" ".join(refused))
        text = (f"{verb} {names.get(done[0], done[0])}." if len(done) == 1
                else f"{verb} {len(done)} runs.")
        return text + (" Not done: " + " ".join(refused) if refused else "")
    return run
