"""``mlpkit predict``: a run's model on the user's own pictures or arrays, prepared the way MNIST's were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpkit.app.runfiles import input_record, load_weights
from mlpkit.errors import ConfigError, DataError

# --------------------------------------------------------------------------- predict


@dataclass(frozen=True)
class Guess:
    label: int
    name: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    source: str  # the file, or file[i] for a row of an array
    prepared: bool  # MNIST-style preparation was applied (False: used as given)
    top: list[Guess]


@dataclass(frozen=True)
class Predictions:
    run: str
    image_shape: list[int]
    items: list[Prediction]


def predict(run: str | Path, inputs: list[str | Path], *, top_k: int = 3, raw: bool = False
            ) -> tuple[Predictions, list[np.ndarray]]:
    """The run's model on the user's own images or arrays: the top-k classes of each, with probabilities.

    Returns the predictions and the (side, side) images in [0, 1] the model saw.
    """
    from mlpkit.data.images import load_inputs, prepare, to_model_input
    from mlpkit.nn.losses import softmax

    saved = load_weights(run)
    rec = input_record(saved)
    shape = rec.get("image_shape") or []
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] * shape[1] != saved.model.in_features:
        raise ConfigError(f"{saved.path}: its model takes {saved.model.in_features} features, not a square image; "
                          "predict works on image models")
    side = shape[0]
    items, seen, preps = [], [], []
    for label, img, ready in load_inputs(inputs, side):
        if raw and img.shape != (side, side):
            raise DataError(f"{label}: is {img.shape[1]}×{img.shape[0]} pixels; with --raw it must already be the "
                            f"run's {side}×{side}")
        img01 = img / 255.0 if (raw or ready) else prepare(img, side, label)
        items.append(label)
        preps.append(not (raw or ready))
        seen.append(img01.astype(np.float32))
    x = np.stack([to_model_input(s, rec).ravel() for s in seen]).astype(saved.model.dtype)  # (N, D)
    with saved.model.mode(training=False):
        logits = np.concatenate([saved.model.forward(x[i: i + 1000]) for i in range(0, len(x), 1000)])
    probs = softmax(logits.astype(np.float64))
    names = rec.get("class_names") or []
    k = max(1, min(top_k, probs.shape[1]))
    out = []
    for label, prepared, p in zip(items, preps, probs):
        best = np.argsort(-p, kind="stable")[:k]
        out.append(Prediction(label, prepared, [Guess(int(c), names[c] if c < len(names) else str(c), float(p[c]))
                                                 for c in best]))
    return Predictions(str(saved.path), [side, side], out), seen
