"""Stdout scalars: metrics from a script that never imports tuiexp.

    python -m tuiexp.track.scalars [--pattern REGEX] -- COMMAND ARGS...

runs COMMAND as a child in the same process group, copies its output (stdout
and stderr, merged) unchanged to our stdout, and turns complete lines that hold
metrics into `step` / `epoch` events appended, in batches, to
`$TUIEXP_RUN_DIR/events.jsonl`. It writes metrics (and warnings) only, never a
start or status event: the child's exit code, passed on as ours, gives the status.

The rule for a line (docs/SCRIPTS.md says it for users):
- a pair is a name (letters, digits, `_ . / -`, starting with a letter or `_`, at
  the start of the line or after a space or `,;|`), `:` or `=`, and a value up to
  the next space or `,;|`; a value that is not a number is no metric;
- an *indexed* line begins with `epoch N`, `step N` or `iter N` (any case, `:` or
  `=` optional, `N/M` allowed: Keras's `Epoch 3/10`): on it `name value` (a name,
  a space, a number) is a pair too, and other words are ignored;
- any other line is read only if it is made of pairs: one word of prose beside
  them (`training with lr=0.01`) makes it prose, and nothing on it is a metric;
- with `step` (an integer ≥ 0) → one step event at that step (with `epoch` too,
  if the line has it); else with `epoch` → one epoch event; else each name counts
  its own values (its n-th value at step n - 1), and a name that is one of the
  run's params is its config echoed (`lr: 0.01`), not a metric;
- a name given two values on one line is ambiguous, and left out.
With --pattern, every match of REGEX (named groups `key` and `value`) is a pair,
and no line is prose.

Lines are found in linear time (only new output is scanned for line ends); a line
longer than MAX_LINE is dropped, with one warning on the run. A run whose output
gave no metric (and that logged none through tuiexp.track) ends with a warning.

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
from ..store.paths import RunPaths

NAME = re.compile(r"[A-Za-z0-9_./-]{1,128}")
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf|infinity)",
                    re.IGNORECASE)
_KEY = r"(?:^|(?<=[\s,;|]))([A-Za-z_][A-Za-z0-9_./-]{0,127})"  # a name, after a space or `,;|`
_END = r"(?=[\s,;|]|$)"
#: `name: value`, `name=value`
PAIR = re.compile(rf"{_KEY}\s*[:=]\s*([^\s,;|]+){_END}")
#: the same, or `name value` with a number for value: the pairs of an indexed line
SPACED_PAIR = re.compile(rf"{_KEY}(?:\s*[:=]\s*([^\s,;|]+)|\s+({NUMBER.pattern})){_END}", re.IGNORECASE)
#: an indexed line's start: `epoch 3`, `Epoch 3/10`, `step: 7`, `iter 100`
INDEXED = re.compile(r"\W*(epoch|step|iter|iteration)\s*[:=]?\s*(\d+)(?:/\d+)?(?=[\s,;:|\])]|$)",
                     re.IGNORECASE)
INDEXED_BYTES = re.compile(INDEXED.pattern.encode(), re.IGNORECASE)
#: what a line's `step` or `epoch` may be called
INDEX_NAMES = {"epoch": "epoch", "step": "step", "iter": "step", "iteration": "step"}
#: a word of prose: letters only (inner ' or - allowed), two or more, once punctuation
#: around it is stripped; `3s`, `2ms/step`, `1875/1875`, `[===]` and `-` are not prose
PROSE = re.compile(r"[A-Za-z]{2,}(?:['’-][A-Za-z]+)*")
PUNCTUATION = "\"'`.,;:!?()[]{}<>"
INTEGER = re.compile(r"\+?\d+")
RESERVED = frozenset({"v", "t", "kind"})
FLUSH_EVERY = 0.25  # seconds between batches written to events.jsonl
MAX_LINE = 1 << 20  # a longer line is passed through, not parsed (one warning says so)
BACKLOG = 8 << 20  # output bytes waiting to be parsed; beyond, output is passed through only
PARSE_GRACE = 30.0  # seconds the parser may take after the child ended (the backlog is bounded)
LINE_END = re.compile(rb"\r\n|\r|\n")
SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: the one sentence of a run whose output gave no metric
NO_METRIC = ("no metric found in the output: stdout scalars reads lines such as `name: value`, "
             "`name=value` or `epoch N name value` (docs/SCRIPTS.md); stdout.log has the output")


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


def is_prose(line: str, pair_re: re.Pattern[str] = PAIR) -> bool:
    """Does the line hold a word of prose beside its pairs (`training with lr=0.01`)?"""
    return any(PROSE.fullmatch(word.strip(PUNCTUATION)) for word in pair_re.sub(" ", line).split())


class Parser:
    """Turns lines into events (the rule: this module's docstring); keeps each name's
    running counter for lines with neither `step` nor `epoch`."""

    def __init__(self, pattern: re.Pattern[str] | None = None, params: frozenset[str] = frozenset()):
        self.pattern = pattern
        self.params = params  # the run's params: on a line without an index, their echo
        self.counters: dict[str, int] = {}
        self.metrics = 0  # values turned into metrics so far

    def events(self, line: str) -> list[tuple[str, dict[str, Any]]]:
        found = self._pairs(line)
        if found is None:
            return []
        step_text, epoch_text = found.pop("step", None), found.pop("epoch", None)
        step, epoch = index_value(step_text), index_value(epoch_text)
        if (step_text is not None and step is None) or (epoch_text is not None and epoch is None):
            return []  # `step: next` is prose, not a scalar line
        metrics = {}
        for key, text in found.items():
            value = number(text)
            if value is not None and key not in RESERVED and NAME.fullmatch(key):
                metrics[key] = value
        if step is None and epoch is None:
            metrics = {k: v for k, v in metrics.items() if k not in self.params}
        self.metrics += len(metrics)
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

    def _pairs(self, line: str) -> dict[str, str] | None:
        """The line's pairs by name (a step or an epoch under those names); None for
        prose, or for a line whose step or epoch is given twice."""
        if self.pattern is not None:
            found = pairs(line, self.pattern)
        elif (head := INDEXED.match(line)) is not None:
            found = [(head.group(1), head.group(2))]
            found += [(m.group(1), m.group(2) or m.group(3))
                      for m in SPACED_PAIR.finditer(line, head.end())]
        elif is_prose(line):
            return None
        else:
            found = pairs(line)
        out: dict[str, str] = {}
        twice = set()
        for key, text in found:
            key = INDEX_NAMES.get(key.lower(), key)
            if out.setdefault(key, text) != text:
                twice.add(key)
        if twice & {"step", "epoch"}:
            return None
        return {k: v for k, v in out.items() if k not in twice}  # an ambiguous name: no metric


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


class Lines:
    """Output → complete lines, in linear time: only new bytes are searched for a line
    end (a newline or a carriage return: progress bars rewrite theirs with \\r), and an
    unfinished line is kept as its pieces, joined once it ends. A line longer than
    `limit` is dropped whole (`too_long` counts them)."""

    def __init__(self, limit: int = MAX_LINE):
        self.limit = limit
        self.pieces: list[bytes] = []
        self.size = 0
        self.dropping = False  # inside a line already too long
        self.too_long = 0

    def feed(self, data: bytes) -> list[bytes]:
        first, *rest = LINE_END.split(data)
        self._add(first)
        if not rest:
            return []
        *done, last = rest
        lines = [] if self.dropping else [b"".join(self.pieces)]
        lines += [line for line in done if self._fits(len(line))]
        self.pieces, self.size, self.dropping = [], 0, False
        self._add(last)
        return lines

    def end(self) -> bytes | None:
        """The last line, unfinished when the output ended."""
        line = None if self.dropping or not self.pieces else b"".join(self.pieces)
        self.reset()
        return line

    def reset(self) -> None:
        """Forget the unfinished line (the backlog skipped output after it)."""
        self.pieces, self.size, self.dropping = [], 0, False

    def _add(self, piece: bytes) -> None:
        if self.dropping or not piece:
            return
        if not self._fits(self.size + len(piece)):
            self.pieces, self.size, self.dropping = [], 0, True
            return
        self.pieces.append(piece)
        self.size += len(piece)

    def _fits(self, size: int) -> bool:
        if size <= self.limit:
            return True
        self.too_long += 1
        return False


def parse_all(backlog: Backlog, parser: Parser, batcher: Batcher, limit: int = MAX_LINE) -> None:
    """Parse the output's complete lines as they come; the last line counts once the
    output has ended. Output the backlog skipped, and lines past `limit`, are said once
    each as a warning on the run."""
    lines = Lines(limit)
    warned = set()

    def warn(what: str, message: str) -> None:
        if what not in warned:
            warned.add(what)
            batcher.add([("warning", {"message": message})], time.time())

    while (data := backlog.get()) is not None:
        if not data:
            lines.reset()
            warn("gap", "stdout scalars fell behind the output: some lines were not read for "
                 "metrics (stdout.log has them all)")
            continue
        for line in lines.feed(data):
            _parse(line, parser, batcher)
        if lines.too_long:
            warn("long", f"stdout scalars: a line longer than {limit >> 20 or limit} "
                 f"{'MiB' if limit >> 20 else 'bytes'} was not read for metrics (stdout.log has it)")
    last = lines.end()
    if last:
        _parse(last, parser, batcher)


def _parse(line: bytes, parser: Parser, batcher: Batcher) -> None:
    if b":" in line or b"=" in line or parser.pattern is not None or INDEXED_BYTES.match(line):
        batcher.add(parser.events(line.decode("utf-8", "replace")), time.time())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def logged_metrics(path: Path, offset: int) -> bool:
    """Does the event log hold a step or epoch event past `offset` (the script used
    tuiexp.track as well)? Read in blocks: a log of any size in bounded memory."""
    kind = re.compile(rb'"kind": ?"(?:step|epoch)"')
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            tail = b""
            while block := f.read(1 << 20):
                if kind.search(tail + block):
                    return True
                tail = block[-32:]
    except OSError:
        pass
    return False


def run_params(spec_path: Path) -> frozenset[str]:
    """The names of the run's params (nested ones dotted, and `seed`): the config a
    script may print at its start."""
    try:
        spec = json.loads(spec_path.read_text())
    except (OSError, ValueError):
        return frozenset()
    names = {"seed"} if isinstance(spec, dict) and spec.get("seed") is not None else set()
    todo = [("", spec.get("params"))] if isinstance(spec, dict) else []
    while todo:
        prefix, table = todo.pop()
        if isinstance(table, dict):
            for k, v in table.items():
                names.add(prefix + str(k))
                todo.append((f"{prefix}{k}.", v))
    return frozenset(names)


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
    run = RunPaths(Path(os.environ["TUIEXP_RUN_DIR"])) if os.environ.get("TUIEXP_RUN_DIR") else None
    batcher = Batcher(run.events if run else None)
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
    offset = _size(run.events) if run else 0  # this attempt's events start here
    parser = Parser(pattern, run_params(run.spec) if run else frozenset())
    backlog = Backlog()
    reader = threading.Thread(target=copy, args=(child.stdout.fileno(), backlog), daemon=True)
    parsing = threading.Thread(target=parse_all, args=(backlog, parser, batcher), daemon=True)
    reader.start()
    parsing.start()
    rc = wait_child(child, batcher)
    reader.join(timeout=2.0)  # a grandchild may hold the pipe open: do not wait for it
    backlog.close()
    parsing.join(timeout=PARSE_GRACE)  # the bounded backlog parses in well under a second
    if parsing.is_alive():  # never a silent cut: the run says its metrics stop short
        batcher.add([("warning", {"message": f"stdout scalars had not read the whole output "
                                  f"{PARSE_GRACE:.0f} s after the script ended: the metrics of "
                                  "its last lines are missing (stdout.log has them all)"})], time.time())
    elif rc == 0 and run and parser.metrics == 0 and not logged_metrics(run.events, offset):
        batcher.add([("warning", {"message": NO_METRIC})], time.time())
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
