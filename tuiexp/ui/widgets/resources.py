"""The strip at the top: each GPU (or the CPU), which runs are on it, the queue."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..data import Resources, bar


def cluster(res: Resources) -> Text:
    """Slurm's partitions in one line: `debug* up 1 node idle, cpus 2/2 free`."""
    out = Text("slurm ", style="bold")
    if not res.partitions:
        out.append("sinfo did not answer   ", style="yellow")
    for p in res.partitions or ():
        out.append(f"{p.name}{'*' if p.default else ''} ", style="bold")
        out.append(f"{p.available} {p.nodes} node{'s' if p.nodes != 1 else ''} {p.state}, "
                   f"cpus {p.cpus_idle}/{p.cpus_total} free{', ' + p.gres if p.gres else ''}   ",
                   style="" if p.available == "up" else "yellow")
    return out


def describe(res: Resources) -> Text:
    out = cluster(res) if res.partitions is not None else Text()
    for name, util, used, total, runs in res.gpus:
        out.append(f"{name} ", style="bold")
        out.append(f"{util:3d}% {bar(util / 100, 6)} mem {used / 1024:.1f}/{total / 1024:.1f} GiB")
        out.append(f"  {len(runs)} run{'s' if len(runs) != 1 else ''}"
                   f"{': ' + ', '.join(r[-4:] for r in runs[:4]) if runs else ''}   ", style="dim")
    if not res.gpus and res.partitions is None:
        out.append("CPU ", style="bold")
        out.append(f"{res.cpu:3.0f}% {bar(res.cpu / 100, 6)}  RAM {res.mem_used / 1024:.1f}/"
                   f"{res.mem_total / 1024:.1f} GiB   ")
    out.append(f"running {res.running}  queued {res.queued}", style="bold")
    if res.daemon:
        out.append("   supervisor up", style="green")
    elif res.running or res.queued:
        out.append("   supervisor down", style="yellow")  # the app starts one
    else:
        out.append("   supervisor idle (starts on demand)", style="dim")
    return out


class ResourceStrip(Static):
    """Redrawn only when its text changes; laid out again only when its height does."""

    _shown: Text | None = None
    _lines = 0

    def show(self, res: Resources) -> None:
        text = describe(res)
        if self._shown is not None and text == self._shown:
            return
        width = max(1, self.content_size.width or self.app.size.width)
        lines = min(3, len(text.wrap(self.app.console, width)))
        self.update(text, layout=lines != self._lines)
        self._shown, self._lines = text, lines
