"""Building a model from its config: sizes checked before anything is allocated."""

from __future__ import annotations

import numpy as np

from mlpkit.config.schema import MAX_PARAMS, Config, ModelConfig
from mlpkit.errors import ConfigError
from mlpkit.nn import Order
from mlpkit.nn.layers import LAYERS, Dropout, Layer, Linear
from mlpkit.nn.losses import SoftmaxCrossEntropy
from mlpkit.nn.model import MLP
from mlpkit.nn.optim import SGD


def count_params(cfg: ModelConfig, in_features: int) -> int:
    """Parameters the config would allocate, computed before allocating."""
    total, width = 0, in_features
    for spec in cfg.layers:
        if spec.type == "linear":
            total += width * spec.width + spec.width
            width = spec.width
    return total


def summarize_config(cfg: ModelConfig, in_features: int) -> list[tuple[str, str, str, int]]:
    """The rows ``MLP.summary`` would give, without allocating the model."""
    rows, width = [], in_features
    for i, spec in enumerate(cfg.layers):
        if spec.type == "linear":
            rows.append((str(i), f"Linear({width}, {spec.width})", f"(N, {spec.width})",
                         width * spec.width + spec.width))
            width = spec.width
        elif spec.type == "dropout":
            rows.append((str(i), f"Dropout(p={spec.rate:g})", f"(N, {width})", 0))
        else:
            rows.append((str(i), f"{LAYERS[spec.type].cls.__name__}()", f"(N, {width})", 0))
    return rows


def check_size(cfg: ModelConfig, in_features: int) -> int:
    """The parameter count, refused above MAX_PARAMS before anything is allocated."""
    n = count_params(cfg, in_features)
    if n > MAX_PARAMS:
        raise ConfigError(
            f"model.layers: the network would have {n:,} parameters for {in_features} inputs; "
            f"at most {MAX_PARAMS:,} are allowed"
        )
    return n


def check_model_fits_data(cfg: Config, num_classes: int, dataset: str | None = None) -> None:
    """The last Linear must produce one logit per class."""
    last = len(cfg.model.layers) - 1
    width = cfg.model.layers[last].out_features
    if width != num_classes:
        raise ConfigError(
            f"model.layers[{last}].linear: the last layer has {width} outputs but dataset "
            f"{dataset or cfg.data.dataset} has {num_classes} classes"
        )


# A narrow layer's weights are faster row-major once the batch is not small (see weight_order).
NARROW_OUT, ROW_MAJOR_MIN_BATCH = 16, 32


def weight_order(layout: Order, out_features: int, batch_size: int | None) -> Order:
    """The memory order of one Linear layer's weights in a model of ``layout``: the layout's, except that
    in a column-major model trained at batch ≥ 32 a layer of at most 16 units (the 10-class output layer)
    keeps its weights row-major.

    The measurements behind the thresholds are in docs/performance.md ("Memory orders").
    """
    if layout == "F" and batch_size is not None and batch_size >= ROW_MAJOR_MIN_BATCH and out_features <= NARROW_OUT:
        return "C"
    return layout


def build_model(
    cfg: ModelConfig,
    in_features: int,
    rng: np.random.Generator,
    dropout_rng: np.random.Generator | None = None,
    *,
    dtype: str | None = None,
    layout: Order = "F",
    batch_size: int | None = None,
) -> MLP:
    """Build the MLP a ModelConfig describes.

    Args:
        in_features: input width D, inferred from the data.
        rng: draws the initial weights.
        dropout_rng: draws the dropout masks (shared by all Dropout layers).
        dtype: overrides ``cfg.dtype`` (gradcheck uses float64).
        layout: memory order of weights and activations, "F" or "C". Column-major is the faster at every batch
            size measured (docs/performance.md).
        batch_size: the batch size the model will train at; with it, narrow layers of a column-major
            model get row-major weights (``weight_order``).
    """
    check_size(cfg, in_features)
    twin, head = _backend(cfg.backend)
    dt = np.dtype(dtype or cfg.dtype)
    drng = dropout_rng if dropout_rng is not None else rng
    layers: list[Layer] = []
    width = in_features
    last_linear = max(i for i, sp in enumerate(cfg.layers) if sp.type == "linear")
    for i, spec in enumerate(cfg.layers):
        if spec.type == "linear":
            # model.max_norm constrains hidden units (Srivastava et al.); a layer's own max_norm wins.
            max_norm = spec.max_norm if spec.max_norm is not None else (cfg.max_norm if i != last_linear else None)
            layers.append(
                twin.get(Linear, Linear)(
                    width,
                    spec.width,
                    rng=rng,
                    init=spec.init or cfg.init,
                    init_std=spec.init_std if spec.init_std is not None else cfg.init_std,
                    bias_init=spec.bias_init or cfg.bias_init,
                    bias_std=spec.bias_std if spec.bias_std is not None else cfg.bias_std,
                    max_norm=max_norm,
                    dtype=dt,
                    order=weight_order(layout, spec.width, batch_size),
                    out_order=layout,
                )
            )
            width = spec.width
        elif spec.type == "dropout":
            cls = twin.get(Dropout, Dropout)  # the textbook twin draws its mask in the fast layout's order
            layers.append(cls(spec.rate, rng=drng) if cls is Dropout else cls(spec.rate, rng=drng, mask_order=layout))
        else:
            act = LAYERS[spec.type].cls
            layers.append(twin.get(act, act)())  # an activation: no options
    return MLP(layers, in_features, layout, head=head)


def _backend(name: str) -> tuple[dict, SoftmaxCrossEntropy | None]:
    """(fast class -> the class that replaces it, the head) of ``model.backend``. The textbook twins are
    imported only here, only for ``reference``: the fast path never loads them."""
    if name != "reference":
        return {}, None
    from mlpkit.nn.reference_model import REFERENCE_CLASSES, ReferenceSoftmaxCrossEntropy

    return REFERENCE_CLASSES, ReferenceSoftmaxCrossEntropy()


def build_optimizer(model: MLP, backend: str, lr: float, momentum: float, weight_decay: float) -> SGD:
    """SGD for ``model.backend``: the fused fast one, or ``reference.sgd_step`` written out."""
    if backend == "reference":
        from mlpkit.nn.reference_model import ReferenceSGD

        return ReferenceSGD(model, lr, momentum, weight_decay)
    return SGD(model, lr, momentum, weight_decay)

