"""What on-the-fly augmentation costs: one training epoch with data.augment against the same epoch without.

    python scripts/bench_augment.py --data-dir ../shared/data/mnist [--config configs/reproduce/simard-2003-elastic.yaml]
        [--reps 7] [--affine]

Trains one epoch of the config's network (784-800-10, batch 32 by default) on MNIST's
training split with the config's augmentation, and one epoch with ``data.augment``
removed (the same trainer), alternating, ``--reps`` times each; the epoch is ``Trainer.train_epoch``
(training steps, the worker thread, and the end-of-epoch evaluation both runs share).
The ratio is of the medians; beside it, each augmented epoch over the plain epoch
run just before it (the machine's speed drifts over seconds, and a pair shares it).
``--affine`` adds random affine maps (rotate 10°, scale 0.1, shear 5°, translate 0.1) to the
config's elastic distortions. Also reports the transforms alone, one trainer unit at a time: µs per image,
split into the coordinates (noise, affine draws and each chunk's two GEMMs), filling the stacked images,
and OpenCV's remap; and the time the augmented epoch spent making its units.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlpkit.app import api
from mlpkit.app.configfile import load_config
from mlpkit.config.validate import config_from_dict
from mlpkit.training import pipeline
from mlpkit.training.augment import Augmenter
from mlpkit.training.trainer import Trainer

AFFINE = {"rotate": 10.0, "scale": 0.1, "shear": 5.0, "translate": 0.1}


MAKING = [0.0]  # seconds spent making augmented units (pipeline.AugmentedBatches._make)
_make = pipeline.AugmentedBatches._make


def _timed_make(self, u: int) -> None:
    t0 = time.perf_counter()
    _make(self, u)
    MAKING[0] += time.perf_counter() - t0


pipeline.AugmentedBatches._make = _timed_make  # type: ignore[method-assign]


def epoch_seconds(trainer: Trainer) -> float:
    t0 = time.perf_counter()
    trainer.train_epoch()
    return time.perf_counter() - t0


def per_image_us(fn, n_images: int, reps: int = 200) -> float:
    """The fastest of 5 rounds of ``reps`` calls, µs per image."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps / n_images * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "reproduce" / "simard-2003-elastic.yaml"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--affine", action="store_true", help="add random affine maps to the config's augmentation")
    args = ap.parse_args()

    base = load_config(args.config).to_dict()
    if args.affine:
        base["data"]["augment"] = {**(base["data"].get("augment") or {}), "affine": AFFINE}
    if not base["data"].get("augment"):
        sys.exit(f"{args.config}: has no data.augment")
    source = api.DataSource(data_dir=args.data_dir, offline=True)
    data = api.load_data_for(config_from_dict(base), source)
    # One trainer for both kinds of epoch, its augmentation switched off for the plain ones: both train the same
    # weights in the same memory, and differ only in where their inputs come from.
    with_aug = Trainer(config_from_dict(base), data)
    transforms = with_aug._augmenter

    def epoch(augmented: bool) -> float:
        with_aug._augmenter = transforms if augmented else None
        return epoch_seconds(with_aug)

    epoch(True), epoch(False)  # warm-up: caches, BLAS threads, page faults
    times: dict[str, list[float]] = {"augmented": [], "plain": []}
    making = []
    for _ in range(args.reps):
        times["plain"].append(epoch(False))
        MAKING[0] = 0.0
        times["augmented"].append(epoch(True))
        making.append(MAKING[0])

    aug = with_aug.cfg.data.augment
    augmenter = Augmenter(28, 28, elastic=dataclasses.asdict(aug.elastic) if aug.elastic else None,
                          affine=dataclasses.asdict(aug.affine) if aug.affine else None)
    images = data.x_train[: pipeline.UNIT_PIXELS // 784].reshape(-1, 28, 28)  # one unit, as the trainer makes them
    rng = np.random.default_rng(0)
    scale, shift = float(data.scale), float(data.shift)
    out = np.empty(images.shape, np.float32)
    augmenter(images, rng, out, scale=scale, shift=shift)
    b = len(images)
    per_image = per_image_us(lambda: augmenter(images, rng, out, scale=scale, shift=shift), b)
    work = augmenter._draw(b, rng, stacked=True)
    starts = range(0, b, work.per)

    def coordinates() -> None:  # the draws and every chunk's two GEMMs
        w = augmenter._draw(b, rng, stacked=True)
        for c in range(w.chunks):
            augmenter._chunk_coordinates(w, c)

    def fill() -> None:
        for s in starts:
            augmenter._fill(work, images[s : s + work.per], scale, shift)

    coords = augmenter._chunk_coordinates(work, 0)

    def remap() -> None:  # each chunk sampled at the first chunk's coordinates
        for s in starts:
            augmenter._remap(work.tall, coords[0], coords[1], out[s : s + work.per], shift)

    parts = {"coordinates": per_image_us(coordinates, b), "fill": per_image_us(fill, b),
             "remap": per_image_us(remap, b)}

    a, p = statistics.median(times["augmented"]), statistics.median(times["plain"])
    hidden = "-".join(str(layer.get("linear")) for layer in base["model"]["layers"] if isinstance(layer, dict)
                      and "linear" in layer)
    print(f"machine: {os.cpu_count()} cores; network 784-{hidden}, batch {base['train']['batch_size']}; "
          f"augment {base['data']['augment']}")
    print(f"epoch without augmentation: {p:.2f} s (runs: {', '.join(f'{t:.2f}' for t in times['plain'])})")
    print(f"epoch with augmentation:    {a:.2f} s (runs: {', '.join(f'{t:.2f}' for t in times['augmented'])})")
    pairs = sorted(t / u for t, u in zip(times["augmented"], times["plain"], strict=True))
    print(f"ratio: {a / p:.2f}x (the pairs' median {statistics.median(pairs):.2f}x; pairs: "
          f"{', '.join(f'{r:.2f}' for r in pairs)})   "
          f"making the augmented units: {statistics.median(making):.2f} s of the augmented epoch")
    print(f"the transforms alone, {len(images)} images at a time: {per_image:.1f} us per image ("
          + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
          + f"; {work.chunks} chunks of {work.per}, stacked: {augmenter._stacks(work.per)})")


if __name__ == "__main__":
    main()
