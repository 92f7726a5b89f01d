"""What a sweep trial costs beyond the training it runs: a plain run against a one-trial study of the same
config, alternated in one process (Optuna imported once), medians of the pairs.

    python scripts/sweep_overhead.py --data-dir DIR [--config configs/mnist-sigmoid.yaml] [--epochs 3] [--pairs 5]

A trial adds Optuna's bookkeeping: the study's SQLite writes, a suggestion, a report and a prune decision per
epoch. The plain run writes the same run folder.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlpkit.app import api, sweep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir")
    ap.add_argument("--config", default=str(ROOT / "configs" / "mnist-sigmoid.yaml"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=5)
    a = ap.parse_args()
    optuna = sweep.require_optuna()
    work = Path(tempfile.mkdtemp())
    spec = work / "one.yaml"
    spec.write_text(f"base: {a.config}\nset: {{train.epochs: {a.epochs}}}\ntrials: 1\nsampler: random\n"
                    "pruner: none\nspace:\n  seed: {choices: [0]}\n")
    source = api.DataSource(a.data_dir)
    plain, trial = [], []
    for k in range(a.pairs):
        t0 = time.perf_counter()
        trainer, writer = api.start_run(a.config, (f"train.epochs={a.epochs}",), work / f"plain-{k}", source)
        api.train_run(trainer, writer)
        plain.append(time.perf_counter() - t0)
        s = sweep.load_sweep(spec)
        folder = work / f"sweep-{k}"
        folder.mkdir()
        study = sweep._study(optuna, s, f"one-{k}", sweep.storage_url(folder, None))  # once per sweep, not timed
        t0 = time.perf_counter()
        study.optimize(lambda t, s=s, folder=folder: sweep._objective(optuna, s, folder, t, a.data_dir), n_trials=1)
        trial.append(time.perf_counter() - t0)
        print(f"pair {k + 1}: plain {plain[-1]:.3f} s, trial {trial[-1]:.3f} s", flush=True)
    ratios = [t / p for p, t in zip(plain, trial)]
    print(f"median plain {statistics.median(plain):.3f} s, trial {statistics.median(trial):.3f} s; "
          f"trial / plain: median {statistics.median(ratios):.3f} (pairs {min(ratios):.3f}–{max(ratios):.3f})")
    # Optuna's own part alone, free of the training's noise: the same storage (heartbeats on), the same calls
    # (a suggestion per key, the run's name, a report and a prune decision per epoch), no training.
    folder = work / "bookkeeping"
    folder.mkdir()
    study = sweep._study(optuna, s, "bookkeeping", sweep.storage_url(folder, None))

    def calls(t):  # type: ignore[no-untyped-def]
        for q in s.space:
            sweep._suggest(t, q)
        t.set_user_attr("run", "x")
        for epoch in range(1, a.epochs + 1):
            t.report(0.5, epoch)
            t.should_prune()
        return 0.5

    costs = []
    for _ in range(20):
        t0 = time.perf_counter()
        study.optimize(calls, n_trials=1)
        costs.append(time.perf_counter() - t0)
    book = statistics.median(costs)
    print(f"Optuna's bookkeeping per trial: median {1000 * book:.0f} ms = {100 * book / statistics.median(plain):.1f} % "
          "of the plain run")


if __name__ == "__main__":
    main()
