"""Where a training step's time goes, phase by phase, on the real trainer.

    python scripts/profile_step.py [--data-dir ../shared/data/mnist] [--arch A C] [--steps 3000]

For each architecture of scripts/bench.py, the trainer's own methods are wrapped
with timers (the minibatch conversion, each layer's forward and backward, the
loss, the update, the gradient-norm diagnostics) and one epoch's worth of
steps is run. Printed per phase: microseconds per step and share of the step;
"glue" is the rest of the measured step (Python between the calls, the batch
gather, the checks). The step itself is also timed without the wrappers, so
the wrappers' own cost shows as the difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench

from mlpkit.data.core import Dataset
from mlpkit.nn import (
    layers,
    losses,
    optim,
)
from mlpkit.training import trainer


def _trainer(arch: str, data_dir: str | None) -> trainer.Trainer:
    x, y, _ = bench.load_data(data_dir)
    ds = Dataset("bench", x, y, x[:10], y[:10], 1 / 255, 10, tuple("0123456789"), (28, 28), "bench")
    return trainer.Trainer(bench.mlpkit_config(arch), ds)


def _epoch_steps(t: trainer.Trainer, steps: int, after_warmup=lambda: None) -> float:
    """Seconds per step over ``steps`` steps of the real epoch loop (after a warm-up)."""
    t.train_epoch(after_step=lambda tr: tr.epoch_step >= 100)
    t.epoch_step = 0
    after_warmup()
    t0 = time.perf_counter()
    t.train_epoch(after_step=lambda tr: tr.epoch_step >= steps)
    return (time.perf_counter() - t0) / steps


def profile(arch: str, data_dir: str | None, steps: int) -> list[tuple[str, float]]:
    plain = _epoch_steps(_trainer(arch, data_dir), steps)
    spent: dict[str, float] = defaultdict(float)
    patches = []

    def wrap(owner, name, phase):
        real = getattr(owner, name)

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                spent[phase] += time.perf_counter() - t0

        setattr(owner, name, timed)
        patches.append((owner, name, real))

    wrap(trainer, "to_float", "batch conversion to float")
    wrap(layers.Linear, "forward", "forward products (x·W + b)")
    wrap(layers.Linear, "backward", "backward products (dY·Wᵀ) and bias sums")
    for cls in (layers.Sigmoid, layers.Tanh, layers.ReLU, layers.Dropout):
        wrap(cls, "forward", "activations and dropout, forward")
        wrap(cls, "backward", "activations and dropout, backward")
    wrap(losses.SoftmaxCrossEntropy, "forward", "softmax-CE loss and its gradient")
    wrap(optim.SGD, "step", "update (fused xᵀ·dY GEMMs, biases)")
    wrap(trainer.Trainer, "_measure_grad_norms", "gradient-norm diagnostics")
    try:
        measured = _epoch_steps(_trainer(arch, data_dir), steps, after_warmup=spent.clear)
    finally:
        for owner, name, real in patches:
            setattr(owner, name, real)
    rows = [(phase, s / steps) for phase, s in spent.items()]
    rows.append(("glue: Python between calls, the batch gather, checks", measured - sum(v for _, v in rows)))
    rows.append(("(the timers themselves: wrapped step − plain step)", measured - plain))
    return [(name, v) for name, v in rows] + [("step, unwrapped", plain)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="+", default=["A", "C"], choices=list(bench.ARCHS))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    for arch in args.arch:
        steps = min(args.steps, -(-bench.N_TRAIN // bench.ARCHS[arch][2]) - 1)
        rows = profile(arch, args.data_dir, steps)
        step = rows[-1][1]
        print(f"\n{arch}: {bench.describe(arch)} — {steps} steps, {1e6 * step:.1f} µs per step unwrapped")
        print("| phase | µs per step | share of the step |\n|---|---|---|")
        for name, v in rows[:-1]:
            print(f"| {name} | {1e6 * v:.1f} | {100 * v / step:.0f} % |")


if __name__ == "__main__":
    main()
