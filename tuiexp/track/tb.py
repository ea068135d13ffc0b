"""`SummaryWriter`: the common part of torch.utils.tensorboard's writer, writing tuiexp events.

    from tuiexp.track import SummaryWriter     # was: from torch.utils.tensorboard import ...
    writer = SummaryWriter()
    writer.add_scalar("Loss/train", loss, step)  # a `step` event, metric "Loss/train"
    writer.add_hparams({"lr": 0.1}, {"hparam/acc": 0.9})
    writer.close()

Tags are cleaned as TensorBoard cleans them (characters outside A-Z a-z 0-9 _ . / -
become `_`; a reserved name such as `epoch` gains a trailing `_`), so every tag is
a valid metric name, the same one `tuiexp import tb` gives it. The writer logs into the
process's open run when there is one (track.init() was called, or the
supervisor's run); otherwise it opens one as track.init() would, and ends it
on close() when it was run by hand. Neither torch nor tensorboard is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..store.metrics import clean_tag
from .run import Run


class SummaryWriter:
    """A drop-in for torch.utils.tensorboard.SummaryWriter's scalars, hparams and text.

    `log_dir`, `comment` and the other TensorBoard arguments are accepted; `log_dir`
    is recorded in a `meta` event. `experiment`, `params`, `metric`, `mode` and `logs`
    are passed to track.init() when the writer opens the run itself."""

    def __init__(self, log_dir: str | Path | None = None, comment: str = "",
                 purge_step: int | None = None, max_queue: int = 10, flush_secs: int = 120,
                 filename_suffix: str = "", *, experiment: str | None = None,
                 params: dict[str, Any] | None = None, metric: str | None = None,
                 mode: str | None = None, logs: str | Path | None = None):
        from . import _current, init

        reuse = _current is not None and not _current.finished
        self.run: Run = init(params=params, experiment=experiment, metric=metric, mode=mode,
                             logs=logs)
        self._owns = not reuse
        self._tags: dict[str, str] = {}
        self.log_dir = str(log_dir) if log_dir is not None else str(self.run.dir)
        if log_dir is not None or comment:
            self.run.meta(tensorboard_log_dir=self.log_dir + comment)

    def _name(self, tag: str) -> str:
        name = self._tags.get(tag)
        if name is None:
            name = self._tags[tag] = clean_tag(tag)
        return name

    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None,
                   walltime: float | None = None, new_style: bool = False,
                   double_precision: bool = False) -> None:
        """One value of metric `tag` at `global_step` (0 when None, as TensorBoard);
        `walltime` is ignored: the event's time is the call's."""
        self.run.log({self._name(tag): scalar_value}, step=global_step or 0)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict[str, Any],
                    global_step: int | None = None, walltime: float | None = None) -> None:
        """Several values in one `step` event, named `main_tag/tag`."""
        values = {self._name(f"{main_tag}/{tag}"): v for tag, v in tag_scalar_dict.items()}
        self.run.log(values, step=global_step or 0)

    def add_hparams(self, hparam_dict: dict[str, Any], metric_dict: dict[str, Any],
                    hparam_domain_discrete: dict[str, list[Any]] | None = None,
                    run_name: str | None = None, global_step: int | None = None) -> None:
        """The hyperparameters as a `params` event (checked against the spec's params),
        the metrics as one `step` event."""
        self.run.log_params(dict(hparam_dict))
        if metric_dict:
            self.run.log({self._name(k): v for k, v in metric_dict.items()},
                         step=global_step or 0)

    def add_text(self, tag: str, text_string: str, global_step: int | None = None,
                 walltime: float | None = None) -> None:
        """A `note` event: {tag, text, step}."""
        self.run.event("note", tag=str(tag), text=str(text_string), step=global_step or 0)

    def flush(self) -> None:
        self.run.flush()

    def close(self) -> None:
        """Write everything; a writer that opened a run by hand also finishes it (under
        the supervisor the process's exit code decides, as for any script)."""
        if self.run.closed:
            return
        if self._owns and self.run.standalone:
            self.run._end("finished")
            self.run.close()
        else:
            self.run.flush()

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and self._owns and self.run.standalone:
            from .run import exception_status

            self.run._end(*exception_status(exc_type, exc, tb))
        self.close()
