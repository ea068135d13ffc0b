"""Stdout scalars: metrics from a script that never imports tuiexp.

    python -m tuiexp.track.scalars [--pattern REGEX] -- COMMAND ARGS...

runs COMMAND as a child in the same process group, copies its output (stdout
and stderr, merged) unchanged to our stdout, and turns complete lines that hold
`key: value` or `key=value` pairs into `step` / `epoch` events appended, in
batches, to `$TUIEXP_RUN_DIR/events.jsonl`. It writes metrics only, never a
start or status event: the child's exit code, passed on as ours, gives the status.

The rule for a line (`epoch=3 loss=0.41 acc=0.87`, `epoch: 1 val_acc: 0.5`):
- a pair is a key (a metric name: letters, digits, `_ . / -`, starting with a
  letter or `_`, at the start of the line or after a space), `:` or `=`, and a
  value up to the next space; a value that is not a number is skipped, and a
  line without a numeric metric is not a scalar line;
- with `step` (an integer ≥ 0) → one step event at that step (with `epoch`
  too, if the line has it); else with `epoch` → one epoch event at that epoch;
  else each key counts its own values: its n-th value is logged at step n - 1.
With --pattern, every match of REGEX (named groups `key` and `value`) is a pair.

Signals: SIGTERM and SIGINT never kill the wrapper before its child. One sent to
the whole process group (the supervisor's cancel, a terminal's Ctrl-C) has reached
the child already and is not repeated (tuiexp.track reads a second SIGTERM as
"stop now"); one sent to the wrapper alone (`kill PID`) is passed on. A child
killed by a signal makes the wrapper die of the same signal.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..store import events

PAIR = re.compile(r"(?:^|(?<=\s))([A-Za-z_][A-Za-z0-9_./-]{0,127})\s*[:=]\s*(\S+)(?=\s|$)")
NAME = re.compile(r"[A-Za-z0-9_./-]{1,128}")
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf|infinity)",
                    re.IGNORECASE)
INTEGER = re.compile(r"\+?\d+")
RESERVED = frozenset({"v", "t", "kind"})
FLUSH_EVERY = 0.25  # seconds between batches written to events.jsonl
MAX_LINE = 1 << 20  # a longer line without a newline is passed through, not parsed
BACKLOG = 8 << 20  # output bytes waiting to be parsed; beyond, output is passed through only
LINE_END = re.compile(rb"\r\n|\r|\n")
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def number(text: str) -> float | None:
    """A metric value: the text is exactly a number (nan and inf included), else None."""
    if not NUMBER.fullmatch(text):
        return None
    try:
        return float(text)
    except (ValueError, OverflowError):
        return None


def pairs(line: str, pattern: re.Pattern[str] | None = None) -> list[tuple[str, str]]:
    """The (key, value text) pairs of a line, by the default rule or by `pattern`."""
    if pattern is None:
        return [(m.group(1), m.group(2)) for m in PAIR.finditer(line)]
    found = ((m.group("key"), m.group("value")) for m in pattern.finditer(line))
    return [(k, v.strip()) for k, v in found if k is not None and v is not None]


def index_value(text: str | None) -> int | None:
    """A step or epoch: an integer 0 ≤ n < 2**63; None when absent or not one."""
    if text is None or not INTEGER.fullmatch(text):
        return None
    n = int(text)
    return n if n < 2**63 else None


class Parser:
    """Turns lines into events; keeps each key's running counter for lines with
    neither `step` nor `epoch`."""

    def __init__(self, pattern: re.Pattern[str] | None = None):
        self.pattern = pattern
        self.counters: dict[str, int] = {}

    def events(self, line: str) -> list[tuple[str, dict[str, Any]]]:
        found = dict(pairs(line, self.pattern))
        step_text, epoch_text = found.pop("step", None), found.pop("epoch", None)
        step, epoch = index_value(step_text), index_value(epoch_text)
        if (step_text is not None and step is None) or (epoch_text is not None and epoch is None):
            return []  # `step: next` is prose, not a scalar line
        metrics = {}
        for key, text in found.items():
            value = number(text)
            if value is not None and key not in RESERVED and NAME.fullmatch(key):
                metrics[key] = value
        if not metrics:
            return []
        if step is not None:
            at = {"step": step} if epoch is None else {"step": step, "epoch": epoch}
            return [("step", {**at, **metrics})]
        if epoch is not None:
            return [("epoch", {"epoch": epoch, **metrics})]
        out = []
        for key, value in metrics.items():
            n = self.counters.get(key, 0)
            self.counters[key] = n + 1
            out.append(("step", {"step": n, key: value}))
        return out


class Batcher:
    """Events waiting to be appended; the reader adds, the main thread writes, so a
    slow disk never holds up the child's output."""

    def __init__(self, path: Path | None):
        self.path = path
        self.pending: list[bytes] = []
        self.lock = threading.Lock()

    def add(self, evs: list[tuple[str, dict[str, Any]]], t: float) -> None:
        if self.path is None or not evs:
            return
        lines = [events.encode(kind, t, fields) for kind, fields in evs]
        with self.lock:
            self.pending += lines

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
        if not batch or self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as e:
            print(f"tuiexp.track.scalars: cannot write {self.path}: {e.strerror}.", file=sys.stderr)
            return
        try:
            events.ensure_line_start(fd, self.path)
            _write_all(fd, b"".join(batch))
        except OSError as e:  # a full disk: the run goes on, its output is in stdout.log
            print(f"tuiexp.track.scalars: cannot write {self.path}: {e.strerror}.", file=sys.stderr)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Backlog:
    """Output waiting to be parsed, bounded: past `limit` bytes a chunk is passed
    through but not parsed (a gap), so parsing never slows the child down."""

    def __init__(self, limit: int = BACKLOG):
        self.chunks: deque[bytes] = deque()
        self.size, self.limit = 0, limit
        self.closed = self.in_gap = False
        self.cond = threading.Condition()

    def put(self, data: bytes) -> None:
        with self.cond:
            if self.size + len(data) > self.limit:
                if not self.in_gap:  # b"": a marker, so no line is glued across the gap
                    self.in_gap = True
                    self.chunks.append(b"")
            else:
                self.in_gap = False
                self.size += len(data)
                self.chunks.append(data)
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()

    def get(self) -> bytes | None:
        """The next chunk (b"" for a gap); None once closed and drained."""
        with self.cond:
            while not self.chunks and not self.closed:
                self.cond.wait()
            if not self.chunks:
                return None
            data = self.chunks.popleft()
            self.size -= len(data)
            return data


def copy(source: int, backlog: Backlog) -> None:
    """Copy the child's output to our stdout as it comes, and hand it to the parser."""
    out_ok = True
    while True:
        try:
            data = os.read(source, 1 << 16)
        except OSError:
            data = b""
        if not data:
            backlog.close()
            return
        if out_ok:
            try:
                _write_all(1, data)
            except OSError:  # our stdout is gone: keep draining, or the child blocks
                out_ok = False
        backlog.put(data)


def parse_all(backlog: Backlog, parser: Parser, batcher: Batcher) -> None:
    """Parse complete lines (a newline or a carriage return ends one: progress bars
    rewrite theirs with \\r); the last line counts once the output has ended."""
    carry = b""
    warned = False
    while (data := backlog.get()) is not None:
        if not data:
            carry = b""
            if not warned:
                warned = True
                batcher.add([("warning", {"message": "stdout scalars fell behind the output: some "
                                          "lines were not read for metrics (stdout.log has them all)"})],
                            time.time())
            continue
        *lines, carry = LINE_END.split(carry + data)
        for line in lines:
            _parse(line, parser, batcher)
        if len(carry) > MAX_LINE:
            carry = b""
    if carry:
        _parse(carry, parser, batcher)


def _parse(line: bytes, parser: Parser, batcher: Batcher) -> None:
    if b":" in line or b"=" in line or parser.pattern is not None:
        batcher.add(parser.events(line.decode("utf-8", "replace")), time.time())


def supervisor_pids() -> set[int]:
    """Who signals our whole process group (so the child has the signal already):
    the kernel (0: a terminal's Ctrl-C), our parent, the logs dir's supervisor."""
    pids = {0, os.getppid()}
    run_dir = os.environ.get("TUIEXP_RUN_DIR")
    if run_dir:
        try:
            pids.add(int(json.loads((Path(run_dir).parent.parent / "daemon.json").read_text())["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return pids


def wait_child(child: subprocess.Popen[bytes], batcher: Batcher) -> int:
    """Wait for the child, writing batches and passing on signals meant for it alone."""
    while child.poll() is None:
        if not hasattr(signal, "sigtimedwait"):  # macOS: no sender to tell; the group has it
            time.sleep(FLUSH_EVERY)
            batcher.flush()
            continue
        info = signal.sigtimedwait(SIGNALS, FLUSH_EVERY)
        if info is not None and info.si_pid not in supervisor_pids():
            try:
                child.send_signal(info.si_signo)
            except ProcessLookupError:
                pass
        batcher.flush()
    return child.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tuiexp.track.scalars",
                                 description="Run COMMAND; its `key: value` output lines become metrics.")
    ap.add_argument("--pattern", help="a regex with named groups `key` and `value`")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give a command after --")
    pattern = re.compile(args.pattern) if args.pattern else None
    run_dir = os.environ.get("TUIEXP_RUN_DIR")
    batcher = Batcher(Path(run_dir) / "events.jsonl" if run_dir else None)
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        print(f"tuiexp.track.scalars: command `{command[0]}` could not start: {e.strerror or e}.",
              file=sys.stderr)
        return 127
    # from here a SIGTERM is ours to pass on (or not), never our death before the child's
    if hasattr(signal, "sigtimedwait"):
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    else:
        for sig in SIGNALS:
            signal.signal(sig, lambda *_: None)
    assert child.stdout is not None
    backlog = Backlog()
    reader = threading.Thread(target=copy, args=(child.stdout.fileno(), backlog), daemon=True)
    parsing = threading.Thread(target=parse_all, args=(backlog, Parser(pattern), batcher), daemon=True)
    reader.start()
    parsing.start()
    rc = wait_child(child, batcher)
    reader.join(timeout=2.0)  # a grandchild may hold the pipe open: do not wait for it
    backlog.close()
    parsing.join(timeout=30.0)  # the bounded backlog parses in seconds
    batcher.flush()
    if rc < 0:  # die of the same signal, so the supervisor tells a kill from an error
        if -rc not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be handled
            signal.signal(-rc, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [-rc])
        os.kill(os.getpid(), -rc)
        return 128 - rc  # a signal whose default is to be ignored: the shell's convention
    return rc


if __name__ == "__main__":
    sys.exit(main())
