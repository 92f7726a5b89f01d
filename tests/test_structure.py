"""The layout the code promises: a math core that knows nothing of configs, files or screens; a thin CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mlpkit

PKG = Path(mlpkit.__file__).parent
OUTSIDE_THE_MATH = ["yaml", "urllib.request", "http.client", "platformdirs", "typer", "rich", "tqdm", "mlpkit.config.validate",
                    "mlpkit.data.load", "mlpkit.app.rundir", "mlpkit.app.cli", "mlpkit.app.render"]


@pytest.mark.parametrize("module", ["mlpkit.nn.layers", "mlpkit.nn.losses", "mlpkit.nn.model", "mlpkit.nn.optim"])
def test_the_math_core_imports_no_config_files_or_screens(module):
    code = (f"import sys, {module}\n"
            f"print(','.join(m for m in {OUTSIDE_THE_MATH!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import {module} loaded {out}"


def test_the_package_exports_load_lazily():
    out = subprocess.run([sys.executable, "-c", "import sys, mlpkit; from mlpkit import Linear, SGD; "
                          "print('yaml' in sys.modules, mlpkit.Trainer.__name__, 'yaml' in sys.modules, "
                          "mlpkit.load_config.__name__, 'yaml' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "Trainer", "False", "load_config", "True"]


def _names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}


def test_the_cli_only_parses_calls_and_renders():
    """No training loop, trainer, run writer or YAML parsing inside the command-line module."""
    names = _names(PKG / "app" / "cli.py")
    for forbidden in ("Trainer", "RunWriter", "train_epoch", "fit", "parse_yaml", "prepare_run_dir", "build_model",
                      "split_train_val"):
        assert forbidden not in names, forbidden


def test_no_learning_rate_outside_the_optimizer():
    """The lr lives in optim.SGD (the trainer sets it from the schedule): no layer, loss or model code names it."""
    for name in ("layers.py", "losses.py", "model.py", "_kernels.py"):
        names = _names(PKG / "nn" / name)
        assert not names & {"lr", "learning_rate", "backward_scale", "step_fused", "defer_dW"}, name
