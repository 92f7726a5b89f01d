"""Everything that draws on the terminal: the only module that imports rich or tqdm.

Results (dataclasses from the library) come in; tables, bars and progress go
out. Human-readable output goes to stdout, progress bars and errors to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from tqdm import tqdm

from .trainer import EpochMetrics, EvalResult, StepInfo, TrainResult

# Piped or redirected output gets 120 columns instead of rich's 80, so tables stay whole in logs.
_WIDTH = None if sys.stdout.isatty() else 120
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """One line on stderr: ``error: <sentence>``."""
    text = message.rstrip()
    if not text.endswith((".", "?", "!")):
        text += "."
    err_console.print(Text("error: ", style="bold red") + Text(text), soft_wrap=True)


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
        self._bar.update(1)
        if s.step % 20 == 0 or s.step == s.steps:
            self._bar.set_postfix(loss=f"{s.loss:.4f}", refresh=False)
        if s.step == s.steps:
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
    console.print(t)


class EpochTable:
    """Prints one aligned row per epoch as it finishes; the header comes first.

    Columns: training loss as trained (dropout on); inference-mode loss and
    accuracy on a fixed training sample and on the validation split; mean
    ‖dW‖ (Frobenius) of each Linear layer over the epoch's steps; wall time.
    """

    def __init__(self, epochs: int, linear_names: list[str]) -> None:
        self.epochs = epochs
        self.linear = linear_names  # e.g. ["layers.0", "layers.2"]
        self.first = True

    def _header(self) -> None:
        grads = "".join(f"{'‖dW‖ ' + n.split('.')[-1]:>10}" for n in self.linear)
        top = f"{'':>7}{'train loss':>12}{'train loss':>12}{'train acc':>11}{'val loss':>11}{'val acc':>11}"
        bot = f"{'epoch':>7}{'dropout on':>12}{'eval mode':>12}{'eval mode':>11}{'eval mode':>11}{'eval mode':>11}"
        console.print(Text(top + f"{'layer':>10}" * len(self.linear) + f"{'time':>8}", style="bold"), soft_wrap=True)
        console.print(Text(bot + grads + f"{'':>8}", style="bold"), soft_wrap=True)

    def __call__(self, m: EpochMetrics, seconds: float) -> None:
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


def train_summary(r: TrainResult) -> None:
    total = sum(r.epoch_times)
    console.print(
        f"\n[bold]test[/bold]: loss {r.test.loss:.4f}, accuracy [bold]{_pct(r.test.accuracy)}[/bold] "
        f"on {r.test.n:,} examples; {len(r.history)} epochs in {total:.1f}s"
    )
    if r.run_dir:
        console.print(f"run saved to [bold]{r.run_dir}[/bold] (config.yaml, metrics.jsonl, model.npz)")
        console.print(f"score it again with: mlpkit evaluate {r.run_dir}")


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
    console.print(t)


def _plain(o: Any) -> Any:
    """NumPy scalars and arrays as plain JSON values."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def as_json(obj: Any) -> None:
    """Print plain data as JSON on stdout (no colour, no wrapping)."""
    import dataclasses
    import json

    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    sys.stdout.write(json.dumps(data, indent=2, default=_plain) + "\n")
    sys.stdout.flush()


OnEpoch = Callable[[EpochMetrics, float], None]


# --------------------------------------------------------------------------- gradcheck


def gradcheck_report(r: Any) -> None:
    """One row per tensor, grouped; failing rows list their worst entries."""
    for g in r.groups:
        console.print(Text(g.title, style="bold"), soft_wrap=True)
        t = Table(box=box.SIMPLE_HEAD)
        for col, j in (("tensor", "left"), ("shape", "left"), ("checked", "right"), ("skipped", "right"),
                       ("max abs err", "right"), ("rel err", "right"), ("result", "left")):
            t.add_column(col, justify=j, no_wrap=col == "tensor")
        for row in g.rows:
            verdict = "[green]pass[/green]" if row.passed else "[bold red]FAIL[/bold red]"
            t.add_row(row.name, "×".join(map(str, row.shape)) or "()", str(row.checked),
                      str(row.skipped) if row.skipped else "", _e(row.max_abs_err), _e(row.rel_err), verdict)
        console.print(t)
        for row in g.rows:
            if row.passed:
                continue
            if row.error:
                console.print(Text(f"  {row.name}: {row.error}", style="red"), soft_wrap=True)
            for w in row.worst:
                console.print(Text(f"  {row.name}{list(w.index)}: analytic {w.analytic:.6e}, numeric {w.numeric:.6e}, "
                                   f"abs error {w.abs_err:.2e}", style="red"), soft_wrap=True)
    failed = [row.name for g in r.groups for row in g.rows if not row.passed]
    rule = f"pass: |analytic − numeric| ≤ {r.atol:g} + {r.rtol:g}·|numeric| for every checked entry (eps {r.eps:g})"
    console.print(Text(rule, style="dim"))
    if failed:
        console.print(Text(f"FAILED: {len(failed)} tensor(s): {', '.join(failed)}", style="bold red"), soft_wrap=True)
    else:
        n = sum(len(g.rows) for g in r.groups)
        console.print(Text(f"all {n} tensors pass", style="bold green"))
