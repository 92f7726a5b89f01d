"""Datasets: the embedded digits, IDX files (valid and corrupt), .npz files, MNIST itself."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app
from mlpkit.data.cache import DataWarning, dataset_status
from mlpkit.data.core import split_train_val, to_float
from mlpkit.data.idx import read_idx
from mlpkit.data.load import load_dataset, load_digits
from mlpkit.errors import DataError

from ..conftest import MNIST_DIR, needs_mnist
from ..idx_files import idx_bytes, register, write_idx_dataset


def test_digits_embedded_split_is_fixed():
    d = load_digits()
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
    assert d.x_train.dtype == np.uint8 and d.x_train.max() == 16 and d.scale == 1 / 16
    assert np.bincount(np.concatenate([d.y_train, d.y_test])).tolist() == [178, 182, 177, 183, 181, 182, 181, 179,
                                                                            174, 180]
    again = load_digits()
    assert np.array_equal(d.y_test, again.y_test) and np.array_equal(d.x_train, again.x_train)


def test_validation_split_is_held_out_of_the_end():
    d = load_digits()
    train, val = split_train_val(d, 100)
    assert len(train) == 1337 and len(val) == 100
    assert np.shares_memory(val.x, d.x_train)  # views, no copies
    np.testing.assert_array_equal(val.y, d.y_train[-100:])
    with pytest.raises(DataError, match=r"holds out 1,437 examples but digits has only 1,437"):
        split_train_val(d, 1437)


def test_to_float_scales_a_batch():
    x = np.array([[0, 255, 51]], dtype=np.uint8)
    out = to_float(x, 1 / 255, np.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 1.0, 0.2]], rtol=1e-6)


@pytest.mark.parametrize("src", [np.uint8, np.uint16, np.int16, np.int32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_to_float_gives_the_values_of_one_mixed_type_multiply(src, order):
    """Small integers are cast and then scaled in place; every type gives, bit for bit, what one multiply of
    the stored values by the scale (in the target dtype) gives, and the order asked for."""
    x = np.random.default_rng(0).integers(0, 256, (5, 7)).astype(src)
    for dtype in (np.float32, np.float64):
        want = np.empty(x.shape, dtype=dtype)
        np.multiply(x, np.asarray(1 / 255, dtype=dtype), out=want, casting="unsafe")
        out = to_float(x, 1 / 255, dtype, order)
        assert out.dtype == dtype and (out.flags.f_contiguous if order == "F" else out.flags.c_contiguous)
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(to_float(x, 1 / 255, dtype, order, shift=-0.5), want + dtype(-0.5))


@pytest.mark.parametrize("compress", [True, False])
def test_idx_dataset_from_folder(tmp_path, monkeypatch, compress):
    arrays = write_idx_dataset(tmp_path / "gz")
    register(monkeypatch, tmp_path / "gz")
    if not compress:
        write_idx_dataset(tmp_path / "raw", compress=False)
    d = load_dataset("tiny", tmp_path / ("gz" if compress else "raw"), offline=True)
    assert d.x_train.shape == (60, 784) and d.x_test.shape == (20, 784) and d.x_train.dtype == np.uint8
    np.testing.assert_array_equal(d.x_train.reshape(60, 28, 28), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_idx_dataset_from_env_var_subfolder(tmp_path, monkeypatch):
    write_idx_dataset(tmp_path / "tiny")
    register(monkeypatch, tmp_path / "tiny")
    monkeypatch.setenv("MLPKIT_DATA_DIR", str(tmp_path))
    assert load_dataset("tiny", offline=True).x_train.shape == (60, 784)


def test_missing_dataset_names_files_and_folder(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("mnist", tmp_path / "empty", offline=True)
    msg = str(e.value)
    assert msg.startswith("dataset mnist: not found and --offline forbids downloading")
    assert "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz" in msg
    assert f"put them in {tmp_path / 'empty' / 'mnist'}" in msg and "https://" in msg


def test_checksum_mismatch_in_the_dataset_folder(tmp_path, monkeypatch):
    write_idx_dataset(tmp_path / "tiny")
    register(monkeypatch, tmp_path / "tiny", raw=True)
    write_idx_dataset(tmp_path / "tiny", seed=1)  # same shapes, other pixels
    with pytest.raises(DataError) as e:
        load_dataset("tiny", tmp_path, offline=True)
    msg = str(e.value)
    assert f"{tmp_path / 'tiny' / 'train-images-idx3-ubyte.gz'}: its content's SHA-256 is " in msg
    assert "mlpkit data download tiny" in msg


def test_a_recompressed_genuine_copy_is_verified_by_its_content(tmp_path, monkeypatch):
    """Another gzip header (mtime, level) changes the archive's checksum, not the content's."""
    write_idx_dataset(tmp_path / "tiny")
    register(monkeypatch, tmp_path / "tiny", raw=True)
    p = tmp_path / "tiny" / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes()), compresslevel=1, mtime=123456))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unverified" warning: it is verified
        d = load_dataset("tiny", tmp_path, offline=True)
    assert d.x_train.shape == (60, 784)
    assert dataset_status("tiny", tmp_path).status == "present"


@pytest.mark.parametrize("compress", [True, False], ids=["other-gzip-content", "uncompressed"])
def test_content_without_a_published_checksum_is_used_unverified_with_a_warning(tmp_path, monkeypatch, compress):
    """Where only the archive's checksum is published (fashion-mnist, kmnist), a file that differs from the
    archive cannot be verified: it is used, but never called verified."""
    write_idx_dataset(tmp_path / "tiny")
    register(monkeypatch, tmp_path / "tiny")  # archive checksums only
    for f in (tmp_path / "tiny").iterdir():
        f.unlink()
    write_idx_dataset(tmp_path / "tiny", seed=1, compress=compress)
    with pytest.warns(DataWarning, match="used unverified"):
        load_dataset("tiny", tmp_path, offline=True)
    assert dataset_status("tiny", tmp_path).status.startswith("unverified: ")
    r = CliRunner().invoke(app, ["data", "info", "tiny", "--data-dir", str(tmp_path), "--offline"])
    assert r.exit_code == 0 and "warning: " in r.output and "used unverified" in r.output


def test_another_datasets_files_are_never_used(tmp_path, monkeypatch):
    """The MNIST family shares file names: a folder of one dataset's files is not another's."""
    write_idx_dataset(tmp_path, seed=1)
    register(monkeypatch, tmp_path, name="other", raw=True)  # these are "other"'s files
    write_idx_dataset(tmp_path / "x", seed=0)
    register(monkeypatch, tmp_path / "x", name="tiny")  # tiny: archive checksums only
    with pytest.raises(DataError) as e:
        load_dataset("tiny", tmp_path, offline=True)
    assert "holds files of these names, but not tiny's" in str(e.value)
    (tmp_path / "tiny").mkdir()
    for f in (tmp_path).glob("*.gz"):
        (tmp_path / "tiny" / f.name).write_bytes(gzip.compress(gzip.decompress(f.read_bytes()), mtime=1))
    with pytest.raises(DataError, match="holds other's train-images-idx3-ubyte, not this dataset's file"):
        load_dataset("tiny", tmp_path, offline=True)


def _corrupt(tmp_path, monkeypatch, name, data):
    """Write a dataset, replace one file, register the result's checksums, load: the IDX reader must object."""
    write_idx_dataset(tmp_path)
    (tmp_path / f"{name}.gz").write_bytes(data)
    register(monkeypatch, tmp_path)  # the checksums pass, so the reader's own checks are what is tested
    with pytest.raises(DataError) as e:
        load_dataset("tiny", tmp_path, offline=True)
    return str(e.value)


def test_corrupt_gzip(tmp_path, monkeypatch):
    msg = _corrupt(tmp_path, monkeypatch, "train-images-idx3-ubyte", b"\x1f\x8b\x08garbage")
    assert "train-images-idx3-ubyte.gz: is not a valid gzip file" in msg


def test_truncated_gzip(tmp_path, monkeypatch):
    data = gzip.compress(idx_bytes(np.zeros((60, 28, 28), np.uint8)))
    msg = _corrupt(tmp_path, monkeypatch, "train-images-idx3-ubyte", data[: len(data) // 2])
    assert "train-images-idx3-ubyte.gz: is not a valid gzip file" in msg


def test_wrong_magic(tmp_path, monkeypatch):
    bad = idx_bytes(np.zeros((60,), np.uint8))  # a labels file where images belong
    msg = _corrupt(tmp_path, monkeypatch, "train-images-idx3-ubyte", gzip.compress(bad))
    assert "wrong IDX magic number 0x00000801, expected 0x00000803" in msg


def test_too_few_bytes(tmp_path, monkeypatch):
    data = idx_bytes(np.zeros((60, 28, 28), np.uint8))[:-5]
    msg = _corrupt(tmp_path, monkeypatch, "train-images-idx3-ubyte", gzip.compress(data))
    assert "holds 47,035 data bytes but its header (60, 28, 28) promises 47,040" in msg


def test_labels_and_images_disagree(tmp_path, monkeypatch):
    msg = _corrupt(tmp_path, monkeypatch, "train-labels-idx1-ubyte", gzip.compress(idx_bytes(np.zeros(59, np.uint8))))
    assert "holds 60 images but train-labels-idx1-ubyte.gz holds 59 labels" in msg


def test_label_out_of_range(tmp_path, monkeypatch):
    msg = _corrupt(tmp_path, monkeypatch, "t10k-labels-idx1-ubyte",
                   gzip.compress(idx_bytes(np.full(20, 10, np.uint8))))
    assert "t10k-labels-idx1-ubyte.gz: has label 10, but tiny has 10 classes" in msg


def test_short_header(tmp_path, monkeypatch):
    msg = _corrupt(tmp_path, monkeypatch, "train-labels-idx1-ubyte", gzip.compress(b"\x00\x00"))
    assert "too short to be an IDX file" in msg


def test_read_idx_raw(tmp_path):
    p = tmp_path / "a"
    p.write_bytes(idx_bytes(np.arange(6, dtype=np.uint8).reshape(1, 2, 3)))
    np.testing.assert_array_equal(read_idx(p, 3), [[[0, 1, 2], [3, 4, 5]]])


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "mine.npz"
    np.savez(p, x_train=rng.random((30, 4, 4)).astype(np.float32), y_train=np.arange(30) % 3,
             x_test=rng.random((9, 4, 4)).astype(np.float32), y_test=np.arange(9) % 3)
    d = load_dataset(str(p))
    assert d.x_train.shape == (30, 16) and d.num_classes == 3 and d.scale == 1.0


@pytest.mark.parametrize(
    "arrays,msg",
    [
        ({"x_train": np.zeros((3, 2))}, "is missing the arrays y_train, x_test, y_test"),
        ({"x_train": np.zeros((3, 2)), "y_train": np.zeros(2, int), "x_test": np.zeros((3, 2)),
          "y_test": np.zeros(3, int)}, "y_train must have shape (3,)"),
        ({"x_train": np.zeros((3, 2)), "y_train": np.zeros(3), "x_test": np.zeros((3, 2)),
          "y_test": np.zeros(3, int)}, "y_train must hold integer labels"),
        ({"x_train": np.zeros((3, 2)), "y_train": np.zeros(3, int), "x_test": np.zeros((3, 5)),
          "y_test": np.zeros(3, int)}, "x_train has 2 features per example but x_test has 5"),
        ({"x_train": np.full((3, 2), np.nan), "y_train": np.zeros(3, int), "x_test": np.zeros((3, 2)),
          "y_test": np.zeros(3, int)}, "x_train holds NaN or infinite values"),
    ],
)
def test_npz_validation(tmp_path, arrays, msg):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(DataError) as e:
        load_dataset(str(p))
    assert msg in str(e.value) and str(p) in str(e.value)


def test_npz_object_arrays_refused(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1, int), x_test=np.zeros((1, 1)),
             y_test=np.zeros(1, int))
    with pytest.raises(DataError, match=r"is not a readable \.npz dataset"):
        load_dataset(str(p))


def test_not_an_npz(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(b"hello")
    with pytest.raises(DataError, match=r"x.npz: is not a readable .npz dataset"):
        load_dataset(str(p))


@needs_mnist
def test_real_mnist_used_as_is_and_verified():
    d = load_dataset("mnist", MNIST_DIR, offline=True)
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert d.x_train.dtype == np.uint8 and d.x_train.nbytes + d.x_test.nbytes == 54_880_000
    assert np.bincount(d.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(d.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_mnist
def test_data_info_mnist_cli(monkeypatch):
    from typer.testing import CliRunner

    from mlpkit.app.cli import app

    monkeypatch.setenv("MLPKIT_DATA_DIR", str(MNIST_DIR))
    r = CliRunner().invoke(app, ["data", "info", "mnist", "--json", "--offline"])
    assert r.exit_code == 0, r.output
    info = __import__("json").loads(r.stdout)
    assert info["x_train_shape"] == [60000, 784] and info["x_test_shape"] == [10000, 784]
    assert info["train_per_class"] == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert info["test_per_class"] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert info["dtype"] == "uint8" and (info["pixel_min"], info["pixel_max"]) == (0, 255)
    r = CliRunner().invoke(app, ["data", "info", "mnist"])
    assert "60,000" in r.output and "10,000" in r.output and "5,923" in r.output


def test_data_info_npz_and_digits(tmp_path):
    from typer.testing import CliRunner

    from mlpkit.app.cli import app

    r = CliRunner().invoke(app, ["data", "info", "digits", "--json"])
    assert r.exit_code == 0 and __import__("json").loads(r.stdout)["pixel_max"] == 16
    r = CliRunner().invoke(app, ["data", "info", str(tmp_path / "none.npz")])
    assert r.exit_code == 2 and "none.npz: dataset file not found" in r.output


def test_standardize_uses_the_training_split_only():
    from mlpkit.data.core import standardize

    d = load_digits()
    train, _ = split_train_val(d, 100)
    s = standardize(d, train)
    x = to_float(train.x, s.scale, np.float64, shift=s.shift)
    assert abs(x.mean()) < 1e-12 and x.std() == pytest.approx(1.0, rel=1e-12)
    raw = train.x.astype(np.float64) / 16
    assert s.shift == pytest.approx(-raw.mean() / raw.std(), rel=1e-12)
    t = to_float(d.x_test, s.scale, np.float64, shift=s.shift)
    assert abs(t.mean()) > 1e-6  # the test split was not used


def test_normalize_option_trains_and_evaluates(tmp_path):
    from typer.testing import CliRunner

    from mlpkit.app.cli import app

    from ..conftest import CONFIGS

    r = CliRunner().invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--set", "data.normalize=true",
                                 "--set", "train.epochs=3", "--out", str(tmp_path / "r"), "-q", "--json"])
    assert r.exit_code == 0, r.output
    trained = __import__("json").loads(r.stdout)["test"]
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r"), "--json"])
    assert __import__("json").loads(r.stdout)["accuracy"] == trained["accuracy"]
    r = CliRunner().invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--set", "data.normalize=yes", "--dry-run"])
    assert r.exit_code == 2 and "data.normalize (set by --set): must be true or false, got 'yes'" in r.output


@pytest.mark.parametrize("shape", [(0,), (1,), (3,), (5, 7), (1001, 3), (3000, 784)])
def test_uint8_histogram_counts_like_bincount(shape):
    from mlpkit.data.core import uint8_histogram

    x = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(uint8_histogram(x), np.bincount(x.ravel(), minlength=256))
    np.testing.assert_array_equal(uint8_histogram(x[..., ::2]), np.bincount(x[..., ::2].ravel(), minlength=256))


@pytest.mark.parametrize("n_train,n_test,split", [(0, 5, "training"), (12, 0, "test")])
def test_a_dataset_with_an_empty_split_is_one_line(tmp_path, monkeypatch, n_train, n_test, split):
    """Issue 23, item 8: a kmnist folder whose training files held 0 images gave a traceback in data info."""
    write_idx_dataset(tmp_path / "kmnist", n_train=n_train, n_test=n_test)
    register(monkeypatch, tmp_path / "kmnist", name="kmnist")
    r = CliRunner().invoke(app, ["data", "info", "kmnist", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert f"{tmp_path / 'kmnist'}: its {split} split holds no examples" in r.output
