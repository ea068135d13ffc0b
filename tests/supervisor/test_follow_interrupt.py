"""Ctrl-C while `tuiexp run X --wait` follows a run (issue 18.12): the CLI stops
following and says that the run goes on and how to follow it again; today it exits 130
in silence, and a user believes the run was stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.conftest import tuiexp, wait_for, write_config


def status(where, run_id: str) -> str:
    rows = json.loads(tuiexp(where, "ls", "--json", check=True).stdout)
    return next(r["status"] for r in rows if r["id"] == run_id)


def test_ctrl_c_in_run_wait_says_the_run_goes_on(workdir):
    # one epoch, then the run waits (hang): it cannot end while we follow it
    write_config(workdir, '[experiments.slow]\ncommand = "python FAKE_RUN"\nepochs = 3\nhang = true\n')
    cli = subprocess.Popen([sys.executable, "-m", "tuiexp.cli", "run", "slow", "--wait"],
                           cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True,  # its own group, as a terminal's job is
                           # and SIGINT at its default, as in a terminal: a suite started in
                           # the background of a script ignores it, and so would the CLI
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        run_id = cli.stdout.readline().strip()
        first = cli.stdout.readline()
        assert first.startswith(f"{run_id}  epoch 1/3"), first  # following, mid-run
        os.killpg(cli.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground job
        _, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    try:
        assert cli.returncode == 130
        assert "Traceback" not in err
        said = err.strip()
        assert run_id in said and "tuiexp wait" in said, said  # how to follow it again
        assert "go on" in said or "goes on" in said or "still running" in said, said
        assert status(workdir, run_id) == "running"  # and it did go on
    finally:
        tuiexp(workdir, "cancel", run_id)
        wait_for(lambda: status(workdir, run_id) == "cancelled", timeout=60)
