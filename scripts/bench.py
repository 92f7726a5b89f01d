"""Benchmark mlpkit's trainer against PyTorch on the CPU, side by side, in one run.

    python scripts/bench.py [--data-dir ../shared/data/mnist] [--reps 3] [--arch A B B-nodrop C] [--json]

For each architecture it trains one epoch of 60,000 MNIST-shaped examples with
plain SGD, float32, the same thread count, the same initial weights and the same
minibatches, first with mlpkit's own trainer, then with PyTorch (if installed:
``pip install torch==2.13.0`` takes a CPU build). Each framework runs in its own
subprocess, so that its peak RSS is its own: a warm-up of a few hundred steps,
then one timed epoch; ``--reps`` such pairs run back to back. The script also measures the NumPy GEMM-only bound
of each architecture: the same epoch's matrix products alone (forward, weight
gradients, input gradients), with preallocated outputs.

Reported per architecture: median seconds per epoch of each, mlpkit/PyTorch with
its min–max over the paired repetitions, the GFLOP/s mlpkit reaches, the share
of the GEMM-only bound it reaches (bound time / mlpkit time), and peak RSS.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN = 60_000
WARMUP_STEPS = 200

ARCHS = {
    # name: (hidden widths, dropout after each hidden layer, batch size)
    "A": ([100], 0.0, 10),
    "B": ([1024, 1024], 0.5, 128),
    "B-nodrop": ([1024, 1024], 0.0, 128),
    "C": ([256, 256], 0.0, 64),
}


def describe(arch: str) -> str:
    hidden, p, batch = ARCHS[arch]
    widths = "-".join(str(w) for w in [784, *hidden, 10])
    return f"{widths} sigmoid{f', dropout {p:g}' if p else ''}, batch {batch}"


def flops_per_epoch(arch: str) -> float:
    """Matrix-product FLOPs of one epoch: forward, dW, and dX (not for the first layer)."""
    hidden, _, _batch = ARCHS[arch]
    widths = [784, *hidden, 10]
    per_example = sum(2 * a * b for a, b in itertools.pairwise(widths))  # forward
    per_example *= 2  # + dW
    per_example += sum(2 * a * b for a, b in list(itertools.pairwise(widths))[1:])  # dX, first layer skipped
    return float(per_example) * N_TRAIN


def peak_rss_mb() -> float:
    """Peak resident memory of this process. VmHWM, not getrusage: Linux carries ru_maxrss
    across fork+exec, so a worker would inherit the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- data


def load_data(data_dir: str | None):
    """Real MNIST training images when available, else random MNIST-shaped uint8 data."""
    import numpy as np

    if data_dir:
        from mlpkit.data.load import load_dataset

        d = load_dataset("mnist", data_dir, offline=True)
        return d.x_train, d.y_train, "MNIST"
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (N_TRAIN, 784), dtype=np.uint8), rng.integers(0, 10, N_TRAIN),
            "random MNIST-shaped data")


def mlpkit_config(arch: str):
    from mlpkit.config.validate import config_from_dict

    hidden, p, batch = ARCHS[arch]
    layers: list = []
    for w in hidden:
        layers += [{"linear": w}, "sigmoid"] + ([{"dropout": p}] if p else [])
    layers.append({"linear": 10})
    return config_from_dict({
        "seed": 0,
        "data": {"dataset": "digits", "validation": 0, "train_eval_samples": 0},
        "model": {"layers": layers},
        "train": {"epochs": 10**4, "batch_size": batch, "lr": 0.1},
    })


# --------------------------------------------------------------------------- workers


def worker_mlpkit(arch: str, reps: int, data_dir: str | None) -> dict:
    from mlpkit.data.core import Dataset
    from mlpkit.training.checkpoints import restore_trainer, trainer_state
    from mlpkit.training.trainer import Trainer

    x, y, _ = load_data(data_dir)
    ds = Dataset("bench", x, y, x[:10], y[:10], 1 / 255, 10, tuple("0123456789"), (28, 28), "bench")
    t = Trainer(mlpkit_config(arch), ds)
    # warm-up: WARMUP_STEPS steps of the real trainer, then back to its initial state
    arrays, state = trainer_state(t)
    t.train_epoch(after_step=lambda tr: tr.epoch_step >= WARMUP_STEPS)
    restore_trainer(t, arrays, state)
    del arrays
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        t.train_epoch()
        times.append(time.perf_counter() - t0)
    return {"times": times, "peak_rss_mb": peak_rss_mb(), "loss": t.history[-1].train_loss}


def worker_torch(arch: str, reps: int, data_dir: str | None, threads: int) -> dict:
    import numpy as np
    import torch

    from mlpkit.training.build import build_model
    from mlpkit.training.rngs import Rngs
    from mlpkit.training.trainer import iterate_minibatches

    torch.set_num_threads(threads)
    x, y, _ = load_data(data_dir)
    _hidden, p, batch = ARCHS[arch]
    cfg = mlpkit_config(arch)
    rngs = Rngs.from_seed(cfg.seed)
    ref = build_model(cfg.model, 784, rngs.init)  # the same initial weights as mlpkit's
    mods: list = []
    for i, layer in ref.linear_layers():
        lin = torch.nn.Linear(*layer.params["W"].shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.params["W"].T.copy()))
            lin.bias.copy_(torch.from_numpy(layer.params["b"]))
        mods.append(lin)
        if i != ref.linear_layers()[-1][0]:
            mods.append(torch.nn.Sigmoid())
            if p:
                mods.append(torch.nn.Dropout(p))
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    X = torch.from_numpy(x.astype(np.float32) / 255.0)  # the usual float32 tensor dataset
    Y = torch.from_numpy(y.astype(np.int64))

    def epoch(n_steps: int | None = None) -> float:
        total = 0.0
        for k, idx in enumerate(iterate_minibatches(len(Y), batch, rngs.shuffle)):  # the same batches
            if n_steps is not None and k >= n_steps:
                break
            it = torch.from_numpy(idx)
            xb, yb = X.index_select(0, it), Y.index_select(0, it)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        return total / len(Y)

    model.train()
    epoch(WARMUP_STEPS)
    rngs = Rngs.from_seed(cfg.seed)  # restart the batch order: epoch 1 matches mlpkit's epoch 1
    times, loss = [], 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        loss = epoch()
        times.append(time.perf_counter() - t0)
    return {"times": times, "peak_rss_mb": peak_rss_mb(), "loss": loss}


def worker_gemm(arch: str, reps: int) -> dict:
    """The matrix products of one epoch alone, preallocated: what NumPy's BLAS allows."""
    import numpy as np

    hidden, _, batch = ARCHS[arch]
    widths = [784, *hidden, 10]
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((a, b)).astype(np.float32) * 0.01 for a, b in itertools.pairwise(widths)]
    acts = [rng.random((batch, w), dtype=np.float32) for w in widths]
    douts = [rng.random((batch, w), dtype=np.float32) for w in widths]
    dWs = [np.empty_like(W) for W in Ws]
    steps = -(-N_TRAIN // batch)

    def epoch(n: int) -> None:
        for _ in range(n):
            for i, W in enumerate(Ws):
                np.matmul(acts[i], W, out=acts[i + 1])
            for i in range(len(Ws) - 1, -1, -1):
                np.matmul(acts[i].T, douts[i + 1], out=dWs[i])
                if i:
                    np.matmul(douts[i + 1], Ws[i].T, out=douts[i])

    epoch(WARMUP_STEPS)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        epoch(steps)
        times.append(time.perf_counter() - t0)
    return {"times": times, "peak_rss_mb": peak_rss_mb()}


# --------------------------------------------------------------------------- driver


def _runs() -> dict:
    return {"times": [], "peak_rss_mb": 0.0, "loss": None}


def _add(acc: dict, run: dict | None) -> None:
    if run is None:
        return
    acc["times"] += run["times"]
    acc["peak_rss_mb"] = max(acc["peak_rss_mb"], run["peak_rss_mb"])
    acc["loss"] = run.get("loss")


def run_subprocess_worker(script: str, kind: str, argv: list[str], threads: int) -> dict | None:
    """Run ``script --worker kind argv…`` in a fresh process with ``threads`` BLAS/OpenMP threads; its last
    stdout line, parsed as JSON. None when the PyTorch worker finds no torch installed."""
    cmd = [sys.executable, script, "--worker", kind, *argv, "--threads", str(threads)]
    n = str(threads)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
           "MKL_NUM_THREADS": n}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        if kind == "torch" and "No module named 'torch'" in p.stderr:
            return None
        raise SystemExit(f"{kind} worker failed ({' '.join(argv)}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_worker(kind: str, arch: str, args: argparse.Namespace) -> dict | None:
    argv = ["--arch", arch, "--reps", "1"] + (["--data-dir", args.data_dir] if args.data_dir else [])
    return run_subprocess_worker(__file__, kind, argv, args.threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    ap.add_argument("--reps", type=int, default=3, help="paired runs (one timed epoch each) per architecture")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--data-dir", default=None, help="a folder holding MNIST (else random MNIST-shaped data)")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    ap.add_argument("--markdown", action="store_true", help="also print a Markdown table (for the README)")
    ap.add_argument("--worker", choices=["mlpkit", "torch", "gemm"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        arch = args.arch[0]
        if args.worker == "mlpkit":
            out = worker_mlpkit(arch, args.reps, args.data_dir)
        elif args.worker == "torch":
            out = worker_torch(arch, args.reps, args.data_dir, args.threads)
        else:
            out = worker_gemm(arch, args.reps)
        print(json.dumps(out))
        return

    import numpy as np

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    machine = {"cpu_count": os.cpu_count(), "threads": args.threads, "machine": platform.machine(),
               "processor": _cpu_name(), "python": platform.python_version(), "numpy": np.__version__,
               "torch": torch_version, "data": load_data(args.data_dir)[2] if args.data_dir else
               "random MNIST-shaped data"}
    results = []
    for arch in args.arch:
        # Pairs run back to back, each in a fresh process (warm-up, then one timed epoch),
        # so that a pair's two epochs see the same machine conditions.
        ml, th, gm = _runs(), _runs(), _runs()
        for _ in range(args.reps):
            _add(ml, run_worker("mlpkit", arch, args))
            _add(th, run_worker("torch", arch, args))
            _add(gm, run_worker("gemm", arch, args))
        th = th if th["times"] else None
        med = statistics.median(ml["times"])
        row = {
            "arch": arch, "description": describe(arch), "mlpkit_s": med, "mlpkit_times": ml["times"],
            "mlpkit_rss_mb": ml["peak_rss_mb"], "mlpkit_loss": ml["loss"],
            "gemm_bound_s": statistics.median(gm["times"]),
            "gflops": flops_per_epoch(arch) / med / 1e9,
        }
        row["bound_fraction"] = row["gemm_bound_s"] / med
        if th is not None:
            ratios = [a / b for a, b in zip(ml["times"], th["times"])]
            row.update(torch_s=statistics.median(th["times"]), torch_times=th["times"], torch_rss_mb=th["peak_rss_mb"],
                       torch_loss=th["loss"], ratio=med / statistics.median(th["times"]), ratio_min=min(ratios),
                       ratio_max=max(ratios))
        results.append(row)
        if not args.json:
            _print_row(row)
    if args.json:
        print(json.dumps({"machine": machine, "results": results}, indent=2))
    if args.markdown:
        print(markdown(results, machine))
    if not args.json:
        print(f"\nmachine: {machine['processor']}, {machine['cpu_count']} cores, {args.threads} threads; "
              f"Python {machine['python']}, NumPy {machine['numpy']}, PyTorch {machine['torch']}; {machine['data']}")


def markdown(results: list[dict], machine: dict) -> str:
    lines = [
        "| arch | mlpkit s/epoch | PyTorch s/epoch | mlpkit / PyTorch (paired min–max) | mlpkit GFLOP/s | "
        "share of the GEMM-only bound | peak RSS mlpkit / PyTorch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        torch_cells = (f"{r['torch_s']:.2f} | {r['ratio']:.2f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f})"
                       if "torch_s" in r else "— | —")
        rss = f"{r['mlpkit_rss_mb']:.0f} / {r['torch_rss_mb']:.0f} MB" if "torch_s" in r else f"{r['mlpkit_rss_mb']:.0f} MB"
        lines.append(f"| {r['arch']}: {r['description']} | {r['mlpkit_s']:.2f} | {torch_cells} | {r['gflops']:.0f} | "
                     f"{100 * r['bound_fraction']:.0f} % ({r['gemm_bound_s']:.2f} s) | {rss} |")
    lines.append("")
    lines.append(f"Machine: {machine['processor']}, {machine['cpu_count']} cores, {machine['threads']} threads; "
                 f"Python {machine['python']}, NumPy {machine['numpy']}, PyTorch {machine['torch']}; "
                 f"one epoch of {machine['data']}, median of paired runs.")
    return "\n".join(lines)


def _print_row(r: dict) -> None:
    if "torch_s" in r:
        vs = (f"PyTorch {r['torch_s']:.2f} s, mlpkit/PyTorch {r['ratio']:.2f} "
              f"(paired {r['ratio_min']:.2f}–{r['ratio_max']:.2f}), RSS {r['mlpkit_rss_mb']:.0f} vs "
              f"{r['torch_rss_mb']:.0f} MB")
    else:
        vs = f"PyTorch not installed, RSS {r['mlpkit_rss_mb']:.0f} MB"
    print(f"{r['arch']:>8}  {r['description']:<48} mlpkit {r['mlpkit_s']:.2f} s | {vs} | "
          f"{r['gflops']:.0f} GFLOP/s, GEMM-only bound {r['gemm_bound_s']:.2f} s = {100 * r['bound_fraction']:.0f} %",
          flush=True)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
