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


# One visual language in every panel: colour is the run (in the ‖dW‖ panel, the layer), line style the split,
# marker shape the run again, placed at staggered epochs so that two identical runs both stay visible.
SPLIT_STYLES = {"train_loss": "-", "train_eval_loss": "--", "train_eval_acc": "--", "val_loss": ":",
                "val_acc": ":"}
SPLIT_NAMES = {"train_loss": "train, as trained", "train_eval_loss": "train, inference mode",
               "train_eval_acc": "train, inference mode", "val_loss": "validation", "val_acc": "validation"}
RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_runs(curves: list[tuple[str, list[dict]]], path: str | Path, inputs: Iterable[str | Path] = (),
              tests: list[float | None] | None = None) -> Path:
    """Learning curves of one or more runs, overlaid: losses, accuracies (with each run's test accuracy
    marked), and per-layer ‖dW‖ per epoch. Colour = run (layer in the ‖dW‖ panel), line style = split,
    marker = run."""
    from matplotlib.ticker import MaxNLocator

    plt = require_matplotlib("mlpkit plot")
    p = check_plot_path(path, "-o")
    fig, (ax_loss, ax_acc, ax_grad) = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    n = len(curves)
    seen: dict[str, int] = {}
    names = []
    for name, _ in curves:  # the same folder name twice: "run" and "run (2)", so no two legend entries match
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    for k, ((_, rows), name) in enumerate(zip(curves, names)):
        color, marker = RUN_COLORS[k % len(RUN_COLORS)], RUN_MARKERS[k % len(RUN_MARKERS)]
        ep = [r.get("epoch") for r in rows]
        every = (k % max(1, min(n, len(ep))), max(1, min(n, len(ep))))  # staggered: identical runs both show
        size = 4 + 2.5 * (n - 1 - k)  # and concentric where they meet: the first run's marker is the largest
        for ax, keys, scale in ((ax_loss, ("train_loss", "train_eval_loss", "val_loss"), 1.0),
                                (ax_acc, ("train_eval_acc", "val_acc"), 100.0)):
            for key in keys:
                ys = [r.get(key) for r in rows]
                if any(isinstance(v, (int, float)) for v in ys):
                    ax.plot(ep, [scale * v if isinstance(v, (int, float)) else float("nan") for v in ys],
                            SPLIT_STYLES[key], color=color, marker=marker, markevery=every, markersize=size,
                            label=f"{name}: {SPLIT_NAMES[key]}")
        test = (tests or [None] * n)[k]
        if isinstance(test, float) and ep:
            ax_acc.plot([ep[-1]], [100 * test], marker="*", markersize=14 + 4 * (n - 1 - k), color=color, linestyle="none",
                        markeredgecolor="black", label=f"{name}: test {100 * test:.2f} %")
        layers = sorted({key for r in rows for key in (r.get("grad_norms") or {}) if key.endswith(".W")},
                        key=lambda s: int(s.split(".")[1]))
        cmap = plt.get_cmap("viridis")
        for j, layer in enumerate(layers):
            ys = [(r.get("grad_norms") or {}).get(layer) for r in rows]
            ax_grad.plot(ep, [v if isinstance(v, (int, float)) and v > 0 else float("nan") for v in ys], "-",
                         color=cmap(0.85 * j / max(len(layers) - 1, 1)), marker=marker, markevery=every,
                         markersize=size, label=f"{name}: {layer.removesuffix('.W')}")
    ax_loss.set(title="loss", xlabel="epoch", ylabel="mean softmax cross-entropy")
    ax_acc.set(title="accuracy (★: test)", xlabel="epoch", ylabel="accuracy (%)")
    ax_grad.set(title="mean ‖dW‖ per Linear layer (colour: layer)", xlabel="epoch", ylabel="‖dW‖")
    ax_grad.set_yscale("log")
    for ax in (ax_loss, ax_acc, ax_grad):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # an axis with no readable series has no legend
            ax.legend(fontsize=7)
    fig.suptitle("runs: " + ", ".join(names) + "   (line style: split; marker: run)",
                 fontsize=11)
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


def draw_confusion(ax: Any, confusion: list[list[int]], names: list[str], fontsize: int) -> None:
    """A confusion matrix as a heatmap on ``ax``: each row normalized (the share of a true class given each
    answer), its counts written in the cells where there are few enough classes to read them."""
    import numpy as np

    m = np.asarray(confusion, dtype=np.float64)
    rows = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    c = len(names)
    ax.set_xticks(range(c), [n[:8] for n in names], rotation=90 if c > 10 else 0, fontsize=fontsize)
    ax.set_yticks(range(c), [n[:8] for n in names], fontsize=fontsize)
    ax.set(xlabel="predicted", ylabel="true")
    if c <= 20:
        for i in range(c):
            for j in range(c):
                if m[i, j]:
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=fontsize - 1,
                            color="white" if rows[i, j] > 0.5 else "black")


def plot_evaluation(ev: Any, path: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """``evaluate --plot``: the confusion matrix as a heatmap (row-normalized, counts written) beside the test
    images the model got most confidently wrong, each titled with the true class, the answer and its
    probability. ``ev`` is ``htmlreport.RunEvaluation``."""

    plt = require_matplotlib("--plot")
    p = check_plot_path(path)
    shown = [m for m in ev.mistakes if m.image is not None][:12]
    fig = plt.figure(figsize=(13, 5.6), layout="constrained")
    grid = fig.add_gridspec(3, 8)
    ax = fig.add_subplot(grid[:, :4])
    draw_confusion(ax, ev.confusion, ev.class_names, 8)
    ax.set_title(f"confusion matrix (test: {100 * ev.accuracy:.2f} %)")
    for k in range(12):
        sub = fig.add_subplot(grid[k // 4, 4 + k % 4])
        sub.axis("off")
        if k < len(shown):
            mk = shown[k]
            sub.imshow(mk.image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            sub.set_title(f"true {mk.true[:10]}\nsaid {mk.predicted[:10]} {100 * mk.probability:.0f} %", fontsize=8)
    fig.suptitle(f"{ev.name}: the most confidently wrong test images, right", fontsize=11)
    save_figure(fig, p, inputs=inputs)
    plt.close(fig)
    return p


def plot_sweep(name: str, storage: str, path: str | Path) -> list[Path]:
    """A sweep's optimization history to ``path``, its parallel coordinates and slices beside it
    (optuna.visualization.matplotlib)."""
    require_matplotlib()
    p = check_plot_path(path)
    import optuna
    from optuna.visualization import matplotlib as ovm

    study = optuna.load_study(study_name=name, storage=storage)
    written = []
    for suffix, draw in (("", ovm.plot_optimization_history), ("-parallel", ovm.plot_parallel_coordinate),
                         ("-slice", ovm.plot_slice)):
        target = p.with_name(p.stem + suffix + p.suffix)
        import warnings

        with warnings.catch_warnings():  # optuna marks its matplotlib plots experimental
            warnings.simplefilter("ignore")
            axes: Any = draw(study)
        first = axes.ravel()[0] if hasattr(axes, "ravel") else axes  # plot_slice gives an array of axes
        fig = first.figure
        save_figure(fig, target)
        written.append(target)
    return written
