"""Drawing the reports of the housekeeping commands: evaluate, predict, export, data preview, runs, compare and data.
Like ``render``, results in, tables and bars out. The inspections' reports are in ``app.inspection``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from mlpkit.app.render import add_columns, console, count, fmt_pct, literal, show, shown

if TYPE_CHECKING:
    import numpy as np

    from mlpkit.app.catalog import Comparison, RunRow
    from mlpkit.app.export import Exported
    from mlpkit.app.predict import Predictions
    from mlpkit.app.preview import ClassPreview, Preview
    from mlpkit.app.sources import Downloaded
    from mlpkit.app.sweep import SweepSummary
    from mlpkit.data.cache import DatasetStatus
    from mlpkit.data.core import DatasetSummary
    from mlpkit.training.metrics import EvalResult


# --------------------------------------------------------------------------- data


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n else "—"


def predictions(r: Predictions, images: tuple[list[np.ndarray], list[np.ndarray | None]] | None = None) -> None:
    """Each input's top classes; with ``images`` (what the model saw, each picture as given), the picture and
    the model's view side by side above its answer."""
    import numpy as np

    from mlpkit.data.images import block_art, thumbnail

    for k, item in enumerate(r.items):
        if images is not None:
            seen, given = images[0][k], images[1][k]
            zoom = max(1, -(-16 // seen.shape[0]))  # an 8×8 digits input drawn at 16 rows
            view = np.kron(seen, np.ones((zoom, zoom)))
            left = block_art(thumbnail(given * 255.0, view.shape[0], view.shape[1])).split("\n") if given is not None \
                else None
            right = block_art(view).split("\n")
            if left is None:
                console.print(Text("\n".join(right), style="white on black"), soft_wrap=True)
            elif max(len(a) for a in left) + 3 + len(right[0]) > console.width:  # narrow: one above the other
                console.print(Text("as given", style="dim"))
                console.print(Text("\n".join(left), style="white on black"), soft_wrap=True)
                console.print(Text(f"as the model saw it ({r.preparation})", style="dim"))
                console.print(Text("\n".join(right), style="white on black"), soft_wrap=True)
            else:
                width = max(len(line) for line in left)
                console.print(Text(f"{'as given':<{width}}   as the model saw it ({r.preparation})", style="dim"),
                              soft_wrap=True)
                lines = [f"{a:<{width}}   {b}" for a, b in zip(left, right)]
                console.print(Text("\n".join(lines), style="white on black"), soft_wrap=True)
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

    from mlpkit.app.preview import settings_text
    from mlpkit.data.images import block_art

    rows = [np.asarray(p.originals)] + [np.asarray(a) for a in p.augmented]
    per_line = max(1, console.width // (2 * rows[0].shape[2] + 2) // len(rows))
    versions = len(rows) - 1
    console.print(f"{literal(p.dataset)}: each original (left), then {count(versions, 'augmented copy', 'augmented copies')}")
    console.print(Text(f"settings: {settings_text(p.settings)}", style="dim"))
    for start in range(0, rows[0].shape[0], per_line):
        arts = [block_art(r[k]).split("\n") for k in range(start, min(start + per_line, rows[0].shape[0]))
                for r in rows]
        for line in zip(*arts):
            console.print(Text("  ".join(line), style="white on black"), soft_wrap=True)
        console.print("")


def class_preview(p: ClassPreview) -> None:
    """The first training examples of each class, one row per class, as many as fit the terminal."""
    import numpy as np

    from mlpkit.data.images import block_art

    total = sum(p.counts)
    console.print(f"{literal(p.dataset)}: {count(total, 'training example')} in "
                  f"{count(len(p.counts), 'class', 'classes')}")
    for c, (name, n, examples) in enumerate(zip(p.class_names, p.counts, p.examples)):
        label = f"{c} {shown(name)}" if name != str(c) else str(c)
        console.print(Text(f"{label}: {count(n, 'example')}", style="bold"))
        if not examples:
            continue
        imgs = np.asarray(examples)
        side = imgs.shape[2]
        if side > 14:  # the terminal gets a smaller copy: two characters per pixel
            k = -(-side // 14)
            h, w = imgs.shape[1] // k * k, side // k * k
            imgs = imgs[:, :h, :w].reshape(len(imgs), h // k, k, w // k, k).mean(axis=(2, 4))
        per_line = max(1, (console.width + 2) // (2 * imgs.shape[2] + 2))
        arts = [block_art(img).split("\n") for img in imgs[:per_line]]
        for line in zip(*arts):
            console.print(Text("  ".join(line), style="white on black"), soft_wrap=True)


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
    console.print(Text("\nconfig keys that differ", style="bold"))
    rest = [(k, v) for k, v in c.differences if k != "model.layers"]
    for key, values in c.differences:
        if key == "model.layers":  # whole architectures, one line each
            console.print(Text("model.layers"))
            for n, v in zip(names, values):
                console.print(Text(f"  {shown(n)}: {shown(_cell(v))}"))
    if rest:
        d = Table(box=box.SIMPLE_HEAD)
        d.add_column("key")
        for n in names:
            d.add_column(literal(n), justify="right")
        for key, values in rest:
            d.add_row(literal(key), *[literal(f"{v:.6g}" if isinstance(v, float) else _cell(v)) for v in values])
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


# --------------------------------------------------------------------------- evaluate


def eval_result(r: EvalResult, source: str) -> None:
    console.print(
        f"[bold]{literal(source)}[/bold] on the {r.split} split ({count(r.n, 'example')}): "
        f"loss {r.loss:.4f}, accuracy [bold]{fmt_pct(r.accuracy)}[/bold]"
    )
    names = r.class_names or [str(i) for i in range(len(r.per_class_accuracy))]
    t = _confusion_table(r, names, compact=False)
    if _width(t) > console.width:  # narrow terminal: still a matrix, tighter (class names in a legend)
        t = _confusion_table(r, names, compact=True)
        if any(n != str(i) for i, n in enumerate(names)):
            console.print(Text("classes: " + ", ".join(f"{i} {shown(n)}" for i, n in enumerate(names))))
    show(t)


def _width(t: Table) -> int:
    return Measurement.get(console, console.options.update_width(100_000), t).maximum


def _confusion_table(r: EvalResult, names: list[str], compact: bool) -> Table:
    """Rows: true class; columns: predicted. Compact: single-space padding, no n column, accuracy as "85.7"."""
    t = Table(title="confusion matrix (rows: true class, columns: predicted)", box=box.SIMPLE_HEAD,
              title_justify="left", padding=(0, 0 if compact else 1), pad_edge=not compact)
    t.add_column("true" if not compact else "", justify="left")
    digits = max(len(str(v)) for row in r.confusion for v in row) if r.confusion else 1
    for j in range(len(names)):
        t.add_column(str(j), justify="right", min_width=digits + 1 if compact else None)
    if not compact:
        t.add_column("n", justify="right")
    t.add_column("accuracy" if not compact else "acc %", justify="right", min_width=7 if compact else None)
    for i, row in enumerate(r.confusion):
        cells = [f"[bold]{v}[/bold]" if i == j else (str(v) if v else "[dim]·[/dim]") for j, v in enumerate(row)]
        label = str(i) if compact or names[i] == str(i) else f"{i} {literal(names[i])}"
        acc = fmt_pct(r.per_class_accuracy[i]) if not compact else f"{100 * r.per_class_accuracy[i]:.1f}"
        t.add_row(label, *cells, *([] if compact else [str(sum(row))]), acc)
    return t


def sweep_summary(s: SweepSummary) -> None:
    """The best trials first, in a table that fits 60 columns (parameters on their own lines), then the
    parameter importances."""
    done = [t for t in s.trials if t.state == "complete"]
    console.print(Text(f"sweep {shown(s.name)}: {count(len(s.trials), 'trial')}, {len(done)} complete; "
                       f"objective {s.direction}d", style="bold"))
    console.print(Text("trial  state       value  (best first)", style="dim"))
    for r in s.trials[:10]:  # one line per trial, its parameters indented below: readable at 60 columns
        value = f"{r.value:.4f}" if r.value is not None else "—"
        console.print(f"{r.number:>5}  {r.state:<9} {value:>7}")
        for k, v in r.params.items():
            console.print(Text(f"         {k} = {v:.4g}" if isinstance(v, float) else f"         {k} = {v}"),
                          soft_wrap=True)
    if s.importances:
        console.print(Text("parameter importances (fANOVA)", style="bold"))
        for k, v in sorted(s.importances.items(), key=lambda kv: -kv[1]):
            console.print(f"  {literal(k)}  {v:.2f}")
