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
PACKAGES = ["nn", "data", "config", "training", "diagnostics", "app"]
# What the math and the training loop must never load: YAML, the CLI, screens, the network, pictures, the app.
NOT_BELOW_THE_APP = ["yaml", "typer", "click", "rich", "tqdm", "urllib.request", "urllib.error", "http", "http.client",
                     "platformdirs", "PIL", "mlpkit.app", "mlpkit.data.cache", "mlpkit.data.download",
                     "mlpkit.data.folders", "mlpkit.data.images", "mlpkit.data.load", "mlpkit.config.validate"]


def _loaded_after(code: str, names: list[str]) -> list[str]:
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {names!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().split(",") if m]


@pytest.mark.parametrize("package", ["nn", "training"])
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


# --------------------------------------------------------------------------- one way in, one way out

# Calls that open, write, create or remove a file. mlpkit.reader and mlpkit.writer may make them; nothing else may.
_MODULE_CALLS: dict[str, set[str] | None] = {  # None: every function of the module
    "os": {"open", "fdopen", "unlink", "remove", "rmdir", "removedirs", "replace", "rename", "renames", "mkdir",
           "makedirs", "truncate", "link", "symlink", "mkfifo", "mknod", "chmod"},
    "np": {"load", "loadtxt", "genfromtxt", "fromfile", "memmap", "save", "savez", "savez_compressed", "savetxt"},
    "gzip": {"open", "GzipFile"}, "bz2": {"open", "BZ2File"}, "lzma": {"open", "LZMAFile"}, "zipfile": {"ZipFile"},
    "tarfile": {"open"}, "shutil": None, "tempfile": None, "io": {"open", "FileIO"}, "codecs": {"open"},
    "Image": {"open"}, "image_mod": {"open"},
}
_METHODS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "unlink", "rmdir", "mkdir", "touch",
            "symlink_to", "hardlink_to", "savefig", "save", "tofile"}
# The calls outside the reader and the writer that look like file access but are not: each works on bytes in
# memory or on a file object the reader opened. Listed by module and exact source text, with the reason.
_NOT_FILE_ACCESS = {
    ("app/export.py", "st.save(tensors, metadata=meta)"): "safetensors.numpy.save returns bytes",
    ("app/plots.py", 'fig.savefig(buf, format=path.suffix.lstrip(".").lower(), dpi=110, bbox_inches="tight")'):
        "into a BytesIO, written by the writer",
    ("app/preview.py", 'page.save(buf, format="PNG")'): "into a BytesIO, written by the writer",
    ("app/htmlreport.py", 'fig.savefig(buf, format="svg", bbox_inches="tight")'): "into a StringIO, inlined",
    ("app/htmlreport.py", 'pic.save(buf, format="PNG")'): "into a BytesIO, inlined as a data URI",
    ("data/download.py", 'gzip.GzipFile(fileobj=raw, mode="rb")'): "decompresses a file the reader opened",
    ("data/images.py", "np.load(io.BytesIO(read_bytes(p, MAX_FILE_BYTES * 4)), allow_pickle=False)"):
        "parses bytes the reader read",
    ("data/images.py", "image_mod.open(fh)"): "decodes a file object the reader opened",
    ("data/load.py", 'np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.uint8)'): "parses text in memory",
    ("data/npz.py", "zf.open(info)"): "a member of an archive the reader opened",
    ("data/npz.py", 'zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED)'): "builds an archive in a BytesIO",
    ("data/npz.py", "zipfile.ZipFile(fh)"): "reads an archive from a file object the reader opened",
    ("data/npz.py", 'zf.open(info, "w", force_zip64=True)'): "a member of the archive in memory",
}


def _file_calls(source: str) -> list[str]:
    """The source text of every call in ``source`` that may open, write, create or remove a file."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name):
            hit = f.id == "open"
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in _MODULE_CALLS:
            allowed = _MODULE_CALLS[f.value.id]
            hit = allowed is None or f.attr in allowed
        else:
            hit = isinstance(f, ast.Attribute) and f.attr in _METHODS
        if hit:
            found.append(ast.get_source_segment(source, node) or "")
    return found


def test_the_file_access_scan_can_fail():
    src = ("open(p)\nos.unlink(p)\np.unlink()\nnp.load(p)\nImage.open(p)\nPath(p).read_text()\ntempfile.mkstemp()\n"
           "shutil.rmtree(p)\nos.replace(a, b)\n'x'.replace('a', 'b')\nos.path.join(a)\nlen(p)\n")
    assert _file_calls(src) == ["open(p)", "os.unlink(p)", "p.unlink()", "np.load(p)", "Image.open(p)",
                                "Path(p).read_text()", "tempfile.mkstemp()", "shutil.rmtree(p)", "os.replace(a, b)"]


def test_only_the_reader_and_the_writer_open_write_or_remove_files():
    """One way in (mlpkit/reader.py), one way out (mlpkit/writer.py): every other call that touches a file is
    one of the listed in-memory ones, and every listed one still exists (the list cannot go stale)."""
    seen, stray = set(), []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel in ("reader.py", "writer.py"):
            continue
        for call in _file_calls(path.read_text(encoding="utf-8")):
            if (rel, call) in _NOT_FILE_ACCESS:
                seen.add((rel, call))
            else:
                stray.append(f"{rel}: {call}")
    assert stray == []
    assert seen == set(_NOT_FILE_ACCESS)
    assert _file_calls((PKG / "reader.py").read_text()) and _file_calls((PKG / "writer.py").read_text())
