"""Datasets.

- ``core``: Dataset, Split, ``to_float``, train/validation splits, standardization (numpy only);
- ``registry``: the named datasets and their published files (no I/O);
- ``idx``, ``npz``: readers of MNIST's IDX format and of .npz files that may be hostile;
- ``cache``, ``download``: where datasets live, checksums, downloading;
- ``folders``, ``images``: image folders, CSV files, and preparing pictures the MNIST way;
- ``load``: one entry point, ``load_dataset``, for a name or a path.

May import: numpy, scipy, ``mlpkit.errors``, ``mlpkit.reader``, ``mlpkit.writer``. Never the
config, the training loop or the app. Importing ``mlpkit.data`` loads only the core.
"""

from mlpkit.data.core import Dataset, Split, prepare_splits, to_float

__all__ = ["Dataset", "Split", "prepare_splits", "to_float"]
