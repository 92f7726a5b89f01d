"""mlpkit from Python (a notebook, a script): ``mlpkit.train`` and ``mlpkit.load`` give a ``Run``.

    >>> import mlpkit
    >>> run = mlpkit.train("configs/quickstart.yaml", epochs=5, lr=0.05)
    >>> run.history[-1].val_acc, run.evaluate().accuracy
    >>> run.predict(["my-digit.png"]).items[0].top[0]
    >>> run.train(epochs=10)            # five more epochs, exactly as ``mlpkit train --resume RUN --epochs 10``
    >>> run.report("report.html")
    >>> mlpkit.load("runs/quickstart-20261128-101500")

A Run is its folder: everything it returns is read from the folder or computed from the saved weights, so a
Run made by ``load`` in another process is the same as the one ``train`` returned. Results are the
dataclasses the CLI prints as JSON (``EpochMetrics``, ``EvalResult``, ``Predictions``). In Jupyter a Run
shows a summary table and its learning curves.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.app import api
from mlpkit.app.catalog import is_run, read_metrics, read_results, run_status
from mlpkit.app.predict import Predictions
from mlpkit.errors import CheckpointError, ConfigError
from mlpkit.training.metrics import EpochMetrics, EvalResult

# Keyword shortcuts, as on the command line; any other key is a config path with "__" for "."
# (train__momentum=0.9), or a dotted path passed as **{"model.layers[2].dropout": 0.3}.
SHORTCUTS = {"epochs": "train.epochs", "lr": "train.lr", "batch_size": "train.batch_size",
             "momentum": "train.momentum", "weight_decay": "train.weight_decay", "seed": "seed",
             "dataset": "data.dataset", "validation": "data.validation"}


def _overrides(values: dict[str, Any]) -> tuple[str, ...]:
    """Keyword arguments as ``--set`` items, checked by the same validation as the CLI's."""
    import json

    out = []
    for key, value in values.items():
        path = SHORTCUTS.get(key, key.replace("__", "."))
        out.append(f"{path}={json.dumps(value)}")  # YAML reads JSON: numbers, strings, lists, mappings
    return tuple(out)


@dataclass(frozen=True)
class Run:
    """A run folder: its history, its model's scores and predictions, its report; ``train`` continues it."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def history(self) -> list[EpochMetrics]:
        """One EpochMetrics per finished epoch (a damaged field reads as None)."""
        names = {f.name for f in fields(EpochMetrics)}
        return [EpochMetrics(**{k: v for k, v in row.items() if k in names}) for row in read_metrics(self.path)]

    @property
    def status(self) -> str:
        return run_status(self.path)

    @property
    def test(self) -> dict:
        """The final test scores recorded when the run finished ({} before)."""
        test = read_results(self.path).get("test")
        return test if isinstance(test, dict) else {}

    def evaluate(self, split: str = "test", data_dir: str | None = None) -> EvalResult:
        """Loss, accuracy, per-class accuracy and confusion matrix of the saved model on one split."""
        return api.evaluate_run(self.path, split, api.DataSource(data_dir))[0]

    def predict(self, images: Any, top_k: int = 3) -> Predictions:
        """The model on pictures: file paths (photos, scans, drawings, folders, .npy/.npz/.csv) or a NumPy
        array of images, (N, H, W) or one (H, W), in 0..255, prepared the way the run's dataset was made."""
        if isinstance(images, np.ndarray):
            return api.predict(self.path, [images], top_k=top_k)[0]
        items = [images] if isinstance(images, (str, Path)) else list(images)
        return api.predict(self.path, items, top_k=top_k)[0]

    def report(self, path: str | Path = "report.html", data_dir: str | None = None) -> Path:
        """Write ``mlpkit report``'s page about this run; returns its path."""
        from mlpkit.app.htmlreport import write_report

        return write_report([self.path], path, api.DataSource(data_dir))

    def train(self, epochs: int, data_dir: str | None = None) -> Run:
        """Continue the run up to ``epochs`` epochs in all, exactly as ``mlpkit train --resume RUN --epochs N``
        (bit-identical to having trained that long in one go)."""
        trainer, writer, _ = api.resume(self.path, api.DataSource(data_dir), (f"train.epochs={int(epochs)}",))
        try:
            api.train_run(trainer, writer)
        finally:
            writer.close()
        return self

    def __repr__(self) -> str:
        acc = self.test.get("accuracy")
        score = f", test accuracy {100 * acc:.2f} %" if isinstance(acc, float) else ""
        return f"Run({str(self.path)!r}: {self.status}, {len(self.history)} epochs{score})"

    def _repr_html_(self) -> str:
        """Jupyter's view: a summary table and, where matplotlib is installed, the learning curves."""
        hist = self.history
        last = hist[-1] if hist else None
        rows = [("run", str(self.path)), ("status", self.status), ("epochs", len(hist))]
        if last is not None:
            rows += [("last train loss", f"{last.train_loss:.4f}" if last.train_loss is not None else "—"),
                     ("last val acc", f"{100 * last.val_acc:.2f} %" if last.val_acc is not None else "—")]
        acc = self.test.get("accuracy")
        rows.append(("test accuracy", f"{100 * acc:.2f} %" if isinstance(acc, float) else "—"))
        table = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(str(v))}"
                        "</td></tr>" for k, v in rows)
        chart = ""
        if hist:
            try:
                from mlpkit.app.htmlreport import curves_svg

                chart = f"<div style='max-width:48rem'>{curves_svg([self.path])}</div>"
            except Exception:  # no matplotlib, or an unreadable metrics file: the table alone
                chart = ""
        return f"<table>{table}</table>{chart}"


def load(run_dir: str | Path) -> Run:
    """The Run of a run folder (``mlpkit train``'s output)."""
    p = Path(run_dir)
    if not p.is_dir() or not is_run(p):
        raise CheckpointError(f"{p}: is not an mlpkit run folder (no config.yaml with checkpoints or weights)")
    return Run(p)


def train(config: str | Path, *, out: str | Path | None = None, data_dir: str | None = None, force: bool = False,
          init_from: str | Path | None = None, **overrides: Any) -> Run:
    """Train a config (a path) with keyword overrides (``epochs=5, lr=0.05, train__momentum=0.9``, or
    ``**{"model.layers[2].dropout": 0.3}``) into ``out`` (default runs/<config>-<time>); returns its Run.

    The same validation as the CLI's: a wrong key or value raises ConfigError naming it.
    """
    if not isinstance(config, (str, Path)):
        raise ConfigError("mlpkit.train: give the path of a YAML config")
    trainer, writer = api.start_run(config, _overrides(overrides), out, api.DataSource(data_dir), force=force,
                                    init_from=init_from)
    try:
        api.train_run(trainer, writer)
    finally:
        writer.close()
    return Run(writer.path)
