"""Draw the documentation's figures from real runs (needs matplotlib: pip install 'mlpkit[plot]').

    python scripts/figures.py --data-dir ../shared/data/mnist [--epochs 5]

- docs/figures/grad-norms.png: ‖db‖ of each hidden layer across training epochs,
  for configs/vanishing-sigmoid.yaml and its ReLU twin (trained here, inspect-grads style).
- docs/figures/learning-curves.png: accuracy per epoch of the reproductions, read from
  the run folders scripts/reproduce.py leaves in runs/reproduce/ (the long elastic run apart).
- docs/figures/<name>.png for each of RECORDS: test error against wall time of those reproductions,
  from docs/curves/<name>.json (scripts/reproduce.py writes it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlpkit.app import api
from mlpkit.app.plots import require_matplotlib, save_figure
from mlpkit.diagnostics.gradprofile import grad_profile

OUT = ROOT / "docs" / "figures"


def grad_norms(src: api.DataSource, epochs: int) -> Path:
    plt = require_matplotlib()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, name in zip(axes, ("vanishing-sigmoid", "vanishing-relu")):
        trainer = api.prepare(ROOT / "configs" / f"{name}.yaml", (), src)
        prof = grad_profile(trainer, epochs, probe=1000)
        hidden = [s.layer for s in prof.snapshots[0].linear[:-1]]
        for j, layer in enumerate(hidden):
            ax.plot([s.epoch for s in prof.snapshots], [s.linear[j].db_norm for s in prof.snapshots], marker="o",
                    label=f"hidden layer {j + 1} ({layer})")
        ax.set_yscale("log")
        ax.set_xlabel("epoch (0 = initialization)")
        ax.set_title(f"{name}: 784-30-30-30-30-10", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("‖db‖, mean gradient over 1,000 images")
    axes[1].legend(fontsize=8)
    fig.suptitle("Speed of learning per hidden layer (Nielsen ch. 5): sigmoid vanishes, ReLU does not", fontsize=10)
    path = OUT / "grad-norms.png"
    save_figure(fig, path)
    plt.close(fig)
    return path


def learning_curves() -> Path | None:
    plt = require_matplotlib()
    runs = sorted(p for p in (ROOT / "runs" / "reproduce").glob("*/metrics.jsonl") if p.parent.name not in RECORDS)
    if not runs:
        print("no runs in runs/reproduce/; run scripts/reproduce.py first", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for m in runs:
        rows = [json.loads(line) for line in m.read_text().splitlines() if line.strip()]
        key = "val_acc" if rows and rows[0].get("val_acc") is not None else "train_eval_acc"
        label = f"{m.parent.name} ({'validation' if key == 'val_acc' else 'training sample'})"
        ax.plot([r["epoch"] for r in rows], [100 * (1 - r[key]) for r in rows], label=label)
        results = m.parent / "results.json"
        if results.is_file():
            test = json.loads(results.read_text())["test"]["accuracy"]
            ax.scatter([rows[-1]["epoch"]], [100 * (1 - test)], marker="*", s=80)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("error, % (inference mode); ★ = final test error")
    ax.set_title("Reproductions: learning curves", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    path = OUT / "learning-curves.png"
    save_figure(fig, path)
    plt.close(fig)
    return path


ELASTIC = "simard-2003-elastic"
# Reproductions drawn as test error against wall time: name -> (title, published bar, its label).
RECORDS = {
    ELASTIC: ("784-800-10 sigmoid, elastic distortions (α = 34, σ = 4)", 0.70, "Simard et al. 2003: 0.70 %"),
    "simard-2003-elastic-10min": ("The ten-minute recipe (configs/reproduce/simard-2003-elastic-10min.yaml)", 0.70,
                                  "Simard et al. 2003: 0.70 %"),
    "ciresan-2010-mlp": ("784-1500-1000-500-10 ReLU, batch 64, elastic + affine deformations, all 60,000 images",
                         0.45, "the bar: 0.45 %"),
}


def record_curve(name: str) -> Path | None:
    """docs/figures/<name>.png from docs/curves/<name>.json (or the run's test_curve.json)."""
    plt = require_matplotlib()
    title, bar, label = RECORDS[name]
    path = ROOT / "docs" / "curves" / f"{name}.json"
    if path.is_file():
        curve = json.loads(path.read_text())["curve"]
    elif (ROOT / "runs" / "reproduce" / name / "test_curve.json").is_file():
        curve = json.loads((ROOT / "runs" / "reproduce" / name / "test_curve.json").read_text())
    else:
        print(f"no {path}; run scripts/reproduce.py {name} first", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    minutes = [c["minutes"] for c in curve]
    ax.plot(minutes, [c["test_error"] for c in curve], lw=0.8, label="test error (scored after every epoch)")
    if curve[0].get("val_error") is not None:
        ax.plot(minutes, [c["val_error"] for c in curve], lw=0.8, alpha=0.6, label="validation error")
    ax.axhline(bar, color="k", ls="--", lw=0.8, label=label)
    ax.set_yscale("log")
    ax.set_xlabel(f"wall time, minutes (2 cores); {len(curve)} epochs")
    ax.set_ylabel("error, %")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out = OUT / f"{name}.png"
    save_figure(fig, out)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=5, help="training epochs for the gradient-norm figure")
    ap.add_argument("--only", choices=["grad-norms", "learning-curves", *RECORDS])
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "grad-norms"):
        print(grad_norms(api.DataSource(args.data_dir), args.epochs))
    if args.only in (None, "learning-curves"):
        print(learning_curves())
    for name in RECORDS:
        if args.only in (None, name):
            print(record_curve(name))


if __name__ == "__main__":
    main()
