"""Every `$ mlpkit ...` command shown in the README and docs/ runs as shown."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app

from .conftest import MNIST_DIR, ROOT, mnist_available

runner = CliRunner()

pytestmark = pytest.mark.slow  # fuzz corpora and whole commands: see `pytest -m "not slow"`


def _commands() -> list[tuple[str, str, int]]:
    """(file, command, expected exit code) for each `$ mlpkit` line of a console block."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^\$ (mlpkit .*)$", line)
            if not m:
                continue
            cmd = m.group(1).split("  #")[0].strip()
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            found.append((path.name, cmd, 2 if nxt.startswith("error:") else 0))
    return found


COMMANDS = _commands()
_RUNS: dict[str, object] = {}


def _needs_mnist(cmd: str) -> bool:
    """The command names MNIST, or a config of it (configs/vanishing-*.yaml train on MNIST)."""
    if "mnist" in cmd:
        return True
    for arg in shlex.split(cmd):
        p = ROOT / arg
        if arg.endswith(".yaml") and p.is_file() and "dataset: mnist" in p.read_text():
            return True
    return False


def _mnist_run(tmp_path):
    """One short MNIST run for every README command that shows a trained run."""
    if "mnist" not in _RUNS:
        run = tmp_path / "mnist-run"
        r = runner.invoke(app, ["train", "configs/mnist-sigmoid.yaml", "--epochs", "1", "--out", str(run), "-q",
                                "--data-dir", str(MNIST_DIR)])
        assert r.exit_code == 0, r.output
        _RUNS["mnist"] = run
    return _RUNS["mnist"]


def test_docs_show_commands():
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize("where,cmd,code", COMMANDS, ids=[f"{w}: {c}"[:70] for w, c, _ in COMMANDS])
def test_command_runs_as_shown(where, cmd, code, monkeypatch, tmp_path):
    if "download" in cmd:
        pytest.skip("downloads need the network")
    if _needs_mnist(cmd) and not mnist_available():
        pytest.skip(f"needs MNIST in {MNIST_DIR} (set MLPKIT_TEST_MNIST)")
    monkeypatch.chdir(ROOT)
    args = shlex.split(cmd)[1:]
    if args[0] == "sweep":  # sweeps/ is made where the command runs: a folder of the tests', shared by run and show
        where = _RUNS.setdefault("sweep_cwd", tmp_path)
        monkeypatch.chdir(where)  # type: ignore[arg-type]
        args = [str(ROOT / a) if a.endswith(".yaml") and (ROOT / a).is_file() else a for a in args]
    if args[0] == "train" and "--out" in args:  # the docs' run folder, made in the test's own folder
        args[args.index("--out") + 1] = str(tmp_path / "run")
    if args[0] == "train" and "--out" not in args:
        args += ["--out", str(tmp_path / "run")]
    placeholders = ("runs/mnist-sigmoid-20261128-101500", "runs/mnist")  # the docs' examples of a trained MNIST run
    placeholder = next((p for p in placeholders if p in args), "")
    if placeholder:
        args = [str(_mnist_run(tmp_path)) if a == placeholder else a for a in args]
        if "my-digit.jpg" in args:
            from PIL import Image

            pic = Image.new("L", (120, 160), 255)
            pic.paste(20, (55, 20, 68, 140))
            pic.save(tmp_path / "my-digit.jpg")
            args = [str(tmp_path / "my-digit.jpg") if a == "my-digit.jpg" else a for a in args]
        args = [str(tmp_path / a) if a.endswith((".onnx", ".safetensors")) else a for a in args]
    elif _needs_mnist(cmd) and "--data-dir" not in args and args[0] != "data":
        args += ["--data-dir", str(MNIST_DIR)]
    if args[:2] == ["data", "info"] or args[:2] == ["data", "list"]:
        monkeypatch.setenv("MLPKIT_DATA_DIR", str(MNIST_DIR))
    if "runs/A" in args:  # the README's placeholders for two runs of one's own
        for name, lr in (("A", "0.1"), ("B", "0.05")):
            assert runner.invoke(app, ["train", "configs/quickstart.yaml", "--epochs", "2", "--lr", lr, "--out",
                                       str(tmp_path / name), "-q"]).exit_code == 0
        args = [str(tmp_path / a[5:]) if a in ("runs/A", "runs/B") else a for a in args]
        args = [str(tmp_path / a) if a.endswith(".png") else a for a in args]
    r = runner.invoke(app, args)
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_readme_onnx_runtime_snippet_runs_as_shown(tmp_path, monkeypatch):
    """The README's ONNX Runtime lines, run on an exported quickstart model with uint8 pixels: the probabilities
    are mlpkit's own."""
    pytest.importorskip("onnxruntime")
    import numpy as np

    from mlpkit.app.runfiles import load_weights
    from mlpkit.nn.losses import softmax

    (snippet,) = [b for b in _python_blocks((ROOT / "README.md").read_text()) if "ONNX Runtime" in b.splitlines()[0]]
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", "configs/quickstart.yaml", "--epochs", "1", "--out", str(run), "-q"],
                         ).exit_code == 0
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["export", str(run), "--format", "onnx", "-o", "digits.onnx"]).exit_code == 0
    pixels = np.random.default_rng(0).integers(0, 17, (5, 64)).astype(np.uint8)
    scope = {"pixels": pixels}
    exec(snippet, scope)
    saved = load_weights(run)
    with saved.model.mode(training=False):
        expected = softmax(saved.model.forward(pixels.astype(np.float32) / 16.0).astype(np.float64))
    np.testing.assert_allclose(scope["probabilities"], expected, atol=1e-5)
