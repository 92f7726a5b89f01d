"""Time to 98 % on MNIST: mlpkit against PyTorch running the identical recipe, side by side, in one run.

    python scripts/time_to_accuracy.py --data-dir ../shared/data/mnist [--config configs/fast-98.yaml]
        [--target 98.0] [--reps 3] [--threads 2]

Each framework runs in its own subprocess and measures wall time from before loading MNIST
(the IDX files, parsed and standardized by mlpkit's loader for both) until the test accuracy,
checked after every epoch, first reaches ``--target`` percent. The recipe is the config's:
the same initial weights (mlpkit's initializer, copied into ``torch.nn.Linear``), the same
minibatches in the same order (mlpkit's shuffle stream), the same learning-rate and momentum
schedule per epoch, weight decay on weights only, float32, the same thread count. Imports
(NumPy, PyTorch, mlpkit's own modules) are not timed. ``--reps`` pairs run alternately; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench

DEFAULT_CONFIG = ROOT / "configs" / "fast-98.yaml"
MAX_EPOCHS = 100


def _setup(config: str, data_dir: str):
    """The config (training on all 60,000 images, no validation split) and the loaded dataset."""
    from mlpkit.app import api
    from mlpkit.app.configfile import load_config

    cfg = load_config(config, ("data.validation=0", "data.train_eval_samples=0"))
    return cfg, api.load_data_for(cfg, api.DataSource(data_dir=data_dir, offline=True))


def worker_mlpkit(config: str, data_dir: str, target: float) -> dict:
    import mlpkit.app.api  # noqa: F401 - imported before the clock starts, as in torch's worker
    from mlpkit.training.trainer import Trainer

    t0 = time.perf_counter()
    cfg, data = _setup(config, data_dir)
    trainer = Trainer(cfg, data)
    curve = []
    for _ in range(min(cfg.train.epochs, MAX_EPOCHS)):
        trainer.train_epoch()
        acc = 100 * trainer.evaluate_test().accuracy
        curve.append((trainer.epoch, time.perf_counter() - t0, acc))
        if acc >= target:
            break
    return {"curve": curve}


def worker_torch(config: str, data_dir: str, target: float, threads: int) -> dict:
    import numpy as np
    import torch

    import mlpkit.app.api  # noqa: F401 - imported before the clock starts
    from mlpkit.data.core import prepare_splits
    from mlpkit.nn.layers import Dropout, Linear
    from mlpkit.training.build import build_model
    from mlpkit.training.rngs import Rngs
    from mlpkit.training.schedules import lr_at, momentum_at
    from mlpkit.training.trainer import iterate_minibatches

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    cfg, data = _setup(config, data_dir)
    data, train, _ = prepare_splits(data, 0, cfg.data.normalize)
    rngs = Rngs.from_seed(cfg.seed)
    ref = build_model(cfg.model, data.num_features, rngs.init)  # mlpkit's initial weights
    acts = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
    mods, decay, no_decay = [], [], []
    for layer in ref.layers:
        if isinstance(layer, Linear):
            lin = torch.nn.Linear(*layer.params["W"].shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["W"].T, dtype=np.float32)))
                lin.bias.copy_(torch.from_numpy(layer.params["b"].astype(np.float32)))
            mods.append(lin)
            decay.append(lin.weight)
            no_decay.append(lin.bias)
        elif isinstance(layer, Dropout):
            mods.append(torch.nn.Dropout(layer.p))
        else:
            mods.append(acts[type(layer).__name__.lower()]())
    model = torch.nn.Sequential(*mods)
    t = cfg.train
    wd = t.weight_decay if not t.l2 else t.l2 / len(train)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=lr_at(t, 0), momentum=momentum_at(t, 0))
    loss_fn = torch.nn.CrossEntropyLoss()

    def tensor(x: np.ndarray) -> torch.Tensor:  # the same float32 inputs mlpkit's trainer makes
        return torch.from_numpy(x.astype(np.float32) * np.float32(data.scale) + np.float32(data.shift))

    X, Y = tensor(train.x), torch.from_numpy(train.y.astype(np.int64))
    Xt, Yt = tensor(data.x_test), torch.from_numpy(data.y_test.astype(np.int64))
    curve = []
    for epoch in range(min(t.epochs, MAX_EPOCHS)):
        for g in opt.param_groups:
            g["lr"], g["momentum"] = lr_at(t, epoch), momentum_at(t, epoch)
        model.train()
        for idx in iterate_minibatches(len(Y), t.batch_size, rngs.shuffle):  # mlpkit's batches, in order
            it = torch.from_numpy(idx)
            opt.zero_grad(set_to_none=True)
            loss_fn(model(X.index_select(0, it)), Y.index_select(0, it)).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = 100 * float((model(Xt).argmax(1) == Yt).float().mean())
        curve.append((epoch + 1, time.perf_counter() - t0, acc))
        if acc >= target:
            break
    return {"curve": curve}


def run_worker(kind: str, args: argparse.Namespace) -> dict | None:
    argv = ["--config", args.config, "--data-dir", args.data_dir, "--target", str(args.target)]
    return bench.run_subprocess_worker(__file__, kind, argv, args.threads)


def _reached(curve: list, target: float) -> tuple[float, int] | None:
    for epoch, seconds, acc in curve:
        if acc >= target:
            return seconds, epoch
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(DEFAULT_CONFIG))
    ap.add_argument("--data-dir", required=True, help="a folder holding MNIST")
    ap.add_argument("--target", type=float, default=98.0, help="test accuracy to reach, percent")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--worker", choices=["mlpkit", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "mlpkit":
        print(json.dumps(worker_mlpkit(args.config, args.data_dir, args.target)))
        return
    if args.worker == "torch":
        print(json.dumps(worker_torch(args.config, args.data_dir, args.target, args.threads)))
        return

    runs: dict[str, list] = {"mlpkit": [], "torch": []}
    for _ in range(args.reps):
        for kind in runs:
            r = run_worker(kind, args)
            if r is not None:
                runs[kind].append(r["curve"])
    print(f"recipe: {args.config}; "
          f"target {args.target:g} % test accuracy; {args.threads} threads; {os.cpu_count()} cores")
    medians = {}
    for kind, curves in runs.items():
        if not curves:
            print(f"{kind}: not installed")
            continue
        hits = [_reached(c, args.target) for c in curves]
        if any(h is None for h in hits):
            print(f"{kind}: did not reach {args.target:g} % in {len(curves[0])} epochs "
                  f"(best {max(a for _, _, a in curves[0]):.2f} %)")
            continue
        medians[kind] = statistics.median(s for s, _ in hits)
        print(f"{kind}: {medians[kind]:.2f} s (runs: {', '.join(f'{s:.2f}' for s, _ in hits)}), "
              f"epoch {hits[0][1]}, accuracy then {curves[0][hits[0][1] - 1][2]:.2f} %")
    if len(medians) == 2:
        print(f"mlpkit / PyTorch: {medians['mlpkit'] / medians['torch']:.2f}")


if __name__ == "__main__":
    main()
