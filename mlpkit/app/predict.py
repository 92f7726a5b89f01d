"""``mlpkit predict``: a run's model on the user's own pictures or arrays, prepared the way MNIST's were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    prepared: bool  # the dataset's preparation was applied (False: used as given)
    top: list[Guess]
    doubts: list[str] = field(default_factory=list)  # why the picture may not be a single digit


@dataclass(frozen=True)
class Predictions:
    run: str
    image_shape: list[int]
    items: list[Prediction]
    preparation: str = "mnist"  # how pictures were made into the model's input (data.preparation)


def predict(run: str | Path, inputs: list[str | Path | np.ndarray], *, top_k: int = 3, raw: bool = False,
            preparation: str | None = None) -> tuple[Predictions, list[np.ndarray], list[np.ndarray | None]]:
    """The run's model on the user's own images or arrays: the top-k classes of each, with probabilities.

    Pictures are prepared the way the run's dataset was made (its recorded ``preparation``, or the one given).
    Returns the predictions, the (side, side) images in [0, 1] the model saw, and each picture as given,
    reduced to the same height (None for an array row), for showing the two side by side.
    """
    from mlpkit.data.images import load_inputs, prepare_with_doubts, thumbnail, to_model_input
    from mlpkit.nn.losses import softmax

    saved = load_weights(run)
    rec = input_record(saved)
    shape = rec.get("image_shape") or []
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] * shape[1] != saved.model.in_features:
        raise ConfigError(f"{saved.path}: its model takes {saved.model.in_features} features, not a square image; "
                          "predict works on image models")
    side = shape[0]
    how = preparation or rec.get("preparation", "mnist")
    items, seen, preps, doubts, given = [], [], [], [], []
    for label, img, ready in load_inputs(inputs, side):
        if raw and img.shape != (side, side):
            raise DataError(f"{label}: is {img.shape[1]}×{img.shape[0]} pixels; with --raw it must already be the "
                            f"run's {side}×{side}")
        why: list[str] = []
        if raw or ready:
            img01 = img / 255.0
        else:
            img01, why = prepare_with_doubts(img, side, label, how)
        given.append(None if ready else thumbnail(img, max(side, 16)))
        items.append(label)
        preps.append(not (raw or ready))
        doubts.append(why)
        seen.append(img01.astype(np.float32))
    x = np.stack([to_model_input(s, rec).ravel() for s in seen]).astype(saved.model.dtype)  # (N, D)
    with saved.model.mode(training=False):
        logits = np.concatenate([saved.model.forward(x[i: i + 1000]) for i in range(0, len(x), 1000)])
    probs = softmax(logits.astype(np.float64))
    names = rec.get("class_names") or []
    k = max(1, min(top_k, probs.shape[1]))
    out = []
    for label, prepared, p, why in zip(items, preps, probs, doubts):
        best = np.argsort(-p, kind="stable")[:k]
        out.append(Prediction(label, prepared, [Guess(int(c), names[c] if c < len(names) else str(c), float(p[c]))
                                                 for c in best], why))
    return Predictions(str(saved.path), [side, side], out, how), seen, given
