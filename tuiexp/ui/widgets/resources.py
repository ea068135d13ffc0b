"""The strip at the top: each GPU (or the CPU), which runs are on it, the queue."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..data import Resources, bar


def describe(res: Resources) -> Text:
    out = Text()
    for name, util, used, total, runs in res.gpus:
        out.append(f"{name} ", style="bold")
        out.append(f"{util:3d}% {bar(util / 100, 6)} mem {used / 1024:.1f}/{total / 1024:.1f} GiB")
        out.append(f"  {len(runs)} run{'s' if len(runs) != 1 else ''}"
                   f"{': ' + ', '.join(r[-4:] for r in runs[:4]) if runs else ''}   ", style="dim")
    if not res.gpus:
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
