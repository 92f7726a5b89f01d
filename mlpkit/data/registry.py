"""The named datasets: shapes, class names, published files with their checksums, mirrors. No I/O."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "MLPKIT_DATA_DIR"

DIGITS_SPLIT_SEED = 1797  # fixed: the embedded split never depends on the run's seed
DIGITS_TEST = 360


@dataclass(frozen=True)
class RemoteFile:
    """A gzip file a dataset needs, with its published size and SHA-256.

    A user may also keep the file uncompressed (``raw_name``); it is verified
    against ``raw_sha256`` where that is known, else only by its IDX structure.
    """

    name: str
    sha256: str
    size: int
    raw_sha256: str | None = None
    raw_size: int | None = None

    @property
    def raw_name(self) -> str:
        return self.name.removesuffix(".gz")


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
    raws: tuple[tuple[int | None, str | None], ...] = raw if raw is not None else ((None, None),) * 4
    return tuple(RemoteFile(n, h, size, rh, rs) for n, (size, h), (rs, rh) in zip(IDX_NAMES, gz, raws))


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


# --------------------------------------------------------------------------- entry point


def is_path_dataset(name: str) -> bool:
    return name.endswith((".npz", ".csv")) or os.sep in name or "/" in name or Path(name).is_dir()


def preparation_for(dataset: str, prepare: bool = True) -> str:
    """How a picture is made into this dataset's input (``data.preparation``): "uci-digits" for the embedded
    digits, "mnist" for the MNIST family and for image folders prepared the MNIST way, "none" for arrays
    (.npz, .csv) and unprepared folders, whose making mlpkit does not know."""
    if dataset == "digits":
        return "uci-digits"
    if dataset in REGISTRY:
        return "mnist"
    if dataset.endswith((".npz", ".csv")) or not prepare:
        return "none"
    return "mnist"
