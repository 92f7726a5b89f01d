"""Everything that draws on the terminal: the only module that imports rich or tqdm.

Results (dataclasses from the library) come in; tables, bars and progress go
out. Human-readable output goes to stdout, progress bars and errors to stderr.
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from tqdm import tqdm

from mlpkit.train.metrics import EpochMetrics, EvalResult, StepInfo
from mlpkit.train.trainer import TrainResult

class _Console(Console):
    """A console whose width is read when it prints: $COLUMNS if set, else the terminal's, else 120
    for piped or redirected output (rich's 80 would cut tables that fit any log viewer)."""

    @property  # type: ignore[override]
    def size(self) -> ConsoleDimensions:
        real = Console.size.fget(self)  # type: ignore[attr-defined]
        cols = os.environ.get("COLUMNS", "")
        if cols.isdigit() and int(cols) > 0:
            return ConsoleDimensions(int(cols), real.height)
        return real if self.is_terminal else ConsoleDimensions(120, real.height)

    @size.setter
    def size(self, value: tuple[int, int]) -> None:
        Console.size.fset(self, value)  # type: ignore[attr-defined]


console = _Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
MIN_WIDTH = 60  # every table reads whole down to this many columns (stacked rows when it does not fit)


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


def _plain_cell(cell: Any) -> str:
    if isinstance(cell, Text):
        return cell.plain.strip()
    return Text.from_markup(str(cell)).plain.strip()


_LONG_TOKEN = re.compile(r"\S{161,}")
MAX_MESSAGE = 1000


def one_line(message: str) -> str:
    """A message as one line of sane length: long tokens (a 5,000-character key, a 4,300-digit
    number) cut in the middle, the whole capped at MAX_MESSAGE characters."""
    text = " ".join(message.split())
    text = _LONG_TOKEN.sub(lambda m: f"{m.group(0)[:100]}…({len(m.group(0)):,} characters)…{m.group(0)[-10:]}", text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def error(message: str) -> None:
    """One line on stderr: ``error: <sentence>``."""
    text = one_line(message).rstrip()
    if not text.endswith((".", "?", "!", "…")):
        text += "."
    err_console.print(Text("error: ", style="bold red") + Text(text), soft_wrap=True)


def stopped(message: str) -> None:
    """One line on stderr for a clean, resumable stop."""
    err_console.print(Text("stopped: ", style="bold yellow") + Text(message.rstrip(".") + "."), soft_wrap=True)


def warning(message: str) -> None:
    """One line on stderr: ``warning: <sentence>``."""
    err_console.print(Text("warning: ", style="bold yellow") + Text(" ".join(message.split())), soft_wrap=True)


def note(message: str) -> None:
    err_console.print(Text(message, style="dim"), soft_wrap=True)


def _f(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.4f}" if abs(v) < 1e4 else f"{v:.3e}"


def _e(v: float | None) -> str:
    return "—" if v is None else f"{v:.2e}"


def _pct(v: float | None) -> str:
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


def model_summary(rows: list[tuple[str, str, str, int]], total: int, in_features: int) -> None:
    t = Table(title=f"model: {in_features} inputs, {total:,} parameters", box=box.SIMPLE_HEAD, title_justify="left")
    for col, j in (("#", "right"), ("layer", "left"), ("output", "left"), ("params", "right")):
        t.add_column(col, justify=j)
    for i, layer, out, n in rows:
        t.add_row(i, layer, out, f"{n:,}" if n else "")
    show(t)


def dry_run(r: Any) -> None:
    """``train --dry-run``: the model it would build, and that everything checked out."""
    model_summary(r.summary, r.num_params, r.in_features)
    console.print(f"config, data and model are valid; {r.steps_per_epoch:,} steps per epoch, {r.epochs} epochs")


def resume_plan(r: Any) -> None:
    """``train --resume RUN --dry-run``: the checkpoint is valid; where the run would continue."""
    for w in r.warnings:
        warning(w)
    where = f"epoch {r.epoch + 1}, step {r.step}" if r.step else f"epoch {r.epoch + 1}"
    if r.epoch >= r.epochs:
        where = f"nothing: all {r.epochs} epochs are done"
    console.print(f"{r.checkpoint} is valid; the run would resume at {where} of {r.epochs}; nothing was written")


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
            + f"{_f(m.train_loss):>12}{_f(m.train_eval_loss):>12}{_pct(m.train_eval_acc):>11}"
            + f"{_f(m.val_loss):>11}{_pct(m.val_acc):>11}{grads}{seconds:>7.2f}s"
        )
        console.print(Text(row), soft_wrap=True)

    def _sentence(self, m: EpochMetrics, seconds: float) -> None:
        grads = ", ".join(f"{n.split('.')[-1]}: {m.grad_norms.get(n + '.W', float('nan')):.2e}" for n in self.linear)
        text = (f"epoch {m.epoch}/{self.epochs}: train loss {_f(m.train_loss)} ({self.as_trained}), "
                f"{_f(m.train_eval_loss)} (eval mode), accuracy {_pct(m.train_eval_acc)}; validation loss "
                f"{_f(m.val_loss)}, accuracy {_pct(m.val_acc)}; ‖dW‖ of layers {grads}; {seconds:.2f}s")
        console.print(Text(text))


def train_summary(r: TrainResult) -> None:
    total = sum(r.epoch_times)
    es = r.early_stopping
    if es is not None:
        why = (f"stopped early after epoch {es.epochs_trained}" if es.stopped_early
               else f"trained all {es.epochs_trained} epochs")
        console.print(f"\nearly stopping: {why}; the best validation accuracy, {_pct(es.best_val_acc)}, was at epoch "
                      f"{es.best_epoch}: the final weights are that epoch's")
    console.print(
        f"\n[bold]test[/bold]: loss {r.test.loss:.4f}, accuracy [bold]{_pct(r.test.accuracy)}[/bold] "
        f"on {r.test.n:,} examples; {len(r.history)} epochs in {total:.1f}s"
    )
    if r.run_dir:
        console.print(f"run saved to [bold]{escape(r.run_dir)}[/bold] (config.yaml, metrics.jsonl, model.npz)")
        console.print("score it again with:")
        console.print(Text(f"  mlpkit evaluate {_quote(r.run_dir)}"), soft_wrap=True)  # whole, to paste


def _quote(path: str) -> str:
    """A path as it must be typed in a shell (hints are meant to be pasted)."""
    import shlex

    return shlex.quote(path)


# --------------------------------------------------------------------------- evaluate


def eval_result(r: EvalResult, source: str) -> None:
    console.print(
        f"[bold]{source}[/bold] on the {r.split} split ({r.n:,} examples): "
        f"loss {r.loss:.4f}, accuracy [bold]{_pct(r.accuracy)}[/bold]"
    )
    names = r.class_names or [str(i) for i in range(len(r.per_class_accuracy))]
    t = Table(title="confusion matrix (rows: true class, columns: predicted)", box=box.SIMPLE_HEAD,
              title_justify="left")
    t.add_column("true", justify="left")
    for j in range(len(names)):
        t.add_column(str(j), justify="right")
    t.add_column("n", justify="right")
    t.add_column("accuracy", justify="right")
    for i, row in enumerate(r.confusion):
        cells = [f"[bold]{v}[/bold]" if i == j else (str(v) if v else "[dim]·[/dim]") for j, v in enumerate(row)]
        label = f"{i} {names[i]}" if names[i] != str(i) else str(i)
        t.add_row(label, *cells, str(sum(row)), _pct(r.per_class_accuracy[i]))
    show(t)


def _plain(o: Any) -> Any:
    """Dataclasses, NumPy scalars and arrays as plain JSON values."""
    import dataclasses

    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def strict(o: Any) -> Any:
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


def as_json(obj: Any) -> None:
    """Print the result as strict JSON on stdout (no colour, no wrapping; non-finite numbers as null)."""
    import json

    sys.stdout.write(json.dumps(strict(obj), indent=2, allow_nan=False, default=_plain) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- gradcheck


def _verdict(passed: bool) -> str:
    return "[green]pass[/green]" if passed else "[bold red]FAIL[/bold red]"


def _property_table(rows: list[Any]) -> Table:
    t = Table(box=box.SIMPLE_HEAD)
    for col, j in (("property", "left"), ("measured", "right"), ("expected", "right"), ("bound ±", "right"),
                   ("result", "left")):
        t.add_column(col, justify=j, no_wrap=col == "property")
    for row in rows:
        t.add_row(escape(row.name), f"{row.measured:.6g}", f"{row.expected:.6g}", f"{row.bound:.2g}", _verdict(row.passed))
    return t


def _tensor_table(rows: list[Any]) -> Table:
    t = Table(box=box.SIMPLE_HEAD)
    for col, j in (("tensor", "left"), ("shape", "left"), ("checked", "right"), ("skipped", "right"),
                   ("max abs err", "right"), ("rel err", "right"), ("result", "left")):
        t.add_column(col, justify=j, no_wrap=col == "tensor")
    for row in rows:
        t.add_row(escape(row.name), "×".join(map(str, row.shape)) or "()", str(row.checked),
                  str(row.skipped) if row.skipped else "", _e(row.max_abs_err), _e(row.rel_err), _verdict(row.passed))
    return t


def gradcheck_report(r: Any) -> None:
    """One row per tensor, parameter change or property, grouped; failing rows list their worst entries."""
    for g in r.groups:
        console.print(Text(g.title, style="bold"))
        properties = [row for row in g.rows if row.kind == "property"]
        show(_property_table(properties) if properties else _tensor_table(g.rows))
        for row in g.rows:
            if row.passed:
                continue
            if row.kind == "property":
                console.print(Text(f"  {row.name}: measured {row.measured:.6g}, expected {row.expected:.6g} ± "
                                   f"{row.bound:.2g} ({row.detail})", style="red"))
                continue
            if row.error:
                console.print(Text(f"  {row.name}: {row.error}", style="red"))
            first, second = ("real", "textbook") if row.kind == "step" else ("analytic", "numeric")
            for w in row.worst:
                console.print(Text(f"  {row.name}{list(w.index)}: {first} {w.analytic:.6e}, {second} {w.numeric:.6e}, "
                                   f"abs error {w.abs_err:.2e}", style="red"))
    failed = [row.name for g in r.groups for row in g.rows if not row.passed]
    rule = (f"pass: |analytic − numeric| ≤ {r.atol:g} + {r.rtol:g}·|numeric| for every checked entry (eps {r.eps:g}); "
            "a step's real change against its textbook change by the same rule")
    console.print(Text(rule, style="dim"))
    if failed:
        console.print(Text(f"FAILED: {len(failed)} check(s): {', '.join(failed)}", style="bold red"), soft_wrap=True)
    else:
        n = sum(len(g.rows) for g in r.groups)
        console.print(Text(f"all {n} checks pass", style="bold green"))


# --------------------------------------------------------------------------- inspect-grads

_BAR = 40
_EIGHTHS = " ▏▎▍▌▋▊▉"


def _bar(value: float, lo: float, hi: float, width: int = _BAR) -> str:
    """A bar whose length is log10(value) placed between log10(lo) and log10(hi)."""
    if not (value > 0 and math.isfinite(value)):
        return ""
    span = max(math.log10(hi) - math.log10(lo), 1e-12)
    frac = min(max((math.log10(value) - math.log10(lo)) / span, 0.0), 1.0)
    cells = frac * width
    full = int(cells)
    rest = _EIGHTHS[int((cells - full) * 8)] if full < width else ""
    return ("█" * full + rest.strip()) or "▏"


def grad_profile(p: Any) -> None:
    """Bars of ‖db‖ per layer on a log scale, then the numbers at each epoch."""
    snaps = p.snapshots
    console.print(Text(f"{p.description}: gradient norms on a probe of {p.probe:,} training images "
                       f"(mean gradient, inference mode)", style="bold"))
    values = [s.db_norm for snap in snaps for s in snap.linear if s.db_norm > 0]
    if values:
        lo = 10 ** math.floor(math.log10(min(values)))
        hi = 10 ** math.ceil(math.log10(max(values)))
        console.print(Text(f"\n‖db‖ per Linear layer, input → output, log scale from {lo:.0e} to {hi:.0e} "
                           f"(Nielsen's speed of learning)", style="bold"))
        t = Table(box=None, show_header=False, pad_edge=False)
        t.add_column("layer")
        t.add_column("epoch", justify="right")
        t.add_column("bar", no_wrap=True, min_width=_BAR)
        t.add_column("‖db‖", justify="right")
        t.add_column("ratio", justify="right")
        for j, first in enumerate(snaps[0].linear):
            for k, snap in enumerate(snaps):
                s = snap.linear[j]
                style = "cyan" if k == 0 else ("green" if k == len(snaps) - 1 else "blue")
                label = f"{s.layer} {s.shape[0]}→{s.shape[1]}" if k == 0 else ""
                t.add_row(label, f"epoch {snap.epoch}", Text(_bar(s.db_norm, lo, hi), style=style),
                          f"{s.db_norm:.2e}", f"×{s.db_ratio:.3g}")
        show(t)
        start = (f"epoch {snaps[0].epoch} is the trained weights as saved" if p.trained
                 else "epoch 0 is the initialization")
        console.print(Text(f"ratio: ‖db‖ relative to the last hidden layer; {start}", style="dim"))
    for snap in (snaps[0], snaps[-1]) if len(snaps) > 1 else snaps:  # the bars above show the epochs between
        if p.trained and snap is snaps[0]:
            title = f"trained weights (epoch {snap.epoch})"
        else:
            title = "at initialization" if snap.epoch == 0 else f"after epoch {snap.epoch}"
        t = Table(title=f"{title}: probe loss {snap.probe_loss:.4f}", box=box.SIMPLE_HEAD, title_justify="left")
        for col in ("layer", "shape", "‖dW‖", "‖db‖", "RMS dW", "RMS db", "‖db‖ / last hidden"):
            t.add_column(col, justify="left" if col in ("layer", "shape") else "right")
        for s in snap.linear:
            t.add_row(s.layer, f"{s.shape[0]}×{s.shape[1]}", f"{s.dW_norm:.3e}", f"{s.db_norm:.3e}",
                      f"{s.dW_rms:.3e}", f"{s.db_rms:.3e}", f"{s.db_ratio:.4f}")
        show(t)
        if snap.activations:
            a = Table(box=box.SIMPLE_HEAD)
            for col in ("activation", "kind", "mean derivative", "units passing ~no gradient"):
                a.add_column(col, justify="left" if col in ("activation", "kind") else "right")
            for s in snap.activations:
                what = "inactive" if s.kind == "relu" else "saturated"
                a.add_row(s.layer, s.kind, f"{s.mean_derivative:.4f}", f"{_pct(s.saturated)} {what}")
            show(a)
            console.print(Text("saturated: derivative below 0.01; inactive (ReLU): output 0, derivative 0",
                               style="dim"))
    if p.reading:
        console.print(Text(f"reading: {p.reading}", style="bold"))


# --------------------------------------------------------------------------- dropout report


def dropout_report(r: Any) -> None:
    if not r.layers:
        console.print("the model has no Dropout layer; training and inference mode are the same")
    else:
        t = Table(title=f"each Dropout layer on {r.examples:,} examples (inputs from an inference-mode pass)",
                  box=box.SIMPLE_HEAD, title_justify="left")
        for col in ("layer", "p (drop)", "keep 1−p", "measured drop rate", "±1σ", "mean act. train",
                    "mean act. eval", "train / eval"):
            t.add_column(col, justify="left" if col == "layer" else "right")
        for s in r.layers:
            t.add_row(s.layer, f"{s.p:g}", f"{s.keep:g}", f"{s.drop_rate:.4f}", f"{s.drop_rate_sigma:.4f}",
                      f"{s.mean_train:.5f}", f"{s.mean_eval:.5f}", f"{s.ratio:.4f}")
        show(t)
        console.print(Text("survivors are scaled by 1/(1−p) in training, so the mean activation matches inference "
                           "mode, where dropout is the identity", style="dim"))
    t = Table(title="the model in each mode, on the same examples", box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("mode", "loss", "accuracy"):
        t.add_column(col, justify="left" if col == "mode" else "right")
    t.add_row("training (dropout on, one pass)", f"{r.train_mode.loss:.4f}", _pct(r.train_mode.accuracy))
    t.add_row("inference (dropout off)", f"{r.eval_mode.loss:.4f}", _pct(r.eval_mode.accuracy))
    t.add_row(f"MC dropout (mean of {r.passes} training passes)", "", _pct(r.mc_accuracy))
    show(t)
    console.print(f"across {r.passes} training-mode passes: std of the predicted class's probability "
                  f"{r.mc_prob_std:.4f} (mean over examples); argmax agrees with inference mode "
                  f"{_pct(r.mc_agreement)} of the time")


# --------------------------------------------------------------------------- data


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n else "—"


def predictions(r: Any, images: list[Any] | None = None) -> None:
    """Each input's top classes; with ``images``, the picture the model saw above its answer."""
    from mlpkit.data.images import block_art

    for k, item in enumerate(r.items):
        if images is not None:
            console.print(Text(block_art(images[k]), style="white on black"), soft_wrap=True)
        guesses = ", ".join(f"{g.name} {100 * g.probability:.1f}%" for g in item.top)
        note = "" if item.prepared else " (used as given)"
        console.print(Text(f"{item.source}{note}: ") + Text(item.top[0].name, style="bold") + Text(f"  ({guesses})"))


def exported(r: Any) -> None:
    stack = " → ".join(d["type"] + (f"({d['in_features']}, {d['out_features']})" if d["type"] == "Linear" else "")
                       for d in r.layers if d["type"] != "Dropout")
    console.print(f"{r.format} written to {escape(r.file)} ({r.bytes:,} bytes): {stack}")


def augment_preview(p: Any) -> None:
    """Each training image, then its augmented versions, side by side in block characters."""
    import numpy as np

    from mlpkit.data.images import block_art

    rows = [np.asarray(p.originals)] + [np.asarray(a) for a in p.augmented]
    per_line = max(1, console.width // (2 * rows[0].shape[2] + 2) // len(rows))
    console.print(f"{p.dataset}: each original, then {len(rows) - 1} augmented version(s)")
    for start in range(0, rows[0].shape[0], per_line):
        arts = [block_art(r[k]).split("\n") for k in range(start, min(start + per_line, rows[0].shape[0]))
                for r in rows]
        for line in zip(*arts):
            console.print(Text("  ".join(line), style="white on black"), soft_wrap=True)
        console.print("")


def run_list(rows: list[Any]) -> None:
    if not rows:
        console.print("no runs here")
        return
    t = Table(box=box.SIMPLE_HEAD)
    for col, j in (("run", "left"), ("config", "left"), ("started", "left"), ("epochs", "right"),
                   ("best val", "right"), ("test acc", "right"), ("status", "left")):
        t.add_column(col, justify=j)
    styles = {"finished": "green", "running": "cyan", "interrupted": "yellow", "diverged": "red"}
    for r in rows:
        planned = f"/{r.epochs_planned}" if r.epochs_planned is not None else ""
        started = (r.started or "—")[:16].replace("T", " ")
        t.add_row(escape(r.name), escape(Path(r.config).name) if r.config else "—", started,
                  f"{r.epochs_done}{planned}", _pct(r.best_val_acc), _pct(r.test_acc),
                  Text(r.status, style=styles.get(r.status, "")))
    show(t)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:.3e}"
    if v is None:
        return "—"
    return str(v)


def comparison(c: Any) -> None:
    names = [Path(r).name for r in c.runs]
    t = Table(title="final metrics", box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("metric")
    for n in names:
        t.add_column(escape(n), justify="right")
    for metric, values in c.metrics:
        t.add_row(metric, *[_pct(v) if "acc" in metric and isinstance(v, float) else _cell(v) for v in values])
    show(t)
    if not c.differences:
        console.print("the configs are identical")
        return
    d = Table(title="config keys that differ", box=box.SIMPLE_HEAD, title_justify="left")
    d.add_column("key")
    for n in names:
        d.add_column(escape(n), justify="right")
    for key, values in c.differences:
        d.add_row(escape(key), *[escape(_cell(v)) for v in values])
    show(d)


def downloaded(r: Any) -> None:
    console.print(f"{r.dataset}: {len(r.files)} files present and verified in {escape(r.folder)}")


def dataset_list(rows: list[Any]) -> None:
    t = Table(box=box.SIMPLE_HEAD)
    for col in ("dataset", "train", "test", "classes", "download", "status", "folder"):
        t.add_column(col, justify="right" if col in ("train", "test", "classes", "download") else "left")
    for r in rows:
        style = "green" if r.status in ("present", "embedded") else ("red" if r.status.startswith("corrupt") else
                                                                     "yellow" if r.status.startswith("unverified") else "")
        t.add_row(r.name, f"{r.n_train:,}", f"{r.n_test:,}", str(r.num_classes), _mb(r.download_bytes),
                  Text(r.status, style=style), r.folder)
    show(t)


def dataset_info(s: Any) -> None:
    console.print(f"[bold]{s.name}[/bold] from {s.source}")
    console.print(f"train {tuple(s.x_train_shape)}, test {tuple(s.x_test_shape)}, images {tuple(s.image_shape)}, "
                  f"{s.dtype}, pixels {s.pixel_min:g}..{s.pixel_max:g} (scaled by {s.scale:.6g} to model inputs), "
                  f"{s.memory_bytes / 1e6:.1f} MB in memory")
    t = Table(box=box.SIMPLE_HEAD)
    for col in ("class", "name", "train", "test"):
        t.add_column(col, justify="right" if col in ("train", "test") else "left")
    for i, (a, b) in enumerate(zip(s.train_per_class, s.test_per_class)):
        t.add_row(str(i), s.class_names[i] if i < len(s.class_names) else "", f"{a:,}", f"{b:,}")
    t.add_row("all", "", f"{sum(s.train_per_class):,}", f"{sum(s.test_per_class):,}", style="bold")
    show(t)
