"""Figures, where matplotlib is installed (the optional ``plot`` extra)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .errors import MlpkitError
from .atomic import atomic_write

INSTALL_HINT = "pip install 'mlpkit[plot]' (or pip install matplotlib)"


def require_matplotlib() -> Any:
    """Import matplotlib with a headless backend, or explain how to get it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MlpkitError(f"--plot needs matplotlib, which is not installed; install it with {INSTALL_HINT}") from None
    return plt


def check_plot_path(path: str | Path) -> Path:
    p = Path(path)
    if p.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise MlpkitError(f"--plot {p}: the file must end in .png, .svg or .pdf")
    if not p.parent.exists() or not p.parent.is_dir():
        raise MlpkitError(f"--plot {p}: the folder {p.parent} does not exist")
    return p


def save_figure(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".").lower(), dpi=110, bbox_inches="tight")
    try:
        atomic_write(path, buf.getvalue())
    except OSError as e:
        raise MlpkitError(f"--plot {path}: cannot be written ({e.strerror or e})") from None


def plot_grad_profile(profile: Any, path: str | Path, title: str | None = None) -> Path:
    """‖db‖ per Linear layer (log scale), one line per epoch."""
    plt = require_matplotlib()
    p = check_plot_path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    cmap = plt.get_cmap("viridis")
    n = len(profile.snapshots)
    labels = [s.layer for s in profile.snapshots[0].linear]
    for k, snap in enumerate(profile.snapshots):
        ax.plot(range(len(labels)), [s.db_norm for s in snap.linear], marker="o",
                color=cmap(k / max(n - 1, 1)), label="init" if snap.epoch == 0 else f"epoch {snap.epoch}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), [f"{s.layer}\n{s.shape[0]}→{s.shape[1]}" for s in profile.snapshots[0].linear],
                  fontsize=8)
    ax.set_ylabel("‖db‖  (mean bias gradient on the probe)")
    ax.set_title(title or profile.description, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, p)
    plt.close(fig)
    return p
