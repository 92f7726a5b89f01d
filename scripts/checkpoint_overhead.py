"""Measure what checkpointing adds to an epoch: the same run with and without a run folder.

    python scripts/checkpoint_overhead.py --data-dir ../shared/data/mnist [--epochs 3]

Trains configs/mnist-sigmoid.yaml (or --config) twice, alternating epochs between
a trainer that writes checkpoints/last.npz + best.npz + metrics after every epoch and
one that writes nothing, and prints the median epoch time of each.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mlpkit.app import api
from mlpkit.app.rundir import RunWriter

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "mnist-sigmoid.yaml"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N steps")
    args = ap.parse_args()
    src = api.DataSource(args.data_dir)
    plain = api.prepare(args.config, (), src)
    ckpt = api.prepare(args.config, (), src)
    with tempfile.TemporaryDirectory() as tmp:
        writer = RunWriter(Path(tmp) / "run", ckpt.cfg)
        every = args.checkpoint_every

        in_writer = []  # seconds spent writing, measured directly (immune to the noise between epochs)

        def after_step(t) -> bool:
            if every and t.epoch_step % every == 0:
                t0 = time.perf_counter()
                writer.checkpoint(t)
                in_writer.append(time.perf_counter() - t0)
            return False

        t_plain, t_ckpt = [], []
        for _ in range(args.epochs):
            t0 = time.perf_counter()
            plain.train_epoch()
            t_plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ckpt.train_epoch(after_step=after_step)
            t1 = time.perf_counter()
            writer.epoch_done(ckpt, t1 - t0)
            in_writer.append(time.perf_counter() - t1)
            t_ckpt.append(time.perf_counter() - t0)
        size = (writer.last_checkpoint).stat().st_size
        writer.close()
    a, b = statistics.median(t_plain), statistics.median(t_ckpt)
    print(f"config {args.config}: {plain.steps_per_epoch} steps/epoch, checkpoint {size / 1e6:.2f} MB")
    print(f"median epoch without checkpoints: {a:.3f} s")
    print(f"median epoch with checkpoints:    {b:.3f} s (every epoch{f' and every {every} steps' if every else ''})")
    per_epoch = sum(in_writer) / args.epochs
    print(f"time inside the checkpoint writer: {1000 * per_epoch:.1f} ms per epoch = {100 * per_epoch / a:.2f} % "
          f"of an epoch (the difference of the medians, {100 * (b - a) / a:+.1f} %, is mostly machine noise)")


if __name__ == "__main__":
    main()
