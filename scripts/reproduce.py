"""Reproduce published MNIST results from the configs in configs/reproduce/.

    python scripts/reproduce.py all --data-dir ../shared/data/mnist
    python scripts/reproduce.py NAME [NAME ...]     (names: see RUNNERS below, or --help)

Each reproduction trains (or, for Nielsen ch. 5, measures at initialization) the
shipped config with mlpkit's own trainer on this machine, compares the result
with the published figure and its bar, and records the wall time. The table of
published versus measured numbers is written to docs/results.md (rows of
reproductions not run this time are kept from the previous file), and each
run's folder goes to runs/reproduce/<name>/ for scripts/figures.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlpkit.app import api
from mlpkit.app.configfile import load_config
from mlpkit.app.rundir import RunWriter
from mlpkit.diagnostics.gradprofile import grad_profile
from mlpkit.training.trainer import Trainer

CONFIGS = ROOT / "configs" / "reproduce"
RESULTS = ROOT / "docs" / "results.md"
STATE = ROOT / "docs" / "results.json"
RUNS = ROOT / "runs" / "reproduce"
CURVES = ROOT / "docs" / "curves"


@dataclass(frozen=True)
class Row:
    name: str
    source: str
    published: str
    bar: str
    measured: str
    passed: bool
    wall: str
    config: str
    note: str = ""


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _train(name: str, config: Path, source: api.DataSource) -> tuple[float, float, Path]:
    """Train a config into runs/reproduce/<name>; returns test accuracy, wall seconds, run folder."""
    out = RUNS / name
    t0 = time.perf_counter()
    trainer = api.prepare(config, (), source)
    result = api.train_run(trainer, RunWriter(out, trainer.cfg, force=True))  # a rerun replaces the last one
    return result.test.accuracy, time.perf_counter() - t0, out


def nielsen_ch5(source: api.DataSource) -> list[Row]:
    """Bias-gradient norms at initialization, 784-[30]×k-10 sigmoid, first 1,000 training images."""
    published = {2: 4.7, 3: 24.0, 4: 96.0}
    rows = []
    for k, pub in published.items():
        cfg_path = CONFIGS / f"nielsen-ch5-k{k}.yaml"
        t0 = time.perf_counter()
        ratios = []
        for seed in range(10):
            trainer = Trainer(load_config(cfg_path, (f"seed={seed}",)), source.load(load_config(cfg_path)))
            db = [s.db_norm for s in grad_profile(trainer, 0, probe=1000).snapshots[0].linear[:-1]]
            ratios.append(db[-1] / db[0])
        seconds = time.perf_counter() - t0
        r0, mean, sd = ratios[0], statistics.mean(ratios), statistics.stdev(ratios)
        ok = pub / 2 <= r0 <= pub * 2
        rows.append(Row(
            f"nielsen-ch5-k{k}", "Nielsen, *Neural Networks and Deep Learning*, ch. 5",
            f"‖db‖ last/first hidden layer ≈ {pub:g}×", f"within 2× ({pub / 2:g}–{pub * 2:g})",
            f"{r0:.1f}× (seed 0); {mean:.1f} ± {sd:.1f}× over seeds 0–9", ok, f"{seconds:.1f} s (10 seeds)",
            f"configs/reproduce/nielsen-ch5-k{k}.yaml",
            "softmax-CE head instead of Nielsen's sigmoid output with cross-entropy",
        ))
    return rows


def _accuracy_row(name: str, source_text: str, published_err: float, bar_err: float, arch: str,
                  src: api.DataSource, note: str = "") -> Row:
    cfg = CONFIGS / f"{name}.yaml"
    acc, seconds, _ = _train(name, cfg, src)
    err = 100 * (1 - acc)
    return Row(name, source_text, f"{published_err:.2f} % test error ({arch})", f"≤ {bar_err:.2f} %",
               f"{err:.2f} % ({100 * acc:.2f} % accuracy)", err <= bar_err + 1e-9,
               f"{seconds / 60:.1f} min", f"configs/reproduce/{name}.yaml", note)


def nielsen_ch3(src: api.DataSource) -> list[Row]:
    return [_accuracy_row("nielsen-ch3", "Nielsen, ch. 3", 1.96, 2.0, "784-100-10 sigmoid, L2", src,
                          "bar: ≥ 98.0 % accuracy")]


def simard(src: api.DataSource) -> list[Row]:
    return [_accuracy_row("simard-2003", "Simard et al. 2003 (LeCun's MNIST table)", 1.6, 1.6,
                          "784-800-10, sigmoid-type units, cross-entropy", src)]


def srivastava(src: api.DataSource) -> list[Row]:
    return [_accuracy_row("srivastava-2014", "Srivastava et al. 2014, Table 2", 1.35, 1.35,
                          "dropout network, logistic units", src,
                          "their retain probabilities 0.8 / 0.5 are mlpkit's p = 0.2 / 0.5")]


def _train_with_test_curve(name: str, source: api.DataSource) -> tuple[float, float, list[dict]]:
    """Train like ``_train``, also scoring the test split after every epoch (reported, never used to choose
    anything); the curve goes to runs/reproduce/<name>/test_curve.json and docs/curves/<name>.json. Returns the
    final test accuracy, the wall seconds of the run (data loading and the final score included, the per-epoch
    test scoring excluded), and the curve."""
    out = RUNS / name
    start = time.perf_counter()
    trainer = api.prepare(CONFIGS / f"{name}.yaml", (), source)
    curve: list[dict] = []
    scoring = 0.0  # seconds spent on the extra test scoring, left out of the wall time

    def on_epoch(m, seconds: float) -> None:
        nonlocal scoring
        t0 = time.perf_counter()
        err = 100 * (1 - trainer.evaluate_test().accuracy)
        scoring += time.perf_counter() - t0
        curve.append({"epoch": m.epoch, "minutes": (time.perf_counter() - start - scoring) / 60,
                      "test_error": err, "val_error": None if m.val_acc is None else 100 * (1 - m.val_acc)})
        if m.epoch % 10 == 0:
            print(f"   epoch {m.epoch}: {curve[-1]['minutes']:.1f} min, test error {err:.2f} %", flush=True)
        (out / "test_curve.json").write_text(json.dumps(curve) + "\n")

    result = api.train_run(trainer, RunWriter(out, trainer.cfg, force=True), on_epoch=on_epoch)
    seconds = time.perf_counter() - start - scoring
    CURVES.mkdir(parents=True, exist_ok=True)
    (CURVES / f"{name}.json").write_text(json.dumps({"wall_minutes": seconds / 60, "curve": [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in c.items()} for c in curve]}) + "\n")
    return result.test.accuracy, seconds, curve


def _milestones(curve: list[dict], marks: tuple[int, ...] = (10, 20, 30, 60, 90)) -> str:
    """The test error reached at the given minutes into the run, as far as it lasted."""
    parts = []
    for minutes in marks:
        done = [c for c in curve if c["minutes"] <= minutes]
        if done and done[-1] is not curve[-1]:
            parts.append(f"{done[-1]['test_error']:.2f} % at {minutes} min (epoch {done[-1]['epoch']})")
    return "; ".join(parts + [f"{curve[-1]['test_error']:.2f} % when it finished, at {curve[-1]['minutes']:.1f} min"])


def _curve_row(name: str, source_text: str, published: str, bar_err: float, src: api.DataSource, *,
               minutes: float | None = None, marks: tuple[int, ...] = (10, 20, 30, 60, 90), note: str = "") -> Row:
    """A reproduction scored by its final test error (and, with ``minutes``, its wall time), with the curve."""
    acc, seconds, curve = _train_with_test_curve(name, src)
    err = 100 * (1 - acc)
    best = min(curve, key=lambda c: c["test_error"])
    passed = err <= bar_err + 1e-9 and (minutes is None or seconds <= 60 * minutes)
    bar = f"≤ {bar_err:.2f} %" + (f" in ≤ {minutes:g} min" if minutes else "")
    text = (f"test error during the run (scored after every epoch, never used to choose anything): "
            f"{_milestones(curve, marks)}; lowest {best['test_error']:.2f} % at epoch {best['epoch']}. Curve: "
            f"[curves/{name}.json](curves/{name}.json), figure: [figures/{name}.png](figures/{name}.png)")
    return Row(name, source_text, published, bar, f"{err:.2f} % ({100 * acc:.2f} % accuracy)", passed,
               f"{seconds / 60:.1f} min", f"configs/reproduce/{name}.yaml", "; ".join(p for p in (note, text) if p))


def simard_elastic(src: api.DataSource) -> list[Row]:
    return [_curve_row("simard-2003-elastic", "Simard, Steinkraus & Platt 2003, elastic distortions",
                       "0.70 % test error (784-800-10, cross-entropy, elastically distorted training images)", 0.70,
                       src)]


def simard_elastic_10min(src: api.DataSource) -> list[Row]:
    return [_curve_row("simard-2003-elastic-10min", "Simard, Steinkraus & Platt 2003, elastic distortions",
                       "0.70 % test error (784-800-10, elastically distorted training images)", 0.70, src,
                       minutes=10, marks=(2, 4, 6, 8),
                       note="wall time from before loading MNIST to the final test score, on 2 cores, run on "
                            "commit 98ea3c3 with nothing else on the machine (validation 0.60 %). The schedule was "
                            "chosen on the validation split (5,000 training images held out): a 290-epoch candidate, "
                            "scored on validation only, reached 0.48 % at epochs 220 and 290 (11.8 min); 200 epochs, "
                            "to fit ten minutes on the earlier code, gave 0.62 % test error in 7.1 min (validation "
                            "0.64 %), and, rerun after the chunked augmentation changed the draws, 0.71 % in 6.7 min "
                            "(validation 0.62 %); 250 epochs, what fits ten minutes at about 2 s an epoch, gave "
                            "0.66 % in 8.0 min on commit 2834d3e (validation 0.58 %); this run is the same recipe "
                            "after units of 2,048 images changed the draws again. Five runs in all: the test split "
                            "chose nothing, but the change to 250 came after the 0.71 % rerun")]


def ciresan_mlp(src: api.DataSource) -> list[Row]:
    return [_curve_row("ciresan-2010-mlp", "Cireşan et al. 2010, deep plain MLPs on deformed digits",
                       "0.35 % test error (784-2500-2000-1500-1000-500-10 on a GPU); 0.46 % with 1500-1000-500", 0.45,
                       src, minutes=120, marks=(15, 30, 45, 60, 90),
                       note="784-1500-1000-500-10 ReLU, batch 64, Cireşan's deformations (elastic σ 6, α 36; "
                            "rotations up to 15°, scalings up to 15 %), trained on all 60,000 training images (as "
                            "Cireşan did: a deformed image is new every epoch) in one sitting of 520 epochs on 2 "
                            "cores, run on commit 6bd812b (before units of 2,048 images changed the augmentation's "
                            "draws; not rerun since); its first minutes shared the machine with short "
                            "benchmarks (epochs of 12-22 s instead of 11 s), which the wall time includes. The "
                            "second recipe tried: the first (batch 128, elastic σ 4, α 34, rotations 10°, scalings "
                            "10 %, 480 epochs, 5,000 images held out) reached 0.58 % in 70 min, validation 0.44 % "
                            "(its curve: [curves/ciresan-2010-mlp-attempt1.json]"
                            "(curves/ciresan-2010-mlp-attempt1.json)); this one was set from the paper and that run")]


def pytorch_time_to_99_3(src: api.DataSource) -> list[Row]:
    """scripts/time_to_accuracy.py on the ten-minute recipe, to 99.3 % test accuracy, against PyTorch +
    torchvision; PyTorch is stopped at twice mlpkit's time. $MLPKIT_TORCH_PYTHON names a Python with torch and
    torchvision, if this one has not."""
    import subprocess
    import tempfile

    name = "pytorch-time-to-99.3"
    with tempfile.TemporaryDirectory() as tmp:
        summary_file = Path(tmp) / "summary.json"
        cmd = [sys.executable, str(ROOT / "scripts" / "time_to_accuracy.py"), "--config",
               str(CONFIGS / "simard-2003-elastic-10min.yaml"), "--target", "0.993", "--reps", "1", "--give-up", "2",
               "--json", str(summary_file), "--data-dir", src.data_dir or os.environ.get("MLPKIT_DATA_DIR", "")]
        if os.environ.get("MLPKIT_TORCH_PYTHON"):
            cmd += ["--torch-python", os.environ["MLPKIT_TORCH_PYTHON"]]
        subprocess.run(cmd, check=True)
        summary = json.loads(summary_file.read_text())
    if not summary["runs"]["torch"]:
        print(f"   {name}: skipped, PyTorch is not installed here (set MLPKIT_TORCH_PYTHON)", flush=True)
        return []
    mine, theirs = summary["runs"]["mlpkit"][0], summary["runs"]["torch"][0]
    m_time = summary["medians"]["mlpkit"]
    if summary.get("ratio") is not None:
        t_text, ratio, below = f"{summary['medians']['torch'] / 60:.1f} min", summary["ratio"], ""
    else:
        t_text = f"> {theirs['curve'][-1][1] / 60:.1f} min (stopped there, at {theirs['curve'][-1][2]:.2f} %)"
        ratio, below = summary["ratio_below"], "< "

    def costs(r: dict) -> str:
        n = len(r["curve"])
        return f"augmentation {r['augment_s'] / n:.2f} s, steps {r['steps_s'] / n:.2f} s per epoch"

    d = summary["displacement"]
    note = (f"the ten-minute recipe on both sides (same initial weights, minibatches, schedule); mlpkit {costs(mine)}; "
            f"PyTorch {costs(theirs)} with {theirs['workers']} DataLoader workers (the fastest of 0, 1, 2 over 200 "
            f"steps); RMS displacement, pixels, mlpkit α {d['alpha']:g} / torchvision α {2 * d['alpha']:g}: "
            f"{d['mlpkit']['all']:.3f} / {d['torchvision']['all']:.3f} over the image, "
            f"{d['mlpkit']['inner']:.3f} / {d['torchvision']['inner']:.3f} in its inner half, "
            f"{d['mlpkit']['ink']:.3f} / {d['torchvision']['ink']:.3f} weighted by the mean digit (torchvision "
            f"pads its smoothing by reflection, Simard zeros: the outer 4-pixel ring, MNIST's empty margin, moves "
            f"{d['mlpkit']['ring']:.3f} / {d['torchvision']['ring']:.3f})")
    if below:
        per_epoch = theirs["curve"][-1][1] / len(theirs["curve"])
        epochs = next(e for e, _, a in mine["curve"] if a >= summary["target"])
        waits = ("PyTorch's loop waits on the loader, and its steps share the two cores with the workers"
                 if theirs["workers"] else "PyTorch's loop transforms each batch, image by image, before its step")
        note += (f"; {waits}; at its {per_epoch:.0f} s per epoch, the {epochs} epochs mlpkit needed would take it "
                 f"about {per_epoch * epochs / 60:.0f} min (an extrapolation, not a measurement)")
    return [Row(name, "PyTorch 2.14 + torchvision 0.29 (transforms.v2.ElasticTransform in a DataLoader)",
                "time to 99.3 % test accuracy", "mlpkit ≤ 0.5 × PyTorch's time",
                f"mlpkit {m_time / 60:.1f} min, PyTorch {t_text}: {below}{ratio:.2f}×", ratio <= 0.5,
                f"{(m_time + theirs['curve'][-1][1]) / 60:.1f} min", "configs/reproduce/simard-2003-elastic-10min.yaml",
                note)]


RUNNERS = {"nielsen-ch5": nielsen_ch5, "nielsen-ch3": nielsen_ch3, "simard-2003": simard,
           "srivastava-2014": srivastava, "simard-2003-elastic": simard_elastic,
           "simard-2003-elastic-10min": simard_elastic_10min, "pytorch-time-to-99.3": pytorch_time_to_99_3,
           "ciresan-2010-mlp": ciresan_mlp}


def _commit() -> str | None:
    """The checkout's commit, "+changes" when tracked files differ from it; None outside a git checkout."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def write_table(rows: list[Row]) -> None:
    previous = json.loads(STATE.read_text()) if STATE.is_file() else {}
    for r in rows:
        previous[r.name] = {**r.__dict__, "machine": _machine(), "date": time.strftime("%Y-%m-%d"),
                            "commit": _commit()}
    order = [n for runner in RUNNERS for n in previous
             if n == runner or (n.startswith(runner + "-") and n not in RUNNERS)]
    STATE.write_text(json.dumps(previous, indent=2) + "\n")
    lines = [
        "# Published results, reproduced",
        "",
        "Generated by `python scripts/reproduce.py all --data-dir DIR` (DIR: a folder holding MNIST); every row is a run of",
        "the shipped config on the machine named, with mlpkit's own trainer. Learning curves:",
        "[figures/learning-curves.png](figures/learning-curves.png). `python scripts/reproduce.py NAME` reruns one row;",
        "`pytorch-time-to-99.3` also runs PyTorch and torchvision ($MLPKIT_TORCH_PYTHON names a Python that has them).",
        "",
        "| reproduction | source | published | bar | measured | met | wall time | config |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in order:
        r = previous[n]
        lines.append(f"| {r['name']} | {r['source']} | {r['published']} | {r['bar']} | {r['measured']} | "
                     f"{'yes' if r['passed'] else '**no**'} | {r['wall']} | `{r['config']}` |")
    lines += ["", "Notes:", ""]
    for n in order:
        r = previous[n]
        if r.get("note"):
            lines.append(f"- {r['name']}: {r['note']}.")
    machines = sorted({f"{previous[n]['machine']} ({previous[n]['date']})" for n in order})
    lines += ["", "Machines: " + "; ".join(machines) + ".", ""]
    RESULTS.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", help=f"'all' or some of: {', '.join(RUNNERS)}")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    names = list(RUNNERS) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in RUNNERS]
    if unknown:
        raise SystemExit(f"unknown reproduction {unknown[0]!r}; expected all or one of {', '.join(RUNNERS)}")
    src = api.DataSource(args.data_dir, offline=False)
    rows: list[Row] = []
    for n in names:
        print(f"== {n}", flush=True)
        new = RUNNERS[n](src)
        for r in new:
            print(f"   {r.name}: published {r.published}; measured {r.measured}; "
                  f"{'meets' if r.passed else 'MISSES'} the bar ({r.bar}); {r.wall}", flush=True)
        rows += new
        write_table(rows)
    failed = [r.name for r in rows if not r.passed]
    if failed:
        raise SystemExit(f"bars missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
