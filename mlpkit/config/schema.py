"""The config schema: frozen dataclasses, one field per key, with its default, help text and bounds.

A field's ``metadata`` carries its help text and the checks ``validate``
applies (``ge``, ``gt``, ``le``, ``lt``, ``choices``).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, replace
from typing import Any

from mlpkit.nn.init import BIAS_INITS, WEIGHT_INITS
from mlpkit.nn.layers import LAYERS

# Limits that keep a typo from allocating the machine away.
MAX_WIDTH = 65_536  # units in one Linear layer
MAX_LAYERS = 256
MAX_PARAMS = 200_000_000  # 800 MB of float32 weights
MAX_EPOCHS = 100_000
MAX_BATCH = 1_000_000

LAYER_TYPES = tuple(LAYERS)  # linear, sigmoid, relu, tanh, dropout: the registry in mlpkit.nn.layers
DTYPES = ("float32", "float64")
HEADS = ("softmax_ce",)
BACKENDS = ("fast", "reference")
LR_SCHEDULES = ("constant", "step", "exponential", "cosine")


def _f(default: Any = MISSING, *, help: str, **check: Any) -> Any:
    """A dataclass field whose metadata carries its help text and checks."""
    meta = {"help": help, **check}
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple default")
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class LayerSpec:
    """One entry of ``model.layers``. Options left as None take the model's defaults."""

    type: str = _f(help=" | ".join(LAYER_TYPES), choices=LAYER_TYPES)
    out_features: int | None = _f(None, help="linear: output width", min=1, max=MAX_WIDTH)
    p: float | None = _f(None, help="dropout: probability of dropping a unit, in [0, 1)", min=0.0, max_excl=1.0)
    init: str | None = _f(None, help="linear: weight init (overrides model.init)", choices=WEIGHT_INITS)
    init_std: float | None = _f(None, help="linear: std for init 'normal'", min_excl=0.0)
    bias_init: str | None = _f(None, help="linear: bias init (overrides model.bias_init)", choices=BIAS_INITS)
    bias_std: float | None = _f(None, help="linear: std for bias_init 'normal'", min_excl=0.0)
    max_norm: float | None = _f(None, help="linear: cap on each unit's incoming weight norm", min_excl=0.0)

    @property
    def width(self) -> int:
        """A linear layer's output width (validation requires it)."""
        if self.out_features is None:
            raise ValueError(f"a {self.type} layer has no out_features")
        return self.out_features

    @property
    def rate(self) -> float:
        """A dropout layer's p (validation requires it)."""
        if self.p is None:
            raise ValueError(f"a {self.type} layer has no p")
        return self.p


# The option each layer type takes in the short form, and the options it allows (from the layer registry).
_MAIN_OPTION = {name: kind.options[0] for name, kind in LAYERS.items() if kind.options}
_LAYER_OPTIONS = {name: kind.options for name, kind in LAYERS.items()}


@dataclass(frozen=True)
class ElasticConfig:
    alpha: float = _f(help="elastic: the displacement's scale in pixels (Simard et al. 2003: 34 for MNIST)", min=0.0,
                      max=100.0)
    sigma: float = _f(help="elastic: the smoothing Gaussian's standard deviation in pixels (Simard: 4)",
                      min_excl=0.0, max=20.0)
    p: float = _f(1.0, help="elastic: the probability that an image is distorted", min=0.0, max=1.0)


@dataclass(frozen=True)
class AffineConfig:
    rotate: float = _f(0.0, help="affine: the largest rotation, in degrees either way", min=0.0, max=180.0)
    scale: float = _f(0.0, help="affine: the largest zoom, as a fraction (0.1: 0.9 to 1.1)", min=0.0, max=0.9)
    shear: float = _f(0.0, help="affine: the largest shear, in degrees either way", min=0.0, max=60.0)
    translate: float = _f(0.0, help="affine: the largest shift, as a fraction of the image's side", min=0.0,
                          max=0.5)
    p: float = _f(1.0, help="affine: the probability that an image is transformed", min=0.0, max=1.0)


@dataclass(frozen=True)
class AugmentConfig:
    elastic: ElasticConfig | None = _f(None, help="elastic distortions; null: none")
    affine: AffineConfig | None = _f(None, help="random affine maps; null: none")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = _f("digits", help="digits | mnist | path/to/file.npz")
    data_dir: str | None = _f(None, help="folder holding the dataset's IDX files")
    validation: int = _f(0, help="examples held out of the end of the training split", min=0, max=10_000_000)
    train_eval_samples: int = _f(
        10_000, help="training examples scored in inference mode each epoch", min=0, max=10_000_000
    )
    normalize: bool = _f(False, help="standardize inputs with the training split's pixel mean and std")
    image_size: int = _f(28, help="an image folder: the side its images are prepared to", min=4, max=256)
    prepare: bool = _f(True, help="an image folder: prepare each image as MNIST's were (false: use them as they are; "
                       "they must then share one size)")
    test_fraction: float = _f(0.2, help="an image folder without train/ and test/, or a CSV: the share of each class "
                              "held out as the test split", min_excl=0.0, max_excl=1.0)
    label_column: str = _f("label", help="a CSV with a header: the column holding the labels")
    augment: AugmentConfig | None = _f(None, help="transforms applied to each training image, freshly every epoch "
                                       "(never at evaluation); null: none")


@dataclass(frozen=True)
class ModelConfig:
    layers: tuple[LayerSpec, ...] = _f(help="the stack, input to logits")
    init: str = _f("xavier", help="weight init of Linear layers", choices=WEIGHT_INITS)
    init_std: float = _f(1.0, help="std for init 'normal'", min_excl=0.0)
    bias_init: str = _f("zeros", help="bias init of Linear layers", choices=BIAS_INITS)
    bias_std: float = _f(1.0, help="std for bias_init 'normal'", min_excl=0.0)
    max_norm: float | None = _f(
        None, help="cap on the L2 norm of each unit's incoming weights, applied after every step (Srivastava "
        "et al. 2014); null: none", min_excl=0.0
    )
    head: str = _f("softmax_ce", help="the loss head", choices=HEADS)
    dtype: str = _f("float32", help="float32 (training) or float64", choices=DTYPES)
    backend: str = _f("fast", help="fast (BLAS kernels, fused updates) or reference (the textbook functions of "
                      "mlpkit/nn/reference.py: slower, the same numbers to float rounding)", choices=BACKENDS)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    patience: int = _f(help="epochs without improvement of the validation accuracy before training stops", min=1,
                       max=MAX_EPOCHS)
    min_delta: float = _f(0.0, help="the least rise of the validation accuracy (a fraction, 0.001 = 0.1 point) "
                          "that counts as an improvement", min=0.0, max_excl=1.0)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _f(10, help="passes over the training split", min=1, max=MAX_EPOCHS)
    batch_size: int = _f(64, help="examples per SGD step", min=1, max=MAX_BATCH)
    lr: float = _f(0.1, help="learning rate", min_excl=0.0, max=1e6)
    momentum: float = _f(0.0, help="SGD momentum, in [0, 1)", min=0.0, max_excl=1.0)
    weight_decay: float = _f(0.0, help="L2 penalty coefficient (PyTorch SGD convention)", min=0.0, max=1e6)
    l2: float = _f(
        0.0, help="Nielsen's L2 λ: the cost gains (λ/2n)·Σw², i.e. weight_decay = λ / n_train", min=0.0, max=1e9
    )
    lr_schedule: str = _f("constant", help="constant | step | exponential | cosine", choices=LR_SCHEDULES)
    lr_decay: float = _f(1.0, help="step/exponential: factor applied every lr_step epochs", min_excl=0.0, max=1.0)
    lr_step: int = _f(1, help="step: epochs between decays", min=1, max=MAX_EPOCHS)
    lr_min: float = _f(0.0, help="cosine: the final learning rate", min=0.0)
    momentum_start: float | None = _f(
        None, help="momentum of the first epoch, ramped linearly to train.momentum; null: no ramp",
        min=0.0, max_excl=1.0
    )
    momentum_ramp_epochs: int = _f(0, help="epochs the momentum ramp lasts", min=0, max=MAX_EPOCHS)
    grad_norm_samples: int = _f(
        50, help="steps per epoch whose gradient norms are measured (0: every step)", min=0, max=10_000_000
    )
    early_stopping: EarlyStoppingConfig | None = _f(
        None, help="stop when the validation accuracy has not improved for `patience` epochs; the final weights are "
        "the best epoch's (needs data.validation); null: train every epoch"
    )
    tensorboard: bool = _f(False, help="also write TensorBoard scalars to the run folder (events.out.tfevents.mlpkit; "
                           "pip install 'mlpkit[tensorboard]')")


@dataclass(frozen=True)
class Config:
    model: ModelConfig = _f(help="the network")
    seed: int = _f(0, help="seeds init, shuffling and dropout", min=0, max=2**63 - 1)
    data: DataConfig = _f(DataConfig(), help="the dataset")
    train: TrainConfig = _f(TrainConfig(), help="the optimizer and schedule")

    def to_dict(self) -> dict[str, Any]:
        """Plain data that ``config_from_dict`` turns back into an equal Config."""
        d = asdict(self)
        d["model"]["layers"] = [layer_to_dict(s) for s in self.model.layers]
        return d


def layer_to_dict(spec: LayerSpec) -> Any:
    """The shortest YAML form of a layer spec."""
    opts = {k: getattr(spec, k) for k in _LAYER_OPTIONS[spec.type] if getattr(spec, k) is not None}
    main = _MAIN_OPTION.get(spec.type)
    if not opts:
        return spec.type
    if main is not None and list(opts) == [main]:
        return {spec.type: opts[main]}
    return {spec.type: opts}


def with_train(cfg: Config, **changes: Any) -> Config:
    """A copy of ``cfg`` with some ``train`` fields replaced (for tests and tools)."""
    return replace(cfg, train=replace(cfg.train, **changes))
