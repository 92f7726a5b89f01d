"""Drawing the reports of the housekeeping commands: predict, export, data preview, runs, compare and data.
Like ``render``, results in, tables and bars out. The inspections' reports are in ``app.inspection``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from mlpkit.app.render import add_columns, console, fmt_pct, literal, show, shown

if TYPE_CHECKING:
    import numpy as np

    from mlpkit.app.catalog import Comparison, RunRow
    from mlpkit.app.export import Exported
    from mlpkit.app.predict import Predictions
    from mlpkit.app.preview import Preview
    from mlpkit.app.sources import Downloaded
    from mlpkit.data.cache import DatasetStatus
    from mlpkit.data.core import DatasetSummary


# --------------------------------------------------------------------------- data


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n else "—"


def predictions(r: Predictions, images: list[np.ndarray] | None = None) -> None:
    """Each input's top classes; with ``images``, the picture the model saw above its answer."""
    from mlpkit.data.images import block_art

    for k, item in enumerate(r.items):
        if images is not None:
            console.print(Text(block_art(images[k]), style="white on black"), soft_wrap=True)
        guesses = ", ".join(f"{shown(g.name)} {100 * g.probability:.1f}%" for g in item.top)
        note = "" if item.prepared else " (used as given)"
        console.print(Text(f"{shown(item.source)}{note}: ") + Text(shown(item.top[0].name), style="bold")
                      + Text(f"  ({guesses})"))


def exported(r: Exported) -> None:
    stack = " → ".join(d["type"] + (f"({d['in_features']}, {d['out_features']})" if d["type"] == "Linear" else "")
                       for d in r.layers if d["type"] != "Dropout")
    console.print(f"{r.format} written to {literal(r.file)} ({r.bytes:,} bytes): {stack}")


def augment_preview(p: Preview) -> None:
    """Each training image, then its augmented versions, side by side in block characters."""
    import numpy as np

    from mlpkit.data.images import block_art

    rows = [np.asarray(p.originals)] + [np.asarray(a) for a in p.augmented]
    per_line = max(1, console.width // (2 * rows[0].shape[2] + 2) // len(rows))
    console.print(f"{literal(p.dataset)}: each original, then {len(rows) - 1} augmented version(s)")
    for start in range(0, rows[0].shape[0], per_line):
        arts = [block_art(r[k]).split("\n") for k in range(start, min(start + per_line, rows[0].shape[0]))
                for r in rows]
        for line in zip(*arts):
            console.print(Text("  ".join(line), style="white on black"), soft_wrap=True)
        console.print("")


def run_list(rows: list[RunRow]) -> None:
    if not rows:
        console.print("no runs here")
        return
    t = Table(box=box.SIMPLE_HEAD)
    add_columns(t, ("run", "left"), ("config", "left"), ("started", "left"), ("epochs", "right"),
                ("best val", "right"), ("test acc", "right"), ("status", "left"))
    styles = {"finished": "green", "running": "cyan", "interrupted": "yellow", "diverged": "red"}
    for r in rows:
        planned = f"/{r.epochs_planned}" if r.epochs_planned is not None else ""
        started = (r.started or "—")[:16].replace("T", " ")
        t.add_row(literal(r.name), literal(Path(r.config).name) if r.config else "—", started,
                  f"{r.epochs_done}{planned}", fmt_pct(r.best_val_acc), fmt_pct(r.test_acc),
                  Text(r.status, style=styles.get(r.status, "")))
    show(t)


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:.3e}"
    if v is None:
        return "—"
    return str(v)


def comparison(c: Comparison) -> None:
    names = [Path(r).name for r in c.runs]
    t = Table(title="final metrics", box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("metric")
    for n in names:
        t.add_column(literal(n), justify="right")
    for metric, values in c.metrics:
        t.add_row(metric, *[fmt_pct(v) if "acc" in metric and isinstance(v, float) else _cell(v) for v in values])
    show(t)
    if not c.differences:
        console.print("the configs are identical")
        return
    d = Table(title="config keys that differ", box=box.SIMPLE_HEAD, title_justify="left")
    d.add_column("key")
    for n in names:
        d.add_column(literal(n), justify="right")
    for key, values in c.differences:
        d.add_row(literal(key), *[literal(_cell(v)) for v in values])
    show(d)


def downloaded(r: Downloaded) -> None:
    console.print(f"{literal(r.dataset)}: {len(r.files)} files present and verified in {literal(r.folder)}")


def dataset_list(rows: list[DatasetStatus]) -> None:
    t = Table(box=box.SIMPLE_HEAD)
    for col in ("dataset", "train", "test", "classes", "download", "status", "folder"):
        t.add_column(col, justify="right" if col in ("train", "test", "classes", "download") else "left")
    for r in rows:
        style = "green" if r.status in ("present", "embedded") else ("red" if r.status.startswith("corrupt") else
                                                                     "yellow" if r.status.startswith("unverified") else "")
        t.add_row(literal(r.name), f"{r.n_train:,}", f"{r.n_test:,}", str(r.num_classes), _mb(r.download_bytes),
                  Text(shown(r.status), style=style), literal(r.folder))
    show(t)


def dataset_info(s: DatasetSummary) -> None:
    console.print(f"[bold]{literal(s.name)}[/bold] from {literal(s.source)}")
    console.print(f"train {tuple(s.x_train_shape)}, test {tuple(s.x_test_shape)}, images {tuple(s.image_shape)}, "
                  f"{s.dtype}, pixels {s.pixel_min:g}..{s.pixel_max:g} (scaled by {s.scale:.6g} to model inputs), "
                  f"{s.memory_bytes / 1e6:.1f} MB in memory")
    t = Table(box=box.SIMPLE_HEAD)
    for col in ("class", "name", "train", "test"):
        t.add_column(col, justify="right" if col in ("train", "test") else "left")
    for i, (a, b) in enumerate(zip(s.train_per_class, s.test_per_class)):
        t.add_row(str(i), literal(s.class_names[i]) if i < len(s.class_names) else "", f"{a:,}", f"{b:,}")
    t.add_row("all", "", f"{sum(s.train_per_class):,}", f"{sum(s.test_per_class):,}", style="bold")
    show(t)
