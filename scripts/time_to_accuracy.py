"""Time to a test accuracy on MNIST: mlpkit against PyTorch (+ torchvision) running the identical recipe, in one run.

    python scripts/time_to_accuracy.py --data-dir ../shared/data/mnist [--config configs/fast-98.yaml]
        [--target 98.0 | --target 0.98] [--reps 3] [--threads 2] [--torch-python PATH] [--workers auto|0|1|2]
        [--give-up 2.0]

Each framework runs in its own subprocess and measures wall time from before loading MNIST
(the IDX files, parsed and standardized by mlpkit's loader for both) until the test accuracy,
checked after every epoch, first reaches ``--target`` (a percentage, or a fraction ≤ 1). The
recipe is the config's: the same initial weights (mlpkit's initializer, copied into
``torch.nn.Linear``), the same minibatches in the same order (mlpkit's shuffle stream), the
same learning-rate and momentum schedule per epoch, weight decay on weights only, float32,
the same thread count. Imports (NumPy, PyTorch, mlpkit's own modules) are not timed.
``--reps`` pairs run alternately; medians are reported.

With ``data.augment`` in the config, PyTorch augments the way a PyTorch user would: a
``Dataset`` applying ``torchvision.transforms.v2`` to each image (``ElasticTransform``, and
``RandomAffine`` for an affine setting) in a ``DataLoader``, with the worker count
(``--workers auto``: 0, 1 or 2, whichever trains 200 steps fastest, measured first and not
timed). torchvision's ``alpha`` is set to 2 × mlpkit's: torchvision scales its blurred noise
by alpha / size in grid units of 2 / size, so its displacement is alpha / 2 pixels × the
blurred noise, where Simard's (mlpkit's) is alpha pixels × the blurred noise; the script
measures both fields over 2,000 draws and prints their RMS displacement side by side (they agree
where MNIST has ink; torchvision's reflect padding moves the outer ring more). Each
side also reports what it spent augmenting (mlpkit: making the augmented units; PyTorch: the
training loop waiting for the loader) against its training steps.

``--give-up F`` stops PyTorch once it has run F × mlpkit's time to the target without reaching
it (its time is then reported as more than that), so that proving "at most 1/F of PyTorch's
time" does not take hours. PyTorch's worker needs torch and torchvision: ``--torch-python``
names a Python that has them (and mlpkit importable), if this one has not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench

DEFAULT_CONFIG = ROOT / "configs" / "fast-98.yaml"
MAX_EPOCHS = 2000
CALIBRATION_STEPS = 200


def _setup(config: str, data_dir: str):
    """The config (validation split as the config says; the test split scored after every epoch) and the
    loaded dataset."""
    from mlpkit.app import api
    from mlpkit.app.configfile import load_config

    cfg = load_config(config, ("data.train_eval_samples=0",))
    return cfg, api.load_data_for(cfg, api.DataSource(data_dir=data_dir, offline=True))


def worker_mlpkit(config: str, data_dir: str, target: float, deadline: float) -> dict:
    import mlpkit.app.api  # noqa: F401 - imported before the clock starts, as in torch's worker
    from mlpkit.training import pipeline
    from mlpkit.training.trainer import Trainer

    spent = {"augment": 0.0}
    make = pipeline.AugmentedBatches._make

    def timed_make(self, u: int) -> None:  # the augmentation: every unit of images the steps read
        t = time.perf_counter()
        make(self, u)
        spent["augment"] += time.perf_counter() - t

    pipeline.AugmentedBatches._make = timed_make  # type: ignore[method-assign]
    t0 = time.perf_counter()
    cfg, data = _setup(config, data_dir)
    trainer = Trainer(cfg, data)
    curve, train_s, eval_s = [], 0.0, 0.0
    for _ in range(min(cfg.train.epochs, MAX_EPOCHS)):
        t = time.perf_counter()
        trainer.train_epoch()
        t1 = time.perf_counter()
        acc = 100 * trainer.evaluate_test().accuracy
        train_s += t1 - t
        eval_s += time.perf_counter() - t1
        curve.append((trainer.epoch, time.perf_counter() - t0, acc))
        if acc >= target or time.perf_counter() - t0 > deadline:
            break
    return {"curve": curve, "augment_s": spent["augment"], "steps_s": train_s - spent["augment"], "eval_s": eval_s}


def _torch_model(cfg, data, rngs):
    import numpy as np
    import torch

    from mlpkit.nn.layers import Dropout, Linear
    from mlpkit.training.build import build_model

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
    return torch.nn.Sequential(*mods), decay, no_decay


def torch_transform(augment, h: int, w: int):
    """torchvision.transforms.v2 for mlpkit's ``data.augment`` (None without one): see the module's docstring."""
    if augment is None:
        return None
    from torchvision.transforms import v2

    steps = []
    if augment.affine is not None:
        a = augment.affine
        steps.append(v2.RandomApply([v2.RandomAffine(
            degrees=a.rotate, translate=(a.translate, a.translate) if a.translate else None,
            scale=(1 - a.scale, 1 + a.scale) if a.scale else None, shear=a.shear or None)], p=a.p))
    if augment.elastic is not None and augment.elastic.alpha > 0:
        e = augment.elastic
        steps.append(v2.RandomApply([v2.ElasticTransform(alpha=2 * e.alpha, sigma=e.sigma)], p=e.p))
    return v2.Compose(steps)


def worker_torch(config: str, data_dir: str, target: float, threads: int, deadline: float, workers: str) -> dict:
    import numpy as np
    import torch

    import mlpkit.app.api  # noqa: F401 - imported before the clock starts
    from mlpkit.data.core import prepare_splits
    from mlpkit.training.rngs import Rngs
    from mlpkit.training.schedules import lr_at, momentum_at
    from mlpkit.training.trainer import iterate_minibatches

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    cfg, data = _setup(config, data_dir)
    val = cfg.data.validation
    data, train, _ = prepare_splits(data, val, cfg.data.normalize)
    rngs = Rngs.from_seed(cfg.seed)
    model, decay, no_decay = _torch_model(cfg, data, rngs)
    t = cfg.train
    wd = t.weight_decay if not t.l2 else t.l2 / len(train)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=lr_at(t, 0), momentum=momentum_at(t, 0))
    loss_fn = torch.nn.CrossEntropyLoss()
    scale, shift = np.float32(data.scale), np.float32(data.shift)

    def tensor(x: np.ndarray) -> torch.Tensor:  # the same float32 inputs mlpkit's trainer makes
        return torch.from_numpy(x.astype(np.float32) * scale + shift)

    Y = torch.from_numpy(train.y.astype(np.int64))
    Xt, Yt = tensor(data.x_test), torch.from_numpy(data.y_test.astype(np.int64))
    shape = data.image_shape
    transform = torch_transform(cfg.data.augment, *shape) if len(shape) == 2 else None
    if transform is None:
        X = tensor(train.x)
        loader_for = None
    else:
        images = torch.from_numpy(train.x.reshape(-1, 1, *shape).astype(np.float32))  # raw values, background 0
        loader_for = _loaders(images, Y, transform, float(scale), float(shift))
    order = Batches()
    loader, chosen, calibration = None, 0, {}
    if loader_for is not None:
        choices = [0, 1, 2] if workers == "auto" else [int(workers)]
        if len(choices) > 1:  # calibration: not timed, and restarts the run's state afterwards
            t_cal = time.perf_counter()
            for n in choices:
                order.batches = iterate_minibatches(len(Y), t.batch_size, np.random.default_rng(99))[
                    :CALIBRATION_STEPS]
                probe = loader_for(order, n)
                s = time.perf_counter()
                for xb, yb in probe:
                    opt.zero_grad(set_to_none=True)
                    loss_fn(model(xb), yb).backward()
                calibration[n] = time.perf_counter() - s
                del probe
            chosen = min(calibration, key=calibration.get)
            model, decay, no_decay = _torch_model(cfg, data, Rngs.from_seed(cfg.seed))
            opt = torch.optim.SGD([{"params": decay, "weight_decay": wd},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr_at(t, 0), momentum=momentum_at(t, 0))
            t0 += time.perf_counter() - t_cal
        else:
            chosen = choices[0]
        loader = loader_for(order, chosen)
    curve, waiting, train_s, eval_s = [], 0.0, 0.0, 0.0
    for epoch in range(min(t.epochs, MAX_EPOCHS)):
        for g in opt.param_groups:
            g["lr"], g["momentum"] = lr_at(t, epoch), momentum_at(t, epoch)
        model.train()
        start = time.perf_counter()
        order.batches = iterate_minibatches(len(Y), t.batch_size, rngs.shuffle)  # mlpkit's batches, in order
        if loader is None:
            for idx in order.batches:
                it = torch.from_numpy(idx)
                opt.zero_grad(set_to_none=True)
                loss_fn(model(X.index_select(0, it)), Y.index_select(0, it)).backward()
                opt.step()
        else:
            batches = iter(loader)
            while True:
                s = time.perf_counter()
                try:
                    xb, yb = next(batches)
                except StopIteration:
                    break
                waiting += time.perf_counter() - s
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xb), yb).backward()
                opt.step()
        stop = time.perf_counter()
        train_s += stop - start
        model.eval()
        with torch.no_grad():
            acc = 100 * float((model(Xt).argmax(1) == Yt).float().mean())
        eval_s += time.perf_counter() - stop
        curve.append((epoch + 1, time.perf_counter() - t0, acc))
        if acc >= target or time.perf_counter() - t0 > deadline:
            break
    return {"curve": curve, "augment_s": waiting, "steps_s": train_s - waiting, "eval_s": eval_s,
            "workers": chosen, "calibration": calibration}


class Batches:
    """A DataLoader's batch sampler: the index arrays of the epoch, set before each pass."""

    def __init__(self) -> None:
        self.batches: list = []

    def __iter__(self):
        return iter([b.tolist() for b in self.batches])

    def __len__(self) -> int:
        return len(self.batches)


def _loaders(images, labels, transform, scale: float, shift: float):
    """A function (batch sampler, workers) -> DataLoader over a Dataset that transforms each image."""
    import torch

    class Distorted(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(labels)

        def __getitem__(self, i: int):
            x = transform(images[i])  # (1, H, W), raw values; outside reads 0, the background
            return (x * scale + shift).reshape(-1), labels[i]

    dataset = Distorted()

    def make(order: Batches, workers: int):
        return torch.utils.data.DataLoader(dataset, batch_sampler=order, num_workers=workers,
                                           persistent_workers=workers > 0)

    return make


def worker_stats(config: str, data_dir: str, draws: int = 2000) -> dict:
    """RMS displacement (pixels) of mlpkit's elastic fields and torchvision's at the settings the comparison
    uses: over the whole image, the inner half (by side), the outer ring of 4 pixels, and weighted by the mean
    training image (where the ink is: what the displacement acts on). The two differ only in the padding of
    the smoothing, zeros (Simard's, scipy's "constant") against torchvision's reflection, so only near the edges,
    where MNIST has no ink."""
    import numpy as np
    import torch
    from torchvision.transforms import v2

    from mlpkit.app.configfile import load_config
    from mlpkit.training.augment import Augmenter

    e = load_config(config).data.augment.elastic
    h = w = 28
    coords = Augmenter(h, w, elastic={"alpha": e.alpha, "sigma": e.sigma}).coordinates(draws, np.random.default_rng(0))
    ours = np.stack([coords[0] - np.arange(h)[:, None], coords[1] - np.arange(w)]).astype(np.float64)  # (2, n, H, W)
    tv = v2.ElasticTransform(alpha=2 * e.alpha, sigma=e.sigma)
    torch.manual_seed(0)
    fields = [tv.make_params([torch.zeros(1, h, w)])["displacement"][0] for _ in range(draws)]  # (H, W, 2) grid units
    theirs = torch.stack(fields).permute(3, 0, 1, 2).numpy().astype(np.float64) * np.array([w, h])[:, None, None, None] / 2
    inner = (slice(None), slice(None), slice(h // 4, h - h // 4), slice(w // 4, w - w // 4))
    ring = np.ones((h, w), bool)
    ring[4:-4, 4:-4] = False

    data = _setup(config, data_dir)[1]
    ink = data.x_train.reshape(-1, h, w).mean(axis=0, dtype=np.float64)
    ink /= ink.sum()

    def rms(d: np.ndarray) -> dict:
        return {"all": float(np.sqrt((d**2).mean())), "inner": float(np.sqrt((d[inner] ** 2).mean())),
                "ring": float(np.sqrt((d[:, :, ring] ** 2).mean())),
                "ink": float(np.sqrt(((d**2).mean(axis=(0, 1)) * ink).sum()))}

    return {"mlpkit": rms(ours), "torchvision": rms(theirs), "alpha": e.alpha, "sigma": e.sigma}


def _python_for(kind: str, args: argparse.Namespace) -> str:
    return args.torch_python if kind in ("torch", "stats") and args.torch_python else sys.executable


def run_worker(kind: str, args: argparse.Namespace, deadline: float = float("inf")) -> dict | None:
    argv = ["--config", args.config, "--data-dir", args.data_dir, "--target", str(args.target),
            "--deadline", str(deadline), "--workers", args.workers]
    if _python_for(kind, args) == sys.executable:
        return bench.run_subprocess_worker(__file__, kind, argv, args.threads)
    n = str(args.threads)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}
    p = subprocess.run([args.torch_python, __file__, "--worker", kind, *argv, "--threads", n],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _reached(curve: list, target: float) -> tuple[float, int] | None:
    for epoch, seconds, acc in curve:
        if acc >= target:
            return seconds, epoch
    return None


def _percent(target: float) -> float:
    return 100 * target if target <= 1 else target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(DEFAULT_CONFIG))
    ap.add_argument("--data-dir", required=True, help="a folder holding MNIST")
    ap.add_argument("--target", type=float, default=98.0, help="test accuracy to reach: percent, or a fraction ≤ 1")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--torch-python", default=None, help="a Python with torch and torchvision (default: this one)")
    ap.add_argument("--workers", default="auto", choices=["auto", "0", "1", "2"],
                    help="PyTorch DataLoader workers, when the recipe augments")
    ap.add_argument("--give-up", type=float, default=None,
                    help="stop PyTorch after this many times mlpkit's time to the target")
    ap.add_argument("--json", default=None, help="also write the runs and the summary to this file")
    ap.add_argument("--worker", choices=["mlpkit", "torch", "stats"], help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, default=float("inf"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    target = _percent(args.target)
    if args.worker == "mlpkit":
        print(json.dumps(worker_mlpkit(args.config, args.data_dir, target, args.deadline)))
        return
    if args.worker == "torch":
        print(json.dumps(worker_torch(args.config, args.data_dir, target, args.threads, args.deadline, args.workers)))
        return
    if args.worker == "stats":
        print(json.dumps(worker_stats(args.config, args.data_dir)))
        return

    from mlpkit.app.configfile import load_config

    augmented = load_config(args.config).data.augment is not None
    stats = None
    print(f"recipe: {args.config}; target {target:g} % test accuracy; {args.threads} threads; {os.cpu_count()} cores",
          flush=True)
    summary: dict = {"config": args.config, "target": target, "threads": args.threads}
    if augmented and load_config(args.config).data.augment.elastic is not None:
        try:
            stats = run_worker("stats", args)
        except SystemExit as e:  # torchvision missing: the runs below say so
            stats = None
            print(f"no displacement statistics: {str(e).strip().splitlines()[-1]}", flush=True)
    if stats is not None:
        summary["displacement"] = stats
        keys = ("all", "inner", "ring", "ink")
        print("elastic displacement, RMS pixels over 2,000 fields of 28 × 28 (all / inner half / outer 4-pixel ring "
              "/ weighted by the mean training image): "
              f"mlpkit alpha {stats['alpha']:g} sigma {stats['sigma']:g}: "
              + " / ".join(f"{stats['mlpkit'][k]:.3f}" for k in keys)
              + f"; torchvision alpha {2 * stats['alpha']:g} sigma {stats['sigma']:g}: "
              + " / ".join(f"{stats['torchvision'][k]:.3f}" for k in keys), flush=True)
    runs: dict[str, list] = {"mlpkit": [], "torch": []}
    for _ in range(args.reps):
        mine = run_worker("mlpkit", args)
        runs["mlpkit"].append(mine)
        hit = _reached(mine["curve"], target) if mine else None
        deadline = args.give_up * hit[0] if args.give_up and hit else float("inf")
        theirs = run_worker("torch", args, deadline)
        if theirs is not None:
            runs["torch"].append(theirs)
        for kind, r in (("mlpkit", mine), ("torch", theirs)):
            if r is not None:
                print(f"  {kind}: {len(r['curve'])} epochs, {r['curve'][-1][1]:.1f} s, last test accuracy "
                      f"{r['curve'][-1][2]:.2f} %", flush=True)
    summary["runs"] = runs
    medians = {}
    for kind, results in runs.items():
        if not results:
            print(f"{kind}: not installed")
            continue
        hits = [_reached(r["curve"], target) for r in results]
        r0 = results[0]
        n_epochs = len(r0["curve"])
        costs = (f"per epoch: augmentation {r0['augment_s'] / n_epochs:.2f} s, steps {r0['steps_s'] / n_epochs:.2f} s, "
                 f"test scoring {r0['eval_s'] / n_epochs:.2f} s")
        if kind == "torch" and augmented:
            costs += (f"; DataLoader workers {r0['workers']}" + (
                " (200 steps: " + ", ".join(f"{k} workers {v:.1f} s" for k, v in r0["calibration"].items()) + ")"
                if r0["calibration"] else ""))
        if any(h is None for h in hits):
            best = max(a for _, _, a in r0["curve"])
            print(f"{kind}: did not reach {target:g} % in {n_epochs} epochs, {r0['curve'][-1][1]:.1f} s "
                  f"(best {best:.2f} %); {costs}")
            medians[kind] = None
            continue
        medians[kind] = statistics.median(s for s, _ in hits)
        print(f"{kind}: {medians[kind]:.1f} s (runs: {', '.join(f'{s:.1f}' for s, _ in hits)}), "
              f"epoch {hits[0][1]}, accuracy then {r0['curve'][hits[0][1] - 1][2]:.2f} %; {costs}")
    summary["medians"] = medians
    if medians.get("mlpkit") and medians.get("torch"):
        summary["ratio"] = medians["mlpkit"] / medians["torch"]
        print(f"mlpkit / PyTorch: {summary['ratio']:.2f}")
    elif medians.get("mlpkit") and "torch" in medians and runs["torch"]:
        longest = min(r["curve"][-1][1] for r in runs["torch"])
        summary["ratio_below"] = medians["mlpkit"] / longest
        print(f"mlpkit / PyTorch: below {summary['ratio_below']:.2f} (PyTorch had not reached the target when "
              f"stopped at {longest:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
