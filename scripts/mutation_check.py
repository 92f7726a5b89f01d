"""Mutation testing of the math: does `mlpkit gradcheck` catch every change that changes training?

    python scripts/mutation_check.py [--files nn/layers.py nn/losses.py ...] [--limit N]

One mutation at a time — an arithmetic operator swapped (+ ↔ −, × ↔ ÷) or a unary minus
dropped — is made in a copy of the package. For each, a fresh process runs `mlpkit gradcheck`
(every op, the default network, its training steps and properties) and trains a small network
with every training option on (dropout, momentum, weight decay, max-norm, a schedule) for two
epochs. A mutation is:

- caught: gradcheck fails (or the mutated code cannot even run);
- equivalent: training computes the same weights and metrics bit for bit (nothing to catch);
- SURVIVED: gradcheck passes but training computes something else.

The goal is zero survivors. The run takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}

PROBE = r"""
import hashlib, json, sys
import numpy as np
from mlpkit.diagnostics import gradcheck
from mlpkit.config.validate import config_from_dict
from mlpkit.data.load import load_digits
from mlpkit.training.trainer import Trainer, fit
report = gradcheck.gradcheck()
cfg = config_from_dict({"seed": 1, "data": {"validation": 200, "train_eval_samples": 300},
    "model": {"max_norm": 2.0, "layers": [{"dropout": 0.1}, {"linear": 32}, "sigmoid", {"dropout": 0.3},
              {"linear": 16}, "relu", {"linear": 16}, "tanh", {"linear": 10}]},
    "train": {"epochs": 2, "batch_size": 20, "lr": 0.2, "momentum": 0.9, "weight_decay": 1e-3,
              "lr_schedule": "exponential", "lr_decay": 0.7, "grad_norm_samples": 0}})
h = hashlib.sha256()
try:
    with np.errstate(all="ignore"):
        t = Trainer(cfg, load_digits())
        _, test = fit(t)
    for v in t.model.named_params().values():
        h.update(np.ascontiguousarray(v).tobytes())
    # metrics to 9 significant digits, gradient norms (float32 sums over millions of terms) to 4: a mutation
    # that only picks another, equally exact way to compute a reported number (the gradient norm's Gram
    # route instead of the formed product) changes its last bits, not what it means
    h.update(json.dumps([{k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in m.__dict__.items()
                          if k != "grad_norms"} for m in t.history]).encode())
    h.update(json.dumps([{k: f"{v:.4g}" for k, v in m.grad_norms.items()} for m in t.history]).encode())
    h.update(f"{test.loss:.9g} {test.accuracy}".encode())
    digest = h.hexdigest()
except Exception as e:
    digest = "error: " + type(e).__name__
print(json.dumps({"passed": report.passed, "train": digest}))
"""


def sites(source: str) -> list[tuple[int, int, str]]:
    """(line, column, description) of every mutable operator."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAP:
            out.append((node.lineno, node.col_offset, f"{type(node.op).__name__}→{SWAP[type(node.op)].__name__}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            out.append((node.lineno, node.col_offset, "drop unary minus"))
    return sorted(set(out))


def mutate(source: str, target: tuple[int, int, str]) -> str:
    tree = ast.parse(source)

    class T(ast.NodeTransformer):
        def generic_visit(self, node):
            super().generic_visit(node)
            here = (getattr(node, "lineno", None), getattr(node, "col_offset", None))
            if here == target[:2]:
                if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAP:
                    node.op = SWAP[type(node.op)]()
                elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
                    return node.operand
            return node

    return ast.unparse(ast.fix_missing_locations(T().visit(tree)))


def probe(pkg_root: Path) -> dict:
    p = subprocess.run([sys.executable, "-c", PROBE], cwd=pkg_root, capture_output=True, text=True, timeout=300,
                       # no bytecode cache: a one-character mutation keeps the file's size and, within a second,
                       # its mtime, so a cached .pyc of another mutation would be run instead
                       env={"PYTHONPATH": str(pkg_root), "OPENBLAS_NUM_THREADS": "1", "PATH": "",
                            "PYTHONDONTWRITEBYTECODE": "1"})
    if p.returncode != 0:
        return {"passed": False, "train": "crash"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", nargs="+", default=["nn/layers.py", "nn/losses.py", "nn/optim.py", "nn/model.py",
                                                     "nn/_kernels.py"])
    ap.add_argument("--limit", type=int, default=0, help="at most this many mutations per file (0: all)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "mlpkit"
        shutil.copytree(ROOT / "mlpkit", pkg, ignore=shutil.ignore_patterns("__pycache__"))
        base = probe(Path(tmp))
        assert base["passed"], "gradcheck fails on the unmutated code"
        counts = {"caught": 0, "equivalent": 0, "SURVIVED": 0}
        for name in args.files:
            original = (ROOT / "mlpkit" / name).read_text()
            found = sites(original)[: args.limit or None]
            for site in found:
                (pkg / name).write_text(mutate(original, site))
                r = probe(Path(tmp))
                verdict = "caught" if not r["passed"] else ("equivalent" if r["train"] == base["train"] else "SURVIVED")
                counts[verdict] += 1
                print(f"{name}:{site[0]}:{site[1]} {site[2]:<18} {verdict}", flush=True)
            (pkg / name).write_text(original)
        print(json.dumps(counts))


if __name__ == "__main__":
    main()
