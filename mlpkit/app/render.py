"""Everything that draws on the terminal: the only module that imports rich or tqdm.

Results (dataclasses from the library) come in; tables, bars and progress go
out. Human-readable output goes to stdout, progress bars and errors to stderr.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, ConsoleDimensions, JustifyMethod
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from tqdm import tqdm

from mlpkit.training.metrics import EpochMetrics, StepInfo
from mlpkit.training.trainer import TrainResult

if TYPE_CHECKING:
    from mlpkit.app.api import DryRun, ResumePlan


class _Console(Console):
    """A console whose width is read when it prints: $COLUMNS if set, else the terminal's, else 120
    for piped or redirected output (rich's 80 would cut tables that fit any log viewer)."""

    @property
    def size(self) -> ConsoleDimensions:
        real = Console.size.fget(self)  # type: ignore[attr-defined]
        cols = os.environ.get("COLUMNS", "")
        if cols.isdigit() and int(cols) > 0:
            return ConsoleDimensions(int(cols), real.height)
        return real if self.is_terminal else ConsoleDimensions(120, real.height)

    @size.setter
    def size(self, value: tuple[int, int]) -> None:
        Console.size.fset(self, value)  # type: ignore[attr-defined]

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """On a terminal, as rich prints. Piped or redirected, rendered plain and each line's trailing spaces
        removed: rich pads tables and titles to their width, which fills logs with blanks."""
        if self.is_terminal:
            super().print(*objects, **kwargs)
            return
        buf = io.StringIO()
        Console(file=buf, width=self.width, highlight=False, no_color=True, force_terminal=False,
                force_jupyter=False).print(*objects, **kwargs)
        self.file.write("\n".join(line.rstrip() for line in buf.getvalue().split("\n")))


console = _Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
MIN_WIDTH = 60  # every table reads whole down to this many columns (stacked rows when it does not fit)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 epoch', '2 epochs', '60,000 examples': a number with its noun, singular for one."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {plural or noun + 's'}"


def show(t: Table) -> None:
    """A table when it fits the terminal; otherwise each row as one or more lines of "column value"
    pairs broken between pairs, so that no number is cut to an ellipsis and no token is split."""
    width = console.width
    if Measurement.get(console, console.options.update_width(100_000), t).maximum <= width:
        console.print(t)
        return
    if t.title:
        console.print(Text(str(t.title), style="bold"))
    headers = [Text.from_markup(str(c.header)).plain.strip() for c in t.columns]
    columns = [list(c.cells) for c in t.columns]  # Column.cells: the public view of a column's cells
    for r in range(t.row_count):
        cells = [_plain_cell(col[r]) for col in columns]
        label, pairs = cells[0], [f"{h} {v}" if h else v for h, v in zip(headers[1:], cells[1:]) if v]
        lines, line = [], label
        for pair in pairs:
            if len(line) + 2 + len(pair) > width and line.strip():
                lines.append(line)
                line = "    " + pair
            else:
                line = f"{line}  {pair}" if line else pair
        lines.append(line)
        console.print(Text("\n".join(lines)))


def _plain_cell(cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain.strip()
    return Text.from_markup(str(cell)).plain.strip()


_LONG_TOKEN = re.compile(r"\S{161,}")
MAX_MESSAGE = 1000


# Control characters (C0, DEL, C1) shown as \x.. escapes: a name from a file or folder never moves the cursor,
# clears the screen or sets a terminal title. Tab and newline are spaces in names.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


def shown(text: object) -> str:
    """Text from a file, a folder or the user, for a Text object: control characters made visible."""
    return str(text).translate(_CONTROL)


def literal(text: object) -> str:
    """Text from a file, a folder or the user, for a markup string or a table cell: printed exactly as it is,
    rich markup (``[bold]``, ``[link=…]``) escaped and control characters made visible."""
    return escape(shown(text))


def one_line(message: str) -> str:
    """A message as one line of sane length: long tokens (a 5,000-character key, a 4,300-digit
    number) cut in the middle, the whole capped at MAX_MESSAGE characters, control characters shown."""
    text = shown(" ".join(message.split()))
    text = _LONG_TOKEN.sub(lambda m: f"{m.group(0)[:60]}…({len(m.group(0)):,} characters)…{m.group(0)[-10:]}", text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def error(message: str) -> None:
    """One line on stderr: ``error: <sentence>``."""
    text = one_line(message).rstrip()
    if not text.endswith((".", "?", "!", "…")):
        text += "."
    err_console.print(Text("error: ", style="bold red") + Text(text), soft_wrap=True)


def stopped(message: str) -> None:
    """One line on stderr for a clean, resumable stop."""
    err_console.print(Text("stopped: ", style="bold yellow") + Text(shown(message.rstrip(".")) + "."), soft_wrap=True)


def warning(message: str) -> None:
    """One line on stderr: ``warning: <sentence>``."""
    err_console.print(Text("warning: ", style="bold yellow") + Text(shown(" ".join(message.split()))), soft_wrap=True)


def note(message: str) -> None:
    err_console.print(Text(shown(message), style="dim"), soft_wrap=True)


def fmt_f(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.4f}" if abs(v) < 1e4 else f"{v:.3e}"


def fmt_e(v: float | None) -> str:
    return "—" if v is None else f"{v:.2e}"


def fmt_pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


# --------------------------------------------------------------------------- progress


class EpochProgress:
    """A tqdm bar per epoch on stderr, fed by the trainer's ``on_step`` hook."""

    def __init__(self, epochs: int, disable: bool = False) -> None:
        self.epochs = epochs
        self.disable = disable
        self._bar: tqdm | None = None

    def __call__(self, s: StepInfo) -> None:
        if self._bar is None:
            self._bar = tqdm(
                total=s.steps,
                desc=f"epoch {s.epoch}/{self.epochs}",
                unit="step",
                leave=False,
                file=sys.stderr,
                disable=True if self.disable else None,  # None: off when stderr is not a terminal
                dynamic_ncols=True,
                mininterval=0.2,
            )
            self._sum, self._n = 0.0, 0
        self._bar.update(1)
        self._sum += s.loss
        self._n += 1
        if s.step % 20 == 0 or s.step == s.steps:  # the mean over the epoch so far, not one noisy batch
            self._bar.set_postfix(mean_loss=f"{self._sum / self._n:.4f}", refresh=False)
        if s.step == s.steps:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class DownloadProgress:
    """A byte progress bar per downloaded file, on stderr."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable
        self._bar: tqdm | None = None
        self._name = ""

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if self._bar is None or name != self._name:
            self.close()
            self._name = name
            self._bar = tqdm(total=total, desc=f"downloading {name}", unit="B", unit_scale=True,
                             unit_divisor=1024, file=sys.stderr, disable=True if self.disable else None,
                             leave=False, mininterval=0.2)
        self._bar.update(done - self._bar.n)
        if total is not None and done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# --------------------------------------------------------------------------- train


def add_columns(t: Table, *columns: tuple[str, JustifyMethod], no_wrap: str | None = None) -> None:
    """Columns (header, justification); the one named ``no_wrap`` is never wrapped."""
    for header, justify in columns:
        t.add_column(header, justify=justify, no_wrap=header == no_wrap)


def model_summary(rows: list[tuple[str, str, str, int]], total: int, in_features: int) -> None:
    t = Table(title=f"model: {in_features} inputs, {total:,} parameters", box=box.SIMPLE_HEAD, title_justify="left")
    add_columns(t, ("#", "right"), ("layer", "left"), ("output", "left"), ("params", "right"))
    for i, layer, out, n in rows:
        t.add_row(i, layer, out, f"{n:,}" if n else "")
    show(t)


def dry_run(r: DryRun) -> None:
    """``train --dry-run``: the model it would build, and that everything checked out."""
    model_summary(r.summary, r.num_params, r.in_features)
    console.print(f"config, data and model are valid; {count(r.steps_per_epoch, 'step')} per epoch, "
                  f"{count(r.epochs, 'epoch')}")


def resume_plan(r: ResumePlan) -> None:
    """``train --resume RUN --dry-run``: the checkpoint is valid; where the run would continue."""
    for w in r.warnings:
        warning(w)
    where = f"epoch {r.epoch + 1}, step {r.step}" if r.step else f"epoch {r.epoch + 1}"
    if r.epoch >= r.epochs:
        where = f"nothing: all {count(r.epochs, 'epoch')} are done"
    console.print(f"{literal(r.checkpoint)} is valid; the run would resume at {where} of {r.epochs}; nothing was written")


class EpochTable:
    """Prints one aligned row per epoch as it finishes; the header comes first.

    Columns: training loss as trained (dropout on, when the model has dropout);
    inference-mode loss and accuracy on a fixed training sample and on the
    validation split; mean ‖dW‖ (Frobenius) of each Linear layer over the steps
    sampled for it (``train.grad_norm_samples`` per epoch); wall time. Where the
    table does not fit the terminal, each epoch is one short sentence instead,
    wrapped between words.
    """

    def __init__(self, epochs: int, linear_names: list[str], has_dropout: bool = True) -> None:
        self.epochs = epochs
        self.linear = linear_names  # e.g. ["layers.0", "layers.2"]
        self.as_trained = "dropout on" if has_dropout else "as trained"
        self.first = True

    @property
    def full_width(self) -> int:
        return 7 + 12 + 12 + 11 + 11 + 11 + 10 * len(self.linear) + 8

    def _header(self) -> None:
        grads = "".join(f"{'‖dW‖ ' + n.split('.')[-1]:>10}" for n in self.linear)
        top = f"{'':>7}{'train loss':>12}{'train loss':>12}{'train acc':>11}{'val loss':>11}{'val acc':>11}"
        bot = f"{'epoch':>7}{self.as_trained:>12}{'eval mode':>12}{'eval mode':>11}{'eval mode':>11}{'eval mode':>11}"
        console.print(Text(top + f"{'layer':>10}" * len(self.linear) + f"{'time':>8}", style="bold"), soft_wrap=True)
        console.print(Text(bot + grads + f"{'':>8}", style="bold"), soft_wrap=True)

    def __call__(self, m: EpochMetrics, seconds: float) -> None:
        if console.width < self.full_width:
            self._sentence(m, seconds)
            return
        if self.first:
            self._header()
            self.first = False
        width = len(str(self.epochs))
        grads = "".join(f"{m.grad_norms.get(n + '.W', float('nan')):>10.2e}" for n in self.linear)
        row = (
            f"{m.epoch:>{max(3, width)}}/{self.epochs:<{width}}".rjust(7)
            + f"{fmt_f(m.train_loss):>12}{fmt_f(m.train_eval_loss):>12}{fmt_pct(m.train_eval_acc):>11}"
            + f"{fmt_f(m.val_loss):>11}{fmt_pct(m.val_acc):>11}{grads}{seconds:>7.2f}s"
        )
        console.print(Text(row), soft_wrap=True)

    def _sentence(self, m: EpochMetrics, seconds: float) -> None:
        grads = ", ".join(f"{n.split('.')[-1]}: {m.grad_norms.get(n + '.W', float('nan')):.2e}" for n in self.linear)
        text = (f"epoch {m.epoch}/{self.epochs}: train loss {fmt_f(m.train_loss)} ({self.as_trained}), "
                f"{fmt_f(m.train_eval_loss)} (eval mode), accuracy {fmt_pct(m.train_eval_acc)}; validation loss "
                f"{fmt_f(m.val_loss)}, accuracy {fmt_pct(m.val_acc)}; ‖dW‖ of layers {grads}; {seconds:.2f}s")
        console.print(Text(text))


def train_summary(r: TrainResult) -> None:
    total = sum(r.epoch_times)
    es = r.early_stopping
    if es is not None:
        why = (f"stopped early after epoch {es.epochs_trained}" if es.stopped_early
               else f"trained all {count(es.epochs_trained, 'epoch')}")
        console.print(f"\nearly stopping: {why}; the best validation accuracy, {fmt_pct(es.best_val_acc)}, was at epoch "
                      f"{es.best_epoch}: the final weights are that epoch's")
    console.print(
        f"\n[bold]test[/bold]: loss {r.test.loss:.4f}, accuracy [bold]{fmt_pct(r.test.accuracy)}[/bold] "
        f"on {count(r.test.n, 'example')}; {count(len(r.history), 'epoch')} in {total:.1f}s"
    )
    if r.run_dir:
        console.print(f"run saved to [bold]{literal(r.run_dir)}[/bold] (config.yaml, metrics.jsonl, model.npz)")
        console.print("score it again with:")
        console.print(Text(f"  mlpkit evaluate {_quote(r.run_dir)}"), soft_wrap=True)  # whole, to paste


def _quote(path: str) -> str:
    """A path as it must be typed in a shell (hints are meant to be pasted)."""
    import shlex

    return shlex.quote(path)


def _plain(o: object) -> object:
    """Dataclasses, NumPy scalars and arrays as plain JSON values."""
    import dataclasses

    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def strict(o: object) -> object:
    """Plain data with every NaN or infinite float replaced by None: RFC 8259 JSON has no
    ``NaN``/``Infinity``, and strict parsers (JavaScript's, jq's) reject them."""
    import dataclasses

    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        o = dataclasses.asdict(o)
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): strict(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [strict(v) for v in o]
    if hasattr(o, "tolist"):
        return strict(o.tolist())
    return o


def as_json(obj: object) -> None:
    """Print the result as strict JSON on stdout (no colour, no wrapping; non-finite numbers as null)."""
    import json

    sys.stdout.write(json.dumps(strict(obj), indent=2, allow_nan=False, default=_plain) + "\n")
    sys.stdout.flush()
