"""Figures, where matplotlib is installed (the optional ``plot`` extra)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlpkit.errors import MlpkitError
from mlpkit.writer import atomic_write

INSTALL_HINT = "pip install 'mlpkit[plot]' (or pip install matplotlib)"


def require_matplotlib(what: str = "--plot") -> Any:
    """Import matplotlib with a headless backend, or explain how to get it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MlpkitError(f"{what} needs matplotlib, which is not installed; install it with {INSTALL_HINT}") from None
    return plt


def check_plot_path(path: str | Path, what: str = "--plot") -> Path:
    p = Path(path)
    if p.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise MlpkitError(f"{what} {p}: the file must end in .png, .svg or .pdf")
    if not p.parent.exists() or not p.parent.is_dir():
        raise MlpkitError(f"{what} {p}: the folder {p.parent} does not exist")
    return p


def save_figure(fig: Any, path: Path, what: str = "--plot", inputs: Iterable[str | Path] = ()) -> None:
    """Write the figure atomically; never onto one of ``inputs`` (the files, or inside the folders, the command
    read)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".").lower(), dpi=110, bbox_inches="tight")
    try:
        atomic_write(path, buf.getvalue(), inputs)
    except OSError as e:
        raise MlpkitError(f"{what} {path}: cannot be written ({e.strerror or e})") from None


# Colors readable on white (matplotlib's tab10 without its light grey and olive): one per run.
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#0b7285")


def plot_runs(curves: list[tuple[str, list[dict]]], path: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Learning curves of one or more runs, overlaid: losses, accuracies, and per-layer ‖dW‖ per epoch."""
    plt = require_matplotlib("mlpkit plot")
    p = check_plot_path(path, "-o")
    fig, (ax_loss, ax_acc, ax_grad) = plt.subplots(1, 3, figsize=(15, 4.2))
    for k, (name, rows) in enumerate(curves):
        color = RUN_COLORS[k % len(RUN_COLORS)]
        ep = [r.get("epoch") for r in rows]
        for key, style, label in (("train_loss", "-", "train, as trained"), ("train_eval_loss", "--", "train, eval mode"),
                                  ("val_loss", ":", "validation")):
            ys = [r.get(key) for r in rows]
            if any(isinstance(v, (int, float)) for v in ys):
                ax_loss.plot(ep, [v if isinstance(v, (int, float)) else float("nan") for v in ys], style,
                             color=color, label=f"{name}: {label}")
        for key, style, label in (("train_eval_acc", "--", "train, eval mode"), ("val_acc", "-", "validation")):
            ys = [r.get(key) for r in rows]
            if any(isinstance(v, (int, float)) for v in ys):
                ax_acc.plot(ep, [100 * v if isinstance(v, (int, float)) else float("nan") for v in ys], style,
                            color=color, label=f"{name}: {label}")
        layers = sorted({k for r in rows for k in (r.get("grad_norms") or {}) if k.endswith(".W")},
                        key=lambda n: int(n.split(".")[1]))
        for j, layer in enumerate(layers):
            ys = [(r.get("grad_norms") or {}).get(layer) for r in rows]
            ax_grad.plot(ep, [v if isinstance(v, (int, float)) and v > 0 else float("nan") for v in ys],
                         ("-", "--", ":", "-.")[j % 4], color=color, marker="o", markersize=3,
                         label=f"{name}: {layer.removesuffix('.W')}")
    ax_loss.set(title="loss", xlabel="epoch", ylabel="mean softmax cross-entropy")
    ax_acc.set(title="accuracy", xlabel="epoch", ylabel="%")
    ax_grad.set(title="mean ‖dW‖ per Linear layer", xlabel="epoch")
    ax_grad.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc, ax_grad):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # an axis with no readable series has no legend
            ax.legend(fontsize=7)
    save_figure(fig, p, "-o", inputs)
    plt.close(fig)
    return p


def plot_grad_profiles(profiles: list[Any], path: str | Path, norm: str = "db",
                       inputs: Iterable[str | Path] = ()) -> Path:
    """‖db‖ (or ‖dW‖) per Linear layer on a log scale shared by every profile and decade-aligned. One profile:
    a line per epoch (viridis, init to last). Several: a colour per profile, solid at the first snapshot and
    dashed at the last, so that sigmoid and ReLU are compared on the same axis."""
    from mlpkit.diagnostics.gradprofile import NORMS, compare_profiles, norms_of

    plt = require_matplotlib()
    p = check_plot_path(path)
    scale = compare_profiles(profiles, norm)
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    labels = [f"{s.layer}\n{s.shape[0]}→{s.shape[1]}" for s in profiles[0].snapshots[0].linear]
    if len(profiles) == 1:
        snaps = profiles[0].snapshots
        cmap = plt.get_cmap("viridis")
        for k, snap in enumerate(snaps):
            values = norms_of(snap, norm)
            ax.plot(range(len(values)), values, marker="o", color=cmap(0.8 * k / max(len(snaps) - 1, 1)),
                    label="init" if snap.epoch == 0 else f"epoch {snap.epoch}")  # viridis past 0.8: unreadable
        title = profiles[0].description
    else:
        for j, prof in enumerate(profiles):
            color = RUN_COLORS[j % len(RUN_COLORS)]
            name = prof.description.split(":")[0]
            firsts = [prof.snapshots[0], prof.snapshots[-1]] if len(prof.snapshots) > 1 else prof.snapshots[:1]
            for snap, style in zip(firsts, ("-", "--")):
                values = norms_of(snap, norm)
                when = "init" if snap.epoch == 0 and not prof.trained else f"epoch {snap.epoch}"
                ax.plot(range(len(values)), values, marker="o", linestyle=style, color=color,
                        label=f"{name}, {when}")
        title = " vs ".join(prof.description.split(":")[0] for prof in profiles) + ": one shared scale"
    ax.set_yscale("log")
    ax.set_ylim(scale.lo, scale.hi)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel(NORMS[norm].split(" (")[0] + "  (mean gradient on the probe)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, p, inputs=inputs)
    plt.close(fig)
    return p
