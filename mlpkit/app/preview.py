"""``mlpkit data preview``: a dataset's examples of each class, or a config's training images beside their
augmented copies; as data, in the terminal, or as a labelled PNG grid.
"""

from __future__ import annotations

import dataclasses
import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpkit.app.configfile import load_config
from mlpkit.app.sources import DataSource, load_data_for
from mlpkit.config.validate import config_from_dict
from mlpkit.errors import ConfigError, OutputError

PER_CLASS = 8  # examples of each class in a class preview (the terminal shows as many as fit one row)


@dataclass(frozen=True)
class ClassPreview:
    """The first training examples of each class of a dataset, for ``mlpkit data preview DATASET``."""

    dataset: str
    class_names: list[str]
    counts: list[int]  # training examples of each class
    examples: list[list[list[list[float]]]]  # (C, ≤n, H, W) in [0, 1]
    inputs: tuple[str, ...] = ()


def is_config(target: str | Path) -> bool:
    return Path(target).suffix.lower() in (".yaml", ".yml")


def preview_classes(target: str | Path, overrides: tuple[str, ...] = (), data: DataSource | str | None = None,
                    n: int = PER_CLASS) -> ClassPreview:
    """Up to ``n`` training examples of each class of a dataset (a name, a path) or of a config's dataset."""
    if is_config(target):
        cfg = load_config(target, overrides)
    else:
        if overrides:
            raise ConfigError(f"--set applies to configs; {target} is a dataset")
        cfg = config_from_dict({"data": {"dataset": str(target)}, "model": {"layers": [{"linear": 10}]}},
                               "data preview")
    ds = load_data_for(cfg, data)
    if len(ds.image_shape) != 2:
        raise ConfigError(f"{ds.name}: its examples are not images (shape {ds.image_shape}); there is nothing to draw")
    h, w = ds.image_shape
    top = float(ds.pixel_max)
    y = ds.y_train
    examples, counts = [], []
    for c in range(ds.num_classes):
        idx = np.flatnonzero(y == c)
        counts.append(int(idx.size))
        examples.append((ds.x_train[idx[:n]].reshape(-1, h, w).astype(np.float32) / top).tolist())
    inputs = ((str(target),) if is_config(target) else ()) + ((str(ds.location),) if ds.location else ())
    return ClassPreview(ds.name, list(ds.class_names), counts, examples, inputs)


@dataclass(frozen=True)
class Preview:
    """Training images of a config before and after its data.augment, for ``mlpkit data preview``."""

    dataset: str
    settings: dict
    originals: list[list[list[float]]]  # (n, H, W) in [0, 1]
    augmented: list[list[list[list[float]]]]  # (versions, n, H, W) in [0, 1]
    inputs: tuple[str, ...] = ()  # the files and folders read (the config, the dataset): never written over


def preview_augment(config: str | Path, overrides: tuple[str, ...] = (), data: DataSource | str | None = None,
                    n: int = 8, versions: int = 3) -> Preview:
    """The first ``n`` training images of a config and ``versions`` augmented copies of each, drawn as the run's
    first epoch would draw them (the config's seed)."""
    from mlpkit.training.augment import augment
    from mlpkit.training.rngs import Rngs

    cfg = load_config(config, overrides)
    if cfg.data.augment is None:
        raise ConfigError(f"{config}: has no data.augment to preview; add e.g. --set data.augment.affine.rotate=10 "
                          "(without it, data preview shows examples of each class)")
    ds = load_data_for(cfg, data)
    if len(ds.image_shape) != 2:
        raise ConfigError(f"data.augment: transforms images, but {ds.name}'s examples are not images")
    h, w = ds.image_shape
    imgs = ds.x_train[: max(1, n)].reshape(-1, h, w).astype(np.float32)
    settings = {"elastic": dataclasses.asdict(cfg.data.augment.elastic) if cfg.data.augment.elastic else None,
                "affine": dataclasses.asdict(cfg.data.augment.affine) if cfg.data.augment.affine else None}
    rng = Rngs.from_seed(cfg.seed).augment
    top = float(ds.pixel_max)
    outs = [augment(imgs, rng, **settings) / top for _ in range(max(1, versions))]
    inputs = (str(config),) + ((str(ds.location),) if ds.location else ())
    return Preview(ds.name, settings, (imgs / top).tolist(), [o.tolist() for o in outs], inputs)


def settings_text(settings: dict) -> str:
    """'affine rotate=20, scale=null; elastic alpha=2, sigma=1': what the augmented rows were drawn with."""
    parts = []
    for name, opts in settings.items():
        if opts:
            parts.append(f"{name} " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                                for k, v in opts.items() if v is not None))
    return "; ".join(parts) or "none"


def preview_png(p: Preview, out: str | Path, zoom: int = 4) -> Path:
    """The preview as a PNG grid: the originals in the first row, each augmented version below, each row
    labelled, and the settings written under the grid."""
    rows = [np.asarray(p.originals)] + [np.asarray(a) for a in p.augmented]
    labels = ["original"] + [f"augmented {k}" for k in range(1, len(rows))]
    return _write_grid(rows, labels, f"{p.dataset}: {settings_text(p.settings)}", out, p.inputs, zoom)


def preview_classes_png(p: ClassPreview, out: str | Path, zoom: int = 3) -> Path:
    """The class preview as a PNG grid: one labelled row per class."""
    h, w = next((np.asarray(e).shape[1:] for e in p.examples if len(e)), (8, 8))
    rows = [np.asarray(e) if len(e) else np.zeros((0, h, w)) for e in p.examples]
    labels = [f"{c} {name}" if name != str(c) else str(c) for c, name in enumerate(p.class_names)]
    return _write_grid(rows, labels, f"{p.dataset}: the first training examples of each class", out, p.inputs,
                       zoom)


def _write_grid(rows: list[np.ndarray], labels: list[str], caption: str, out: str | Path,
                inputs: tuple[str, ...], zoom: int) -> Path:
    from PIL import Image, ImageDraw

    from mlpkit.writer import atomic_write

    target = Path(out)
    if target.suffix.lower() != ".png" or not target.parent.is_dir():
        raise ConfigError(f"-o {target}: give a .png file in an existing folder")
    h, w = next(r.shape[1:] for r in rows if r.ndim == 3)
    n = max(len(r) for r in rows)
    gap = 2
    grid = np.full((len(rows) * (h + gap) - gap, max(n, 1) * (w + gap) - gap), 0.35, dtype=np.float32)
    for r, imgs in enumerate(rows):
        for k, img in enumerate(imgs):
            grid[r * (h + gap): r * (h + gap) + h, k * (w + gap): k * (w + gap) + w] = img
    pic = Image.fromarray((np.clip(grid, 0, 1) * 255).astype(np.uint8)).resize(
        (grid.shape[1] * zoom, grid.shape[0] * zoom), Image.Resampling.NEAREST)
    margin, line = 8 * max(len(t) for t in labels) + 12, 12
    caption_lines = textwrap.wrap(caption[:600], max(20, (pic.width + margin - 8) // 6))  # ~6 px a character
    page = Image.new("L", (pic.width + margin, pic.height + 8 + line * len(caption_lines)), 255)
    page.paste(pic, (margin, 0))
    draw = ImageDraw.Draw(page)
    for r, text in enumerate(labels):  # each row named at its left: which is the original, which class
        draw.text((4, r * (h + gap) * zoom + (h * zoom - 10) // 2), text, fill=0)
    for k, text in enumerate(caption_lines):
        draw.text((4, pic.height + 4 + k * line), text, fill=0)
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    try:
        atomic_write(target, buf.getvalue(), inputs)
    except OSError as e:
        raise OutputError(f"-o {target}: cannot be written ({e.strerror or e})") from None
    return target
