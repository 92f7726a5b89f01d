"""Datasets: the embedded digits, MNIST-format IDX files, and .npz files.

Images are held as uint8 (N, D) rows and scaled to floats one batch at a time
(``Dataset.scale`` maps the stored integers to [0, 1]), so MNIST costs about
55 MB rather than the 376 MB of float64.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
import os
import warnings
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import platformdirs

from . import npzio
from .download import Progress, RemoteFile, Verdict, check_file, fetch
from .folders import FolderOptions
from .errors import DataError

DATA_DIR_ENV = "MLPKIT_DATA_DIR"

DIGITS_SPLIT_SEED = 1797  # fixed: the embedded split never depends on the run's seed
DIGITS_TEST = 360


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a named dataset without loading it."""

    name: str
    num_classes: int
    image_shape: tuple[int, int]
    class_names: tuple[str, ...]
    description: str
    n_train: int
    n_test: int
    files: tuple[RemoteFile, ...] = ()  # IDX files: train images, train labels, test images, test labels
    mirrors: tuple[str, ...] = ()  # base URLs, tried in order
    source: str = ""  # homepage and license

    @property
    def download_bytes(self) -> int:
        return sum(f.size for f in self.files)


IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")


def _idx_files(gz: tuple[tuple[int, str], ...], raw: tuple[tuple[int, str], ...] | None = None
               ) -> tuple[RemoteFile, ...]:
    """RemoteFiles from (size, sha256) of each gzip file and, where known, of its uncompressed twin."""
    raw = raw or ((None, None),) * 4  # type: ignore[assignment]
    return tuple(RemoteFile(n, h, size, rh, rs) for n, (size, h), (rs, rh) in zip(IDX_NAMES, gz, raw))


DIGIT_NAMES = tuple(str(i) for i in range(10))

REGISTRY: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits", 10, (8, 8), DIGIT_NAMES, "UCI optical digits, 8x8, embedded in mlpkit", 1437, 360,
        source="E. Alpaydin, C. Kaynak (1998), UCI ML Repository; CC BY 4.0",
    ),
    "mnist": DatasetInfo(
        "mnist", 10, (28, 28), DIGIT_NAMES, "MNIST handwritten digits, 28x28", 60000, 10000,
        _idx_files((
            (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        ), (
            (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
            (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
            (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        )),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
         "http://yann.lecun.com/exdb/mnist/"),
        "Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0",
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", 10, (28, 28),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "Zalando article images, 28x28", 60000, 10000,
        _idx_files((
            (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
        )),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"),
        "H. Xiao, K. Rasul, R. Vollgraf (2017), Zalando Research; MIT",
    ),
    "kmnist": DatasetInfo(
        "kmnist", 10, (28, 28), ("o お", "ki き", "su す", "tsu つ", "na な", "ha は", "ma ま", "ya や", "re れ", "wo を"),
        "Kuzushiji-MNIST cursive Japanese characters, 28x28", 60000, 10000,
        _idx_files((
            (18165135, "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"),
            (29497, "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"),
            (3041136, "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"),
            (5120, "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"),
        )),
        ("https://codh.rois.ac.jp/kmnist/dataset/kmnist/", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
        "T. Clanuwat et al. (2018), ROIS-DS CODH; CC BY-SA 4.0",
    ),
}


@dataclass(frozen=True)
class Dataset:
    """A train/test split held compactly.

    Attributes:
        x_train: (N, D) uint8 (or float32 for float .npz data); x_test: (M, D).
        y_train: (N,) int64 labels in [0, num_classes); y_test: (M,).
        scale, shift: model input = stored · scale + shift (1/255 and 0 for MNIST,
            unless ``data.normalize`` standardizes the inputs).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scale: float
    num_classes: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]
    source: str
    shift: float = 0.0  # model input = stored · scale + shift
    location: str | None = None  # the absolute folder (IDX) or file (.npz) it was read from; None if embedded
    pixel_max: float = 255.0  # the largest stored pixel value: 255 for 8-bit images, 16 for the digits, 1 for floats

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])


@dataclass(frozen=True)
class Split:
    """One set of examples: x (N, D) stored dtype, y (N,) int64."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


def to_float(x: np.ndarray, scale: float, dtype: np.dtype | type, order: str = "C", shift: float = 0.0
             ) -> np.ndarray:
    """Stored rows to model inputs, ``x · scale + shift``: (N, D) -> (N, D) ``dtype``.

    ``order="F"`` gives the column-major batch the model's products prefer. The
    transpose happens on the 1-byte values first: 4× less to move, and then the
    conversion reads and writes contiguously (29 µs instead of 118 µs for 64×784).
    """
    if order == "F":
        x = np.asfortranarray(x)
    dt = np.dtype(dtype)
    if x.dtype.kind in "ui" and x.dtype.itemsize <= 2:
        # Small integers are exact in float32: cast, then scale in place. The same values as one mixed-type
        # multiply, which casts in buffered chunks: 6.2 against 6.6 µs for 64×784 uint8.
        out = x.astype(dt, order=order)
        out *= dt.type(scale)
    else:
        out = np.empty(x.shape, dtype=dt, order=order)
        np.multiply(x, np.asarray(scale, dtype=dt), out=out, casting="unsafe")
    if shift:
        out += out.dtype.type(shift)
    return out


def uint8_histogram(x: np.ndarray) -> np.ndarray:
    """(256,) int64 counts of each value in a uint8 array, exactly.

    ``np.bincount`` converts its input to int64 first: for MNIST's 47 million pixels a
    376 MB temporary and 0.37 s. Counting pairs of pixels as 16-bit values halves both,
    in slices of 4 Mi pairs (32 MB); each pair's two bytes then count separately.
    """
    flat = np.ascontiguousarray(x).reshape(-1)
    counts = np.bincount(flat[flat.size - flat.size % 2 :], minlength=256)  # an odd last pixel on its own
    pairs = flat[: flat.size - flat.size % 2].view(np.uint16)
    joint = np.zeros(1 << 16, dtype=np.int64)
    for s in range(0, pairs.size, 1 << 22):
        joint += np.bincount(pairs[s : s + (1 << 22)], minlength=1 << 16)
    joint = joint.reshape(256, 256)  # [high byte][low byte] of each pair: both are pixels
    return counts + joint.sum(axis=0) + joint.sum(axis=1)


def standardize(ds: Dataset, train: Split) -> Dataset:
    """Inputs with zero mean and unit variance over the training split's pixels.

    One mean and one standard deviation for all features, like torchvision's
    ``Normalize((0.1307,), (0.3081,))`` for MNIST; computed from the training
    split only (never validation or test), exactly, from a histogram for uint8.
    """
    x = train.x
    if x.dtype == np.uint8:
        counts = uint8_histogram(x).astype(np.float64)
        v = np.arange(256, dtype=np.float64)
        n = counts.sum()
        mean = float((counts * v).sum() / n)
        var = float((counts * (v - mean) ** 2).sum() / n)
    else:
        mean = float(x.mean(dtype=np.float64))
        var = float(sum(((c.astype(np.float64) - mean) ** 2).sum() for c in np.array_split(x, 64)) / x.size)
    std = var**0.5 if var > 0 else 1.0
    mean_in, std_in = mean * ds.scale + ds.shift, std * ds.scale
    return dataclasses.replace(ds, scale=ds.scale / std_in, shift=(ds.shift - mean_in) / std_in)


def split_train_val(ds: Dataset, validation: int, source: str = "data.validation") -> tuple[Split, Split | None]:
    """Hold the last ``validation`` training examples out (views, no copy)."""
    n = ds.x_train.shape[0]
    if validation >= n:
        raise DataError(
            f"{source}: holds out {validation:,} examples but {ds.name} has only {n:,} training examples"
        )
    cut = n - validation
    train = Split(ds.x_train[:cut], ds.y_train[:cut])
    val = Split(ds.x_train[cut:], ds.y_train[cut:]) if validation else None
    return train, val


def prepare_splits(ds: Dataset, validation: int, normalize: bool) -> tuple[Dataset, Split, Split | None]:
    """The dataset as a run sees it: the validation examples held out, and the inputs
    standardized with the training split's statistics when ``normalize`` (``data.normalize``)."""
    train, val = split_train_val(ds, validation)
    if normalize:
        ds = standardize(ds, train)
    return ds, train, val


# --------------------------------------------------------------------------- digits


def load_digits() -> Dataset:
    """The embedded UCI digits, split 1,437/360 with a fixed seed."""
    ref = resources.files("mlpkit.datasets").joinpath("digits.csv.gz")
    with ref.open("rb") as fh:
        table = np.loadtxt(gzip.open(fh, "rt"), delimiter=",", dtype=np.uint8)  # (1797, 65)
    x, y = table[:, :64], table[:, 64].astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(y))
    test, train = order[:DIGITS_TEST], order[DIGITS_TEST:]
    info = REGISTRY["digits"]
    return Dataset(
        "digits",
        np.ascontiguousarray(x[train]),
        y[train],
        np.ascontiguousarray(x[test]),
        y[test],
        1.0 / 16.0,
        10,
        info.class_names,
        info.image_shape,
        "embedded (mlpkit/datasets/digits.csv.gz)",
        pixel_max=16.0,
    )


# --------------------------------------------------------------------------- IDX

_IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}
_MAX_IDX_BYTES = 1 << 31


def _open_maybe_gzip(path: Path) -> io.BufferedIOBase:
    """A readable stream of the file's contents, decompressed if it is gzip."""
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]  # closing it closes the file
    fh.seek(0)
    return fh


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes with ``ndim`` dimensions (gzip or raw).

    Validates the magic number, the dimension count and the exact file length.
    Returns a uint8 array of the stored shape, decompressed straight into it
    (no second copy of the data in memory).
    """
    path = Path(path)
    header = 4 + 4 * ndim
    try:
        with _open_maybe_gzip(path) as fh:
            head = fh.read(header)
            if len(head) < header:
                raise DataError(f"{path}: is too short to be an IDX file ({len(head)} bytes)")
            magic = int.from_bytes(head[:4], "big")
            if magic != _IDX_MAGIC[ndim]:
                raise DataError(
                    f"{path}: wrong IDX magic number 0x{magic:08x}, expected 0x{_IDX_MAGIC[ndim]:08x} "
                    f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
                )
            dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
            size = int(np.prod(dims, dtype=np.int64))
            if size > _MAX_IDX_BYTES:
                raise DataError(f"{path}: its header {dims} promises {size:,} bytes, more than {_MAX_IDX_BYTES:,}")
            out = np.empty(size, dtype=np.uint8)
            view, got = memoryview(out), 0
            while got < size:  # 1 MB at a time: gzip's reader would build one whole-file copy
                n = fh.readinto(view[got : got + (1 << 20)])
                if not n:
                    break
                got += n
            extra = len(fh.read(1))
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: is not a valid gzip file ({e})") from None
    if got != size or extra:
        have = f"{got:,}" if not extra else f"more than {size:,}"
        raise DataError(
            f"{path}: holds {have} data bytes but its header {dims} promises {size:,}; the file is truncated "
            f"or corrupt"
        )
    return out.reshape(dims)


def cache_root() -> Path:
    """The platform's cache folder for mlpkit (XDG on Linux: ~/.cache/mlpkit)."""
    return Path(platformdirs.user_cache_dir("mlpkit"))


def data_root(data_dir: str | Path | None) -> tuple[Path, str]:
    """Where datasets live, and why: --data-dir / data.data_dir, then $MLPKIT_DATA_DIR, then the cache."""
    if data_dir:
        return Path(data_dir), "--data-dir / data.data_dir"
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env), f"${DATA_DIR_ENV}"
    return cache_root(), "the cache"


def dataset_dirs(name: str, data_dir: str | Path | None) -> list[Path]:
    """Folders that may hold a dataset's files: the root itself (a folder of just those
    files, like ../shared/data/mnist) and its ``name`` subfolder, where downloads go."""
    root, _ = data_root(data_dir)
    return [root, root / name]


def _find(d: Path, f: RemoteFile) -> Path | None:
    """The file in ``d``: gzip as published, or uncompressed."""
    for cand in (d / f.name, d / f.raw_name):
        if cand.is_file():
            return cand
    return None


class DataWarning(UserWarning):
    """Data that is used but could not be verified (the CLI shows it as one line)."""


def _foreign(info: DatasetInfo) -> dict[str, str]:
    """Checksums of the other datasets' files (the MNIST family shares file names)."""
    out = {}
    for other in REGISTRY.values():
        if other.name != info.name:
            for f in other.files:
                out[f.sha256] = f"{other.name}'s {f.name}"
                if f.raw_sha256:
                    out[f.raw_sha256] = f"{other.name}'s {f.raw_name}"
    return out


def check_files(info: DatasetInfo, paths: list[Path]) -> list[Verdict]:
    foreign = _foreign(info)
    return [check_file(p, f, foreign) for p, f in zip(paths, info.files)]


def locate(info: DatasetInfo, data_dir: str | Path | None) -> tuple[list[Path], list[Verdict] | None] | None:
    """The dataset's files: in the root folder itself if they are usable there (a folder of just
    these files, like ../shared/data/mnist; the MNIST family shares file names, so files there
    may belong to a sibling), else in the ``name`` subfolder (not yet checked: verdicts None)."""
    root, sub = dataset_dirs(info.name, data_dir)
    paths = [_find(root, f) for f in info.files]
    if all(paths):
        verdicts = check_files(info, paths)  # type: ignore[arg-type]
        if all(v.ok for v in verdicts):
            return paths, verdicts  # type: ignore[return-value]
    paths = [_find(sub, f) for f in info.files]
    return (paths, None) if all(paths) else None  # type: ignore[return-value]


def missing_message(info: DatasetInfo, data_dir: str | Path | None, why: str) -> str:
    root, target = dataset_dirs(info.name, data_dir)
    files = ", ".join(f.name for f in info.files)
    near = [f.name for f in info.files if _find(root, f)]
    hint = f" ({root} holds files of these names, but not {info.name}'s: their checksums differ)" if near else ""
    return (f"dataset {info.name}: {why}{hint}; download {files} from {info.mirrors[0]} and put them in {target} "
            f"(or point --data-dir at a folder holding them)")


def verify_files(info: DatasetInfo, paths: list[Path], verdicts: list[Verdict] | None = None) -> None:
    """Check every file against its published checksums: refuse a wrong one, warn about an unverified one."""
    for f, p, v in zip(info.files, paths, verdicts or check_files(info, paths)):
        if not v.ok:
            raise DataError(f"{p}: {v.problem}; the file is corrupt or not the published one; "
                            f"delete it and run: mlpkit data download {info.name}")
        if not v.verified:
            warnings.warn(f"{p}: used unverified ({v.problem})", DataWarning, stacklevel=2)


def ensure_idx_dataset(
    info: DatasetInfo, data_dir: str | Path | None, *, offline: bool = False, progress: Progress | None = None
) -> list[Path]:
    """A dataset's verified files: found, or downloaded unless ``offline``."""
    found = locate(info, data_dir)
    if found is not None:
        paths, verdicts = found
        verify_files(info, paths, verdicts)
        return paths
    if offline:
        raise DataError(missing_message(info, data_dir, "not found and --offline forbids downloading"))
    target = dataset_dirs(info.name, data_dir)[1]
    try:
        for f in info.files:
            if not (target / f.name).is_file() or not check_file(target / f.name, f).verified:
                fetch(f, info.mirrors, target, progress)
    except DataError as e:
        raise DataError(missing_message(info, data_dir, f"download failed ({e})")) from None
    return [target / f.name for f in info.files]


def load_idx_dataset(
    name: str, data_dir: str | Path | None, *, offline: bool = False, progress: Progress | None = None
) -> Dataset:
    """Load a registered IDX dataset: found and verified, or downloaded first."""
    info = REGISTRY[name]
    paths = ensure_idx_dataset(info, data_dir, offline=offline, progress=progress)
    return _load_idx_files(info, paths, paths[0].parent)


def _load_idx_files(info: DatasetInfo, paths: list[Path], where: Path) -> Dataset:
    xtr, ytr, xte, yte = (read_idx(p, 3 if i % 2 == 0 else 1) for i, p in enumerate(paths))
    for xs, ys, px, py in ((xtr, ytr, paths[0], paths[1]), (xte, yte, paths[2], paths[3])):
        if xs.shape[0] != ys.shape[0]:
            raise DataError(f"{px}: holds {xs.shape[0]:,} images but {py.name} holds {ys.shape[0]:,} labels")
        if ys.size and int(ys.max()) >= info.num_classes:
            raise DataError(f"{py}: has label {int(ys.max())}, but {info.name} has {info.num_classes} classes")
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(f"{paths[2]}: images are {xte.shape[1:]}, but the training images are {xtr.shape[1:]}")
    d = int(np.prod(xtr.shape[1:]))
    return Dataset(
        info.name,
        xtr.reshape(len(xtr), d),
        ytr.astype(np.int64),
        xte.reshape(len(xte), d),
        yte.astype(np.int64),
        1.0 / 255.0,
        info.num_classes,
        info.class_names,
        tuple(xtr.shape[1:]),
        str(where),
        location=str(Path(where).resolve()),
    )


# --------------------------------------------------------------------------- .npz

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


MAX_CLASSES = 10_000
FLOAT32_MAX = float(np.finfo(np.float32).max)


def load_npz(path: str | Path) -> Dataset:
    """A user's dataset: an .npz holding x_train, y_train, x_test, y_test.

    Images may be uint8 (scaled by 1/255) or floats (used as they are, within
    float32's range); any shape per example is flattened, and must hold at
    least one feature. Labels are integers 0..C-1 (C ≤ MAX_CLASSES) and every
    class has at least one training example. Everything is checked before
    any work, with sizes read from the array headers before anything is
    allocated (``npzio``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: dataset file not found")
    arrs = npzio.read_npz(path, DataError, "a readable .npz dataset")
    missing = [k for k in _NPZ_KEYS if k not in arrs]
    if missing:
        raise DataError(f"{path}: is missing the array{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    xs = []
    for split in ("train", "test"):
        x, y = arrs[f"x_{split}"], arrs[f"y_{split}"]
        if x.ndim < 2 or x.shape[0] == 0 or math.prod(x.shape[1:]) == 0:
            raise DataError(f"{path}: x_{split} must be (N, features...) with N > 0 and at least one feature, got "
                            f"shape {x.shape}")
        if y.shape != (x.shape[0],):
            raise DataError(f"{path}: y_{split} must have shape ({x.shape[0]},) to match x_{split}, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{split} must hold integer labels, got {y.dtype}")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= MAX_CLASSES:
            bad = lo if lo < 0 else hi
            raise DataError(f"{path}: y_{split} has the label {bad}; labels are class numbers 0..C-1 with C at most "
                            f"{MAX_CLASSES:,}")
        if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{path}: x_{split} must be uint8 or float, got {x.dtype}")
        if np.issubdtype(x.dtype, np.floating):
            with np.errstate(all="ignore"):
                if not np.isfinite(x).all():
                    raise DataError(f"{path}: x_{split} holds NaN or infinite values")
                if float(np.abs(x).max()) > FLOAT32_MAX:
                    raise DataError(f"{path}: x_{split} holds values beyond float32's range (±{FLOAT32_MAX:.3g}); "
                                    "rescale the data")
        xs.append(x.reshape(x.shape[0], -1))
    if xs[0].shape[1] != xs[1].shape[1]:
        raise DataError(f"{path}: x_train has {xs[0].shape[1]} features per example but x_test has {xs[1].shape[1]}")
    if xs[0].dtype != xs[1].dtype:
        raise DataError(f"{path}: x_train is {xs[0].dtype} but x_test is {xs[1].dtype}")
    num_classes = int(max(arrs["y_train"].max(), arrs["y_test"].max())) + 1
    counts = np.bincount(arrs["y_train"].astype(np.int64), minlength=num_classes)
    absent = np.flatnonzero(counts == 0)
    if num_classes < 2:
        raise DataError(f"{path}: y_train and y_test hold a single class (0); a classifier needs at least two")
    if absent.size:
        raise DataError(f"{path}: y_train has no example of class {int(absent[0])} (labels run 0..{num_classes - 1}, "
                        f"{absent.size} of them unused); number the classes 0..C-1 without gaps")
    is_u8 = xs[0].dtype == np.uint8
    return Dataset(
        path.stem,
        xs[0] if is_u8 else xs[0].astype(np.float32),
        arrs["y_train"].astype(np.int64),
        xs[1] if is_u8 else xs[1].astype(np.float32),
        arrs["y_test"].astype(np.int64),
        1.0 / 255.0 if is_u8 else 1.0,
        num_classes,
        tuple(str(i) for i in range(num_classes)),
        tuple(arrs["x_train"].shape[1:]),
        str(path),
        location=str(path.resolve()),
        pixel_max=255.0 if is_u8 else 1.0,
    )


# --------------------------------------------------------------------------- entry point


def is_path_dataset(name: str) -> bool:
    return name.endswith((".npz", ".csv")) or os.sep in name or "/" in name or Path(name).is_dir()


def load_own(path: str | Path, options: FolderOptions | None = None) -> Dataset:
    """A folder of images (ImageFolder layout) or a CSV of pixel rows, as a Dataset (``mlpkit.folders``)."""
    from .folders import FolderOptions, load_csv, load_image_folder

    p = Path(path)
    opts = options or FolderOptions()
    if p.is_dir():
        arrays, names = load_image_folder(p, opts, cache_root() / "prepared")
    elif p.suffix.lower() == ".csv" and p.is_file():
        arrays, names = load_csv(p, opts)
    else:
        raise DataError(f"{p}: no such dataset folder or CSV file")
    x_tr, x_te = arrays["x_train"], arrays["x_test"]
    if len(x_te) == 0 or len(x_tr) == 0:
        raise DataError(f"{p}: has too few images to hold out a test split (data.test_fraction)")
    y_tr = arrays["y_train"]
    present = np.bincount(y_tr, minlength=len(names)) > 0
    if not present.all():
        raise DataError(f"{p}: class {names[int(np.argmin(present))]!r} has no training example")
    shape = tuple(int(v) for v in x_tr.shape[1:])
    d = int(np.prod(shape))
    return Dataset(p.name or str(p), np.ascontiguousarray(x_tr.reshape(len(x_tr), d)), y_tr.astype(np.int64),
                   np.ascontiguousarray(x_te.reshape(len(x_te), d)), arrays["y_test"].astype(np.int64), 1.0 / 255.0,
                   len(names), tuple(names), shape, str(p), location=str(p.resolve()))


def load_dataset(
    name: str, data_dir: str | Path | None = None, *, offline: bool = False, progress: Progress | None = None,
    options: FolderOptions | None = None,
) -> Dataset:
    """Load a dataset by registry name (downloading it unless ``offline``), or a path: an .npz, a CSV of
    pixel rows or an ImageFolder (``options``: image size, preparation, test split).

    Raises:
        DataError: naming the dataset or file and what is wrong or where it looked.
    """
    if name == "digits":
        return load_digits()
    if name in REGISTRY:
        return load_idx_dataset(name, data_dir, offline=offline, progress=progress)
    if name.endswith(".npz"):
        return load_npz(name)
    if is_path_dataset(name):
        return load_own(name, options)
    raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(REGISTRY)}, or a path to an .npz file, a "
                    f"CSV file or an image folder")


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class DatasetStatus:
    """A registry entry and whether its files are here."""

    name: str
    description: str
    n_train: int
    n_test: int
    num_classes: int
    download_bytes: int
    folder: str  # where it is, or where it would be downloaded to
    status: str  # embedded | present (verified) | unverified: <why> | missing | corrupt: <why>
    source: str


def dataset_status(name: str, data_dir: str | Path | None = None) -> DatasetStatus:
    """Is a registered dataset present and intact (checksums verified)?"""
    info = REGISTRY[name]
    if not info.files:
        where, status = "inside the mlpkit package", "embedded"
    else:
        found = locate(info, data_dir)
        if found is None:
            where, status = str(dataset_dirs(name, data_dir)[1]), "missing"
        else:
            paths, verdicts = found
            where = str(paths[0].parent)
            verdicts = verdicts or check_files(info, paths)
            bad = [f"{p.name} {v.problem}" for p, v in zip(paths, verdicts) if not v.ok]
            unverified = [f"{p.name}: {v.problem}" for p, v in zip(paths, verdicts) if v.ok and not v.verified]
            status = ("corrupt: " + bad[0]) if bad else ("unverified: " + unverified[0]) if unverified else "present"
    return DatasetStatus(name, info.description, info.n_train, info.n_test, info.num_classes, info.download_bytes,
                         where, status, info.source)


@dataclass(frozen=True)
class DatasetSummary:
    """What ``mlpkit data info`` shows about a loaded dataset."""

    name: str
    source: str
    x_train_shape: list[int]
    x_test_shape: list[int]
    image_shape: list[int]
    dtype: str
    pixel_min: float
    pixel_max: float
    scale: float
    num_classes: int
    class_names: list[str]
    train_per_class: list[int]
    test_per_class: list[int]
    memory_bytes: int


def summarize(ds: Dataset) -> DatasetSummary:
    lo = float(min(ds.x_train.min(), ds.x_test.min()))
    hi = float(max(ds.x_train.max(), ds.x_test.max()))
    return DatasetSummary(
        ds.name, ds.source, list(ds.x_train.shape), list(ds.x_test.shape), list(ds.image_shape), str(ds.x_train.dtype),
        lo, hi, ds.scale, ds.num_classes, list(ds.class_names),
        np.bincount(ds.y_train, minlength=ds.num_classes).tolist(),
        np.bincount(ds.y_test, minlength=ds.num_classes).tolist(),
        int(ds.x_train.nbytes + ds.x_test.nbytes + ds.y_train.nbytes + ds.y_test.nbytes),
    )
