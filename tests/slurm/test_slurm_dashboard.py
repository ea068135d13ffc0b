"""The dashboard on the real one-node Slurm (issue 18.12): a running job shows its job id
and node, a held one its pending reason (columns that hide at 80×24), and a one-line
strip of the partitions from `sinfo` replaces the GPU strip; `ls --json` has them too."""

from __future__ import annotations

import json

from tests.journeys.screen import table
from tests.slurm.conftest import config, job_id, ok, wait_for
from tests.slurm.test_slurm import FAKE, queue
from tests.ui.tmux import Terminal, needs_tmux

pytestmark = needs_tmux


def test_slurm_jobs_show_their_id_node_and_reason(project):
    config(project, FAKE)
    (running,) = queue(project, "hang")  # runs until cancelled
    (held,) = queue(project, "held")
    run_job, held_job = job_id(project, running), job_id(project, held)

    def listed() -> dict[str, dict] | None:
        rows = {r["id"]: r for r in json.loads(ok(project, "ls", "--json"))}
        ready = rows[running]["status"] == "running" and rows[held]["reason"]
        return rows if ready else None

    rows = wait_for(listed, timeout=60, every=0.3)
    assert rows[running]["job_id"] == run_job and rows[running]["node"]
    assert rows[held]["job_id"] == held_job and rows[held]["status"] == "starting"
    node = rows[running]["node"]

    wide, small = Terminal(project, 160, 20), Terminal(project, 80, 24)
    try:
        def shown(term: Terminal):
            tb = table(term.pane())
            return tb if tb and len(tb.lines) == 2 and "running" in term.pane() else None

        tb = wide.wait(lambda: shown(wide))
        assert {"job", "node", "pending"} <= set(tb.columns), tb.header
        by_job = {tb.cell(line, "job").strip(): line for line in tb.lines}
        assert set(by_job) == {run_job, held_job}, tb.lines
        assert tb.cell(by_job[run_job], "node").strip() == node
        assert tb.cell(by_job[held_job], "pending").strip() == rows[held]["reason"]
        strip = wide.wait(lambda: (line := wide.pane().splitlines()[0]).startswith(" slurm") and line)
        assert strip.startswith(" slurm debug* up 1 node") and "GPU" not in strip, strip

        tb = small.wait(lambda: shown(small))
        assert not {"job", "node", "pending"} & set(tb.columns), tb.header  # they hide first
        small.wait(lambda: small.pane().startswith(" slurm debug*"))
    finally:
        wide.close()
        small.close()
