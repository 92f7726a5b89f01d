"""``mlpkit data preview``: training images beside their augmented copies, as data or as a PNG grid.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpkit.app.configfile import load_config
from mlpkit.app.sources import DataSource, load_data_for
from mlpkit.errors import ConfigError, OutputError


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
    from mlpkit.train.augment import augment
    from mlpkit.train.rngs import Rngs

    cfg = load_config(config, overrides)
    if cfg.data.augment is None:
        raise ConfigError(f"{config}: has no data.augment to preview; add e.g. --set data.augment.affine.rotate=10")
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


def preview_png(p: Preview, out: str | Path, zoom: int = 4) -> Path:
    """The preview as a PNG grid: the originals in the first row, each augmented version below."""
    from PIL import Image

    from mlpkit.writer import atomic_write

    rows = [np.asarray(p.originals)] + [np.asarray(a) for a in p.augmented]
    n, h, w = rows[0].shape
    gap = 2
    grid = np.full((len(rows) * (h + gap) - gap, n * (w + gap) - gap), 0.35, dtype=np.float32)
    for r, imgs in enumerate(rows):
        for k, img in enumerate(imgs):
            grid[r * (h + gap): r * (h + gap) + h, k * (w + gap): k * (w + gap) + w] = img
    pic = Image.fromarray((np.clip(grid, 0, 1) * 255).astype(np.uint8)).resize(
        (grid.shape[1] * zoom, grid.shape[0] * zoom), Image.Resampling.NEAREST)
    target = Path(out)
    if target.suffix.lower() != ".png" or not target.parent.is_dir():
        raise ConfigError(f"-o {target}: give a .png file in an existing folder")
    buf = io.BytesIO()
    pic.save(buf, format="PNG")
    try:
        atomic_write(target, buf.getvalue(), p.inputs)
    except OSError as e:
        raise OutputError(f"-o {target}: cannot be written ({e.strerror or e})") from None
    return target
