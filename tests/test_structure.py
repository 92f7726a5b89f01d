"""The house: packages whose import rules a machine checks, a math core that knows nothing of files or screens,
a thin CLI, small modules, and a package that imports where fcntl does not exist."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mlpkit

PKG = Path(mlpkit.__file__).parent
PACKAGES = ["nn", "data", "config", "train", "diagnostics", "app"]
# What the math and the training loop must never load: YAML, the CLI, screens, the network, pictures, the app.
NOT_BELOW_THE_APP = ["yaml", "typer", "click", "rich", "tqdm", "urllib.request", "urllib.error", "http", "http.client",
                     "platformdirs", "PIL", "mlpkit.app", "mlpkit.data.cache", "mlpkit.data.download",
                     "mlpkit.data.folders", "mlpkit.data.images", "mlpkit.data.load", "mlpkit.config.validate"]


def _loaded_after(code: str, names: list[str]) -> list[str]:
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {names!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().split(",") if m]


@pytest.mark.parametrize("package", ["nn", "train"])
def test_the_math_and_the_training_loop_load_no_io(package):
    """Every module of the package imported, and none of the app's, the network's or the screen's modules loaded.
    (urllib.parse is not on the list: Python's own pathlib imports it.)"""
    code = (f"import importlib, pkgutil, mlpkit.{package} as p\n"
            "for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.'):\n    importlib.import_module(m.name)")
    assert _loaded_after(code, NOT_BELOW_THE_APP) == []


def test_the_probe_can_fail():
    assert _loaded_after("import mlpkit.app.cli", ["typer", "mlpkit.app"]) == ["typer", "mlpkit.app"]


def test_the_package_exports_load_lazily():
    code = ("import sys, mlpkit\nfrom mlpkit import Linear, SGD\na = 'yaml' in sys.modules\nmlpkit.Trainer\n"
            "b = 'yaml' in sys.modules\nmlpkit.load_config\nprint(a, b, 'yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True"]


def test_the_import_rules_hold():
    """import-linter's contracts in pyproject.toml: the layers, nn's imports, private modules, no cycles."""
    lint = Path(sys.executable).parent / "lint-imports"
    r = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=PKG.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 5 kept, 0 broken." in r.stdout


def test_mlpkit_and_its_help_work_where_fcntl_does_not_exist():
    """On Windows there is no fcntl: import mlpkit, the API and `mlpkit --help` must not need it."""
    code = (
        "import sys, importlib.abc\n"
        "class NoFcntl(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'fcntl':\n"
        "            raise ModuleNotFoundError(\"No module named 'fcntl'\", name=name)\n"
        "assert 'fcntl' not in sys.modules\n"
        "sys.meta_path.insert(0, NoFcntl())\n"
        "import mlpkit, mlpkit.app.api, mlpkit.app.cli\n"
        "assert 'fcntl' not in sys.modules\n"
        "sys.argv = ['mlpkit', '--help']\n"
        "mlpkit.app.cli.run()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Usage: mlpkit" in r.stdout and "train" in r.stdout and r.stderr == ""


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_what_it_holds_and_may_import(package):
    doc = ast.get_docstring(ast.parse((PKG / package / "__init__.py").read_text())) or ""
    assert len(doc.splitlines()) >= 3 and ("May import" in doc or "may import" in doc), package


def test_no_module_over_400_lines_without_a_reason():
    long = {}
    for path in PKG.rglob("*.py"):
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > 400 and "Long because" not in doc:
            long[str(path.relative_to(PKG))] = lines
    assert long == {}


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


def test_no_misleading_aliases():
    """No module imported under a name that means something else (gc is the garbage collector)."""
    for path in [*PKG.rglob("*.py"), *Path(__file__).parent.rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                assert not {a.asname for a in node.names} & {"gc", "dr", "gp", "ex"}, path
