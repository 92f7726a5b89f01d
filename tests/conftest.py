"""Shared fixtures: seeded generators, paths, and the MNIST location."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# A bare `pytest` without the install step: say what to run instead of 40 import errors.
_MISSING = [m for m in ("numpy", "scipy", "yaml", "typer", "rich", "tqdm", "platformdirs", "hypothesis")
            if importlib.util.find_spec(m) is None]
if _MISSING:
    pytest.exit(f"mlpkit's dependencies are not installed ({', '.join(_MISSING)} missing): "
                "run pip install '.[test]' first", returncode=2)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
# Real MNIST lives beside the project in ../shared/data/mnist; never copied into it.
MNIST_DIR = Path(os.environ.get("MLPKIT_TEST_MNIST", ROOT.parent / "shared" / "data" / "mnist"))


def mnist_available() -> bool:
    return (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()


needs_mnist = pytest.mark.skipif(
    not mnist_available(), reason=f"MNIST IDX files not found in {MNIST_DIR} (set MLPKIT_TEST_MNIST)"
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """No test reads or fills the real dataset cache."""
    monkeypatch.delenv("MLPKIT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(autouse=True)
def _no_global_rng_use():
    """Every test also proves mlpkit never touches NumPy's global RNG."""
    before = np.random.get_state()[1].copy()
    yield
    after = np.random.get_state()[1]
    assert np.array_equal(before, after), "the global NumPy RNG was used"


@pytest.fixture
def write_config(tmp_path):
    """Write YAML text to a file and return its path."""

    def _write(text: str, name: str = "cfg.yaml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return _write
