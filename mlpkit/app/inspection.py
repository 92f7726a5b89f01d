"""Drawing the reports of the inspection commands: gradcheck, inspect-grads (one profile, or several on one
scale), inspect-step and inspect-dropout. Like ``render``, results in, tables, bars and lines out.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from mlpkit.app.render import add_columns, console, count, fmt_e, fmt_pct, literal, show, shown
from mlpkit.diagnostics.checks import PropertyCheck, TensorCheck

if TYPE_CHECKING:
    from mlpkit.diagnostics.checks import GradcheckReport
    from mlpkit.diagnostics.dropoutreport import DropoutReport
    from mlpkit.diagnostics.gradprofile import GradComparison, GradProfile
    from mlpkit.diagnostics.steptrace import ArrayView, StepTrace


# --------------------------------------------------------------------------- gradcheck


def _verdict(passed: bool) -> str:
    return "[green]pass[/green]" if passed else "[bold red]FAIL[/bold red]"


def _property_table(rows: list[PropertyCheck]) -> Table:
    t = Table(box=box.SIMPLE_HEAD)
    add_columns(t, ("property", "left"), ("measured", "right"), ("expected", "right"), ("bound ±", "right"),
                ("result", "left"), no_wrap="property")
    for row in rows:
        t.add_row(literal(row.name), f"{row.measured:.6g}", f"{row.expected:.6g}", f"{row.bound:.2g}", _verdict(row.passed))
    return t


def _tensor_table(rows: list[TensorCheck]) -> Table:
    t = Table(box=box.SIMPLE_HEAD)
    add_columns(t, ("tensor", "left"), ("shape", "left"), ("checked", "right"), ("skipped", "right"),
                ("max abs err", "right"), ("rel err", "right"), ("result", "left"), no_wrap="tensor")
    for row in rows:
        t.add_row(literal(row.name), "×".join(map(str, row.shape)) or "()", str(row.checked),
                  str(row.skipped) if row.skipped else "", fmt_e(row.max_abs_err), fmt_e(row.rel_err), _verdict(row.passed))
    return t


_CASES = re.compile(r"^(.*) \[worst of (\d+): (.*)\]$")


def _equal_table(rows: list[TensorCheck]) -> Table:
    """The fast-against-textbook rows: each tensor's worst case among its batches, memory orders and routes."""
    t = Table(box=box.SIMPLE_HEAD)
    add_columns(t, ("tensor", "left"), ("cases", "right"), ("worst case", "left"), ("max abs err", "right"),
                ("rel err", "right"), ("result", "left"), no_wrap="tensor")
    for row in rows:
        m = _CASES.match(row.name)
        name, cases, worst = (m.group(1), m.group(2), m.group(3)) if m else (row.name, "1", "")
        t.add_row(literal(name), cases, literal(worst), fmt_e(row.max_abs_err), fmt_e(row.rel_err),
                  _verdict(row.passed))
    return t


def gradcheck_report(r: GradcheckReport) -> None:
    """One row per tensor, parameter change or property, grouped; failing rows list their worst entries."""
    for g in r.groups:
        console.print(Text(g.title, style="bold"))
        properties = [row for row in g.rows if isinstance(row, PropertyCheck)]
        tensors = [row for row in g.rows if isinstance(row, TensorCheck)]
        equal = bool(tensors) and all(row.kind == "equal" for row in tensors)
        show(_property_table(properties) if properties else _equal_table(tensors) if equal else _tensor_table(tensors))
        for prop in properties:
            if not prop.passed:
                console.print(Text(f"  {prop.name}: measured {prop.measured:.6g}, expected {prop.expected:.6g} ± "
                                   f"{prop.bound:.2g} ({prop.detail})", style="red"))
        for row in tensors:
            if row.passed:
                continue
            if row.error:
                console.print(Text(shown(f"  {row.name}: {row.error}"), style="red"))
            first, second = {"step": ("real", "textbook"), "equal": ("fast", "textbook")}.get(
                row.kind, ("analytic", "numeric"))
            for w in row.worst:
                console.print(Text(f"  {row.name}{list(w.index)}: {first} {w.analytic:.6e}, {second} {w.numeric:.6e}, "
                                   f"abs error {w.abs_err:.2e}", style="red"))
    failed = [row.name for g in r.groups for row in g.rows if not row.passed]
    rule = (f"pass: |analytic − numeric| ≤ {r.atol:g} + {r.rtol:g}·|numeric| for every checked entry (eps {r.eps:g}); "
            "a step's real change against its textbook change by the same rule; the fast path against the textbook "
            "functions (nn/reference.py) to float64 rounding")
    console.print(Text(rule, style="dim"))
    if failed:
        console.print(Text(f"FAILED: {len(failed)} check(s): {', '.join(failed)}", style="bold red"), soft_wrap=True)
    else:
        n = sum(len(g.rows) for g in r.groups)
        console.print(Text(f"all {n} checks pass" if n != 1 else "the 1 check passes", style="bold green"))


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


def grad_profile(p: GradProfile, norm: str = "db") -> None:
    """Bars of ‖db‖ (or ‖dW‖) per layer on a log scale, then the numbers at each epoch."""
    from mlpkit.diagnostics.gradprofile import NORMS, norms_of, ratios_of

    snaps = p.snapshots
    console.print(Text(f"{shown(p.description)}: gradient norms on a probe of {p.probe:,} training images "
                       f"(mean gradient, inference mode)", style="bold"))
    values = [v for snap in snaps for v in norms_of(snap, norm) if v > 0]
    if values:
        lo = 10 ** math.floor(math.log10(min(values)))
        hi = 10 ** math.ceil(math.log10(max(values)))
        console.print(Text(f"\n{NORMS[norm].split(':')[0]} per Linear layer, input → output, log scale from "
                           f"{lo:.0e} to {hi:.0e}", style="bold"))
        console.print(Text(NORMS[norm], style="dim"))
        width = max(8, min(_BAR, console.width - 48))
        t = Table(box=None, show_header=False, pad_edge=False)
        t.add_column("layer")
        t.add_column("epoch", justify="right")
        t.add_column("bar", no_wrap=True, min_width=width)
        t.add_column("norm", justify="right")
        t.add_column("ratio", justify="right")
        for j in range(len(snaps[0].linear)):
            for k, snap in enumerate(snaps):
                s = snap.linear[j]
                value, ratio = norms_of(snap, norm)[j], ratios_of(snap, norm)[j]
                style = "cyan" if k == 0 else ("green" if k == len(snaps) - 1 else "blue")
                label = f"{s.layer} {s.shape[0]}→{s.shape[1]}" if k == 0 else ""
                t.add_row(label, f"epoch {snap.epoch}", Text(_bar(value, lo, hi, width), style=style),
                          f"{value:.2e}", f"×{ratio:.3g}")
        show(t)
        start = (f"epoch {snaps[0].epoch} is the trained weights as saved" if p.trained
                 else "epoch 0 is the initialization")
        console.print(Text(f"ratio: {'‖db‖' if norm == 'db' else '‖dW‖'} relative to the last hidden layer; {start}",
                           style="dim"))
    for snap in (snaps[0], snaps[-1]) if len(snaps) > 1 else snaps:  # the bars above show the epochs between
        if p.trained and snap is snaps[0]:
            title = f"trained weights (epoch {snap.epoch})" if p.trained_epoch_known else \
                "trained weights (epoch unknown: the file does not prove it)"
        else:
            title = "at initialization" if snap.epoch == 0 else f"after epoch {snap.epoch}"
        t = Table(title=f"{title}: probe loss {snap.probe_loss:.4f}", box=box.SIMPLE_HEAD, title_justify="left")
        for col in ("layer", "shape", "‖dW‖", "‖db‖", "RMS dW", "RMS db", "‖db‖ / last hidden", "RMS W"):
            t.add_column(col, justify="left" if col in ("layer", "shape") else "right")
        for s in snap.linear:
            t.add_row(s.layer, f"{s.shape[0]}×{s.shape[1]}", f"{s.dW_norm:.3e}", f"{s.db_norm:.3e}",
                      f"{s.dW_rms:.3e}", f"{s.db_rms:.3e}", f"{s.db_ratio:.4f}", f"{s.W_rms:.3g}")
        show(t)
        if snap.activations:
            a = Table(box=box.SIMPLE_HEAD)
            for col in ("activation", "kind", "mean derivative", "units passing ~no gradient"):
                a.add_column(col, justify="left" if col in ("activation", "kind") else "right")
            for act in snap.activations:
                what = "inactive" if act.kind == "relu" else "saturated"
                a.add_row(act.layer, act.kind, f"{act.mean_derivative:.4f}", f"{fmt_pct(act.saturated)} {what}")
            show(a)
            console.print(Text("saturated: derivative below 0.01; inactive (ReLU): output 0, derivative 0",
                               style="dim"))
    if p.reading:
        console.print(Text(f"reading: {p.reading}", style="bold"))


def grad_comparison(c: GradComparison) -> None:
    """Several profiles on one shared log scale: per layer, a bar for each, at initialization and at the last
    epoch; then the ratios side by side, and each profile's reading."""
    from mlpkit.diagnostics.gradprofile import norms_of, ratios_of

    names = [shown(p.description.split(":")[0]) for p in c.profiles]
    width = max(10, min(_BAR, console.width - max(len(n) for n in names) - 22))
    console.print(Text(f"{c.norm_label.split(':')[0]} per Linear layer, input → output, on one log scale from "
                       f"{c.lo:.0e} to {c.hi:.0e}", style="bold"))
    console.print(Text(f"{c.norm_label}; mean gradient on a probe of {c.profiles[0].probe:,} training images, "
                       "inference mode", style="dim"))
    for p, name in zip(c.profiles, names):
        console.print(Text(f"  {name}: {shown(p.description.split(': ', 1)[-1])}", style="dim"))
    picks = sorted({0, len(c.profiles[0].snapshots) - 1})
    for k in picks:
        epochs = {p.snapshots[min(k, len(p.snapshots) - 1)].epoch for p in c.profiles}
        label = "at initialization" if epochs == {0} and not c.profiles[0].trained else \
            "after epoch " + "/".join(str(e) for e in sorted(epochs))
        console.print(Text(f"\n{label}", style="bold"))
        t = Table(box=None, show_header=False, pad_edge=False)
        for col, kw in (("who", {}), ("bar", {"no_wrap": True, "min_width": width}), ("value", {"justify": "right"}),
                        ("ratio", {"justify": "right"})):
            t.add_column(col, **kw)
        for j, s in enumerate(c.profiles[0].snapshots[0].linear):
            t.add_row(Text(f"{s.layer} {s.shape[0]}→{s.shape[1]}", style="bold"), "", "", "")
            for p, name, style in zip(c.profiles, names, ("cyan", "magenta", "green", "yellow", "blue")):
                snap = p.snapshots[min(k, len(p.snapshots) - 1)]
                if j >= len(snap.linear):
                    continue
                value, ratio = norms_of(snap, c.norm)[j], ratios_of(snap, c.norm)[j]
                t.add_row(f"  {name}", Text(_bar(value, c.lo, c.hi, width), style=style), f"{value:.2e}",
                          f"×{ratio:.3g}")
        show(t)
    r = Table(title="ratio to the last hidden layer, side by side", box=box.SIMPLE_HEAD, title_justify="left")
    r.add_column("layer")
    for p, name in zip(c.profiles, names):
        for k in picks:
            snap = p.snapshots[min(k, len(p.snapshots) - 1)]
            r.add_column(f"{name}\nepoch {snap.epoch}", justify="right")
    for j, s in enumerate(c.profiles[0].snapshots[0].linear):
        cells = []
        for p in c.profiles:
            for k in picks:
                snap = p.snapshots[min(k, len(p.snapshots) - 1)]
                cells.append(f"×{ratios_of(snap, c.norm)[j]:.3g}" if j < len(snap.linear) else "")
        r.add_row(s.layer, *cells)
    show(r)
    for p, name in zip(c.profiles, names):
        if p.reading:
            console.print(Text(f"{name}: {p.reading}", style="bold"))


# --------------------------------------------------------------------------- inspect-step


def _shape(v: ArrayView) -> str:
    return "(" + ", ".join(map(str, v.shape)) + ("," if len(v.shape) == 1 else "") + ")"


def _values(v: ArrayView) -> str:
    more = " …" if v.shape and (v.shape[-1] > len(v.first)) else ""
    return " ".join(f"{x:+.3g}" for x in v.first) + more


def _line(text: str, style: str | None = None) -> None:
    console.print(Text(text, style=style or ""), soft_wrap=True)


def step_trace(t: StepTrace) -> None:
    """One training step, layer by layer, in lines under 60 columns: forward, loss, backward, update, masks."""
    show_layer = (lambda i: True) if t.layer is None else (lambda i: i == t.layer)
    _line(shown(t.description), "bold")
    _line(f"one training step: {count(t.examples, 'example')}, labels {t.labels}")
    _line(f"lr {t.lr:g} · momentum {t.momentum:g} · weight decay {t.weight_decay:g}")
    _line("values: the first example's first entries; mean and", "dim")
    _line("std over the whole batch; ‖·‖ the L2 (Frobenius) norm", "dim")
    _line("")
    _line("FORWARD", "bold")
    _line(f"    x {_shape(t.input)}  {_values(t.input)}")
    for r in t.forward:
        if not show_layer(r.index):
            continue
        _line(f"[{r.index}] {r.layer}  {r.formula}", "cyan")
        _line(f"    {_shape(r.out)}  {_values(r.out)}")
        _line(f"    mean {r.out.mean:+.4g}  std {r.out.std:.4g}")
    _line("")
    _line(f"LOSS  {t.formulas['loss']}", "bold")
    _line(f"    = {t.loss:.6g}")
    _line("")
    _line("BACKWARD  (output layer first)", "bold")
    _line(f"    {t.formulas['dlogits']}")
    _line(f"    {_shape(t.dlogits)}  ‖·‖ {t.dlogits.norm:.4g}")
    for b in t.backward:
        if not show_layer(b.index):
            continue
        _line(f"[{b.index}] {b.layer}", "cyan")
        for formula, g in b.grads.values():
            _line(f"    {formula}  {_shape(g)}  ‖·‖ {g.norm:.4g}")
        if b.dx is None:
            _line("    dx: not computed (no layer below reads it)", "dim")
        else:
            _line(f"    {b.dx_formula}  {_shape(b.dx)}  ‖·‖ {b.dx.norm:.4g}")
    _line("")
    _line("UPDATE", "bold")
    _line(f"    {t.formulas['update']}")
    for u in t.update:
        if not show_layer(int(u.name.split(".")[1])):
            continue
        vel = f"  ‖v‖ {u.velocity_norm:.3g}" if u.velocity_norm is not None else ""
        _line(f"{u.name}  ‖g‖ {u.grad_norm:.3g}{vel}  ‖Δ‖ {u.change.norm:.3g}")
        _line(f"    Δ {_values(u.change)}")
    masks = [m for m in t.masks if show_layer(m.index)]
    if masks:
        _line("")
        _line("DROPOUT MASKS  (0 = dropped, survivors × 1/(1 − p))", "bold")
        for m in masks:
            _line(f"[{m.index}] p {m.p:g}: kept {fmt_pct(m.kept)}, ×{m.scale:.4g}", "cyan")
            _line("    " + " ".join(f"{x:.4g}" for x in m.first) + " …")


# --------------------------------------------------------------------------- dropout report


def dropout_report(r: DropoutReport) -> None:
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
    t.add_row("training (dropout on, one pass)", f"{r.train_mode.loss:.4f}", fmt_pct(r.train_mode.accuracy))
    t.add_row("inference (dropout off)", f"{r.eval_mode.loss:.4f}", fmt_pct(r.eval_mode.accuracy))
    t.add_row(f"MC dropout (mean of {r.passes} training passes)", "", fmt_pct(r.mc_accuracy))
    show(t)
    console.print(f"across {r.passes} training-mode passes: std of the predicted class's probability "
                  f"{r.mc_prob_std:.4f} (mean over examples); argmax agrees with inference mode "
                  f"{fmt_pct(r.mc_agreement)} of the time")
