"""The ``mlpkit`` command line: parse options, call the library, render, exit.

Exit codes: 0 success, 1 a check failed or training diverged, 2 bad input
(config, file, dataset, folder), 130 interrupted.

Long because each of its 15 commands is declared here, whole: typer reads a command's
options, help text and example from its function. Each function is options and a few
lines that call the library and render; nothing else lives here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mlpkit import __version__
from mlpkit.app import api, catalog, inspection, plots, render, reports
from mlpkit.app.catalog import RunFileWarning
from mlpkit.app.configfile import load_config
from mlpkit.app.interrupts import graceful_stop
from mlpkit.data.cache import DataWarning, dataset_status
from mlpkit.data.core import summarize
from mlpkit.data.load import load_dataset
from mlpkit.data.registry import REGISTRY
from mlpkit.diagnostics.checks import DEFAULT_ATOL, DEFAULT_EPS, DEFAULT_RTOL, DEFAULT_SAMPLES, CheckSettings
from mlpkit.diagnostics.dropoutreport import DEFAULT_EXAMPLES, DEFAULT_PASSES, dropout_report
from mlpkit.diagnostics.gradcheck import DEFAULT_BATCH, gradcheck
from mlpkit.diagnostics.gradprofile import GradProfile, compare_profiles, describe_model, grad_profile
from mlpkit.diagnostics.steptrace import trace_step
from mlpkit.errors import ConfigError, Interrupted, MlpkitError
from mlpkit.writer import silence_stdout


class _OneLineUsageErrors(TyperGroup):
    """The root command, run with ``standalone_mode=False`` so that usage errors (an unknown option, a
    missing argument, a bad value) reach us: printed as one line on stderr with the fix where there is one,
    instead of typer's multi-line panel, and exit code 2 (click's)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as e:  # click's ClickException (typer >= 0.29 carries its own click)
            _usage_error(e)
            sys.exit(e.exit_code)
        except typer.Abort:
            render.error("aborted")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)  # a typer.Exit's code, else success

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            _plain_flags(cmd.get_params(ctx))  # creates and marks each command's own --help
            for sub in getattr(cmd, "commands", {}).values():  # a group's commands (mlpkit data ...)
                _plain_flags(sub.get_params(ctx))
        return cmd


def _plain_flags(params: list[Any]) -> list[Any]:
    """A flag takes no value, so its help shows no type: typer would print <bool> beside --help and the
    completion flags, which mlpkit's own flags avoid with metavar=""."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
    return params


app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="mlpkit",
    help=(
        "Train multilayer perceptrons whose forward and backward passes are written by hand "
        "in NumPy, and look inside them.\n\n"
        "Example: [bold]mlpkit train configs/quickstart.yaml[/bold]"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Options shared by several commands, declared once.
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY.PATH=VALUE",
                 help="Override a config value, e.g. --set train.lr=0.05 --set model.layers[2].dropout=0.3."),
]
DataDirOpt = Annotated[
    str | None,
    typer.Option("--data-dir", metavar="DIR", help="Where datasets are kept and downloaded to (wins over "
                 "data.data_dir and $MLPKIT_DATA_DIR; default: the platform cache, ~/.cache/mlpkit on Linux)."),
]
OfflineOpt = Annotated[bool, typer.Option("--offline", metavar="", help="Never download; use only files already present.")]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print the result as JSON on stdout, for scripts.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="No progress bars.")]


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn library errors into one line on stderr and their exit code, and warnings into one line each."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        warnings.simplefilter("always", RunFileWarning)
        warnings.showwarning = lambda message, *args, **kwargs: render.warning(str(message))
        with _error_lines():
            yield


@contextlib.contextmanager
def _error_lines() -> Iterator[None]:
    try:
        yield
    except Interrupted as e:
        render.stopped(str(e))
        raise typer.Exit(e.exit_code) from None
    except MlpkitError as e:
        render.error(str(e))
        raise typer.Exit(e.exit_code) from None
    except BrokenPipeError:  # the reader went away (mlpkit ... | head): stop quietly, as Unix tools do
        silence_stdout()  # Python's own flush at exit would raise again
        raise typer.Exit(141) from None
    except OSError as e:  # a path the system refuses (a name too long, a loop of links): bad input, one line
        render.error(f"{e.filename}: {e.strerror or e}" if e.filename else str(e))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        render.error("interrupted")
        raise typer.Exit(130) from None


def _show(result: object, json_: bool, human: Callable[..., None], *args: object) -> None:
    """Results go to stdout: as JSON for scripts, or drawn by the rendering module."""
    if json_:
        render.as_json(result)
    else:
        human(result, *args)


def as_source(data_dir: str | None, offline: bool, quiet: bool) -> api.DataSource:
    return api.DataSource(data_dir, offline, render.DownloadProgress(disable=quiet))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlpkit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, metavar="", help="Show the version and exit.")
    ] = False,
) -> None:
    """Train and inspect hand-written NumPy MLPs."""


@app.command()
def train(
    config: Annotated[Path | None, typer.Argument(help="YAML config describing data, model and training.",
                                                     show_default=False)] = None,
    set_: SetOpt = None,
    epochs: Annotated[int | None, typer.Option(
        "--epochs", min=1, help="Shortcut for --set train.epochs=N (also extends a resumed run).",
        show_default=False)] = None,
    lr: Annotated[float | None, typer.Option(
        "--lr", help="Shortcut for --set train.lr=X.", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", min=0, help="Shortcut for --set seed=N.", show_default=False)] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", metavar="DIR",
                                    help="Run folder to write (default: runs/<config>-<time>).")
    ] = None,
    force: Annotated[bool, typer.Option(
        "--force", metavar="", help="Replace the run already in --out (its results, checkpoints and weights).")] = False,
    resume: Annotated[Path | None, typer.Option(
        "--resume", metavar="RUN", help="Continue an interrupted run from its last checkpoint, bit-identically "
        "(only --set train.epochs=N may change).", show_default=False)] = None,
    init_from: Annotated[Path | None, typer.Option(
        "--init-from", metavar="RUN", help="Start from a saved run's weights instead of the initializer: a run "
        "folder, RUN/best or RUN/last (its checkpoints), or a weights .npz. Its layers must match the config's.",
        show_default=False)] = None,
    checkpoint_every: Annotated[int, typer.Option(
        min=0, metavar="N", help="Also checkpoint every N steps (0: only at the end of each epoch).")] = 0,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", metavar="", help="Check the config (or the --resume checkpoint), data and model, then stop; write "
        "nothing.")] = False,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train the model a YAML config describes, with minibatch SGD.

    Each epoch prints the training loss as trained (dropout on), the
    inference-mode loss and accuracy on a training sample and on the validation
    split, the mean gradient norm of each Linear layer, and the time. The run
    folder gets the resolved config, metrics.jsonl, checkpoints/last.npz and
    best.npz after every epoch, and the final weights (model.npz).

    Ctrl-C (or SIGTERM) stops after the current step and saves a checkpoint;
    [bold]--resume RUN[/bold] continues it exactly. A second Ctrl-C quits at once.

    Example: [bold]mlpkit train configs/quickstart.yaml --set train.epochs=5[/bold]
    """
    with _errors():
        set_ = [*(set_ or []), *_shortcuts(epochs=epochs, lr=lr, seed=seed)]
        source = as_source(data_dir, offline, quiet)
        if out is not None and not out.strip():
            raise ConfigError("--out: the run folder must not be empty")
        if resume is not None:
            if config is not None:
                raise ConfigError(f"give a CONFIG or --resume {resume}, not both: a resumed run keeps its own config")
            if init_from is not None:
                raise ConfigError(f"--init-from starts a new run; --resume {resume} continues one with its own weights")
            for option, value in (("--lr", lr), ("--seed", seed)):
                if value is not None:
                    raise ConfigError(f"{option}: a resumed run keeps its config, so only --epochs may change; to "
                                      f"train on with another {option[2:]}, start a new run from its weights: "
                                      f"mlpkit train CONFIG --init-from {resume} {option} {value}")
            if dry_run:
                _, _, plan = api.check_resume(resume, source, tuple(set_ or ()))
                _show(plan, json_, render.resume_plan)
                return
            trainer, writer, plan = api.resume(resume, source, tuple(set_ or ()))
            for w in plan.warnings:
                render.warning(w)
        else:
            if config is None:
                raise ConfigError("missing CONFIG: give a YAML config (e.g. configs/quickstart.yaml) or --resume RUN")
            if dry_run:
                _show(api.dry_run(load_config(config, tuple(set_ or ())), source), json_, render.dry_run)
                return
            trainer, writer = api.start_run(config, tuple(set_ or ()), out, source, force=force, init_from=init_from)
        if not json_:
            render.model_summary(trainer.model.summary(), trainer.model.num_params, trainer.model.in_features)
        if resume is not None and not json_:
            render.note(f"resuming {writer.path} at epoch {trainer.epoch + 1}, step {trainer.epoch_step}")
        progress = render.EpochProgress(trainer.cfg.train.epochs, disable=quiet)
        linear = [f"layers.{i}" for i, _ in trainer.model.linear_layers()]
        table = None if json_ else render.EpochTable(trainer.cfg.train.epochs, linear,
                                                     has_dropout=any(d.p > 0 for _, d in trainer.model.dropout_layers()))
        try:
            with graceful_stop() as stop:
                result = api.train_run(trainer, writer, on_step=progress, on_epoch=table,
                                       checkpoint_every=checkpoint_every, stop_requested=stop)
        finally:
            progress.close()
        _show(result, json_, render.train_summary)


def _shortcuts(**values: object) -> list[str]:
    """--epochs, --lr and --seed as the --set items they stand for (repr keeps a float exact)."""
    keys = {"epochs": "train.epochs", "lr": "train.lr", "seed": "seed"}
    return [f"{keys[k]}={v!r}" for k, v in values.items() if v is not None]


class SplitName(str, Enum):
    test = "test"
    validation = "validation"
    train = "train"


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run folder (uses its model.npz) or a weights .npz file.",
                                        show_default=False)],
    split: Annotated[SplitName, typer.Option(help="Which split of the run's dataset to score.")] = SplitName.test,
    plot: Annotated[Path | None, typer.Option(help="Also draw the confusion matrix and the most confidently wrong "
                                                   "test images (.png/.svg/.pdf); needs matplotlib.",
                                              show_default=False)] = None,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Score a saved run: loss, accuracy, per-class accuracy and confusion matrix.

    The model is rebuilt from the config stored in the weights file; the YAML
    is not needed.

    Example: [bold]mlpkit evaluate runs/quickstart-20261128-101500[/bold]
    """
    with _errors():
        if plot is not None:
            plots.require_matplotlib()
            plots.check_plot_path(plot)
        result, path = api.evaluate_run(run, split.value, as_source(data_dir, offline, json_))
        _show(result, json_, reports.eval_result, str(path))
        if plot is not None:
            from mlpkit.app.htmlreport import evaluate_for_report

            ev = evaluate_for_report(Path(path).parent if Path(path).name == "model.npz" else Path(run),
                                     as_source(data_dir, offline, True))
            where = plots.plot_evaluation(ev, plot, inputs=[path])
            if not json_:
                render.note(f"figure written to {where}")


@app.command("gradcheck")
def gradcheck_command(
    config: Annotated[Path | None, typer.Argument(
        help="Check this config's network and training step on its data; without it, every op and a default "
             "network.",
        show_default=False)] = None,
    eps: Annotated[float, typer.Option(help="Central-difference step h: (f(x+h) − f(x−h)) / 2h.")] = DEFAULT_EPS,
    rtol: Annotated[float, typer.Option(help="Relative tolerance of the pass rule.")] = DEFAULT_RTOL,
    atol: Annotated[float, typer.Option(help="Absolute tolerance of the pass rule.")] = DEFAULT_ATOL,
    samples: Annotated[int, typer.Option(min=1, help="Entries checked per tensor; smaller tensors are checked "
                                                     "whole.")] = DEFAULT_SAMPLES,
    batch: Annotated[int, typer.Option(min=1, help="Training examples used with CONFIG.")] = DEFAULT_BATCH,
    seed: Annotated[int, typer.Option(min=0, help="Seeds the random inputs and the sampled entries.")] = 0,
    set_: SetOpt = None,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Prove every backward pass and the training step against central finite differences, in float64.

    For each tensor, every entry (or --samples of them) compares the analytic
    gradient a with the numeric n = (f(x+eps) − f(x−eps)) / 2·eps. A row shows
    the [bold]max abs error[/bold] max|a − n| and the [bold]rel error[/bold]
    ‖a − n‖ / (‖a‖ + ‖n‖) (about 1e-10 when right, 1e-2 or more for a wrong
    formula), and passes when |a − n| ≤ atol + rtol·|n| for every entry.
    Entries whose ±eps step crosses a ReLU kink are skipped and counted;
    dropout masks are held fixed. Then three real training steps: each
    parameter's change against the textbook SGD update (momentum, weight
    decay, max-norm, a learning-rate change) from central-difference
    gradients; and the properties finite differences cannot see (dropout's
    rate and expectation, softmax's sums and loss). Exit 0 if all pass, 1 if
    any fails.

    Example: [bold]mlpkit gradcheck[/bold]   or   [bold]mlpkit gradcheck configs/mnist-sigmoid.yaml --data-dir DIR[/bold]
    """
    with _errors():
        if not (0 < eps <= 1 and 0 <= rtol < math.inf and 0 <= atol < math.inf):
            raise ConfigError(f"--eps must be in (0, 1] and --rtol, --atol finite and >= 0; got {eps:g}, {rtol:g}, "
                              f"{atol:g}")
        cfg = load_config(config, tuple(set_ or ())) if config is not None else None
        settings = CheckSettings(eps, rtol, atol, samples, seed)
        data = api.load_data_for(cfg, as_source(data_dir, offline, json_)) if cfg is not None else None
        report = gradcheck(cfg, settings, data=data, batch=batch)
        _show(report, json_, inspection.gradcheck_report)
        if not report.passed:
            raise typer.Exit(1)


TargetArg = Annotated[
    Path, typer.Argument(help="A YAML config, or a run folder / weights .npz to inspect its trained weights.",
                         show_default=False),
]


class NormName(str, Enum):
    db = "db"
    dW = "dW"


@app.command("inspect-grads")
def inspect_grads(
    targets: Annotated[list[Path], typer.Argument(
        help="One or more YAML configs or run folders / weights .npz; two or more are drawn on one shared scale.",
        show_default=False)],
    epochs: Annotated[int | None, typer.Option(
        min=0, help="Training epochs to measure after (default: 3 for a config, 0 for a saved run).",
        show_default=False)] = None,
    probe: Annotated[int, typer.Option(min=1, help="Training images the gradient is averaged over.")] = 1000,
    norm: Annotated[NormName, typer.Option(help="db: Nielsen's speed of learning (the bias gradient); dW: the "
                                                "weight gradient, which also grows with fan-in.")] = NormName.db,
    plot: Annotated[Path | None, typer.Option(help="Also write a figure (.png/.svg/.pdf); needs matplotlib.",
                                                 show_default=False)] = None,
    set_: SetOpt = None,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Show per-layer gradient norms, where sigmoid's vanishing gradient becomes visible.

    For each Linear layer, input to output: ‖dW‖, ‖db‖ (Nielsen's "speed of
    learning": the bias gradient averaged over a probe of training images),
    their RMS (norm / sqrt(size), fair across widths) and the norm relative to
    the last hidden layer; for each activation, the mean derivative (σ′ ≤ 1/4)
    and the share of saturated units. Measured at initialization and after each
    training epoch, with a log-scale bar per layer. Given two or more configs or
    runs, draws them on one shared log scale with their ratios side by side.

    Example: [bold]mlpkit inspect-grads configs/vanishing-sigmoid.yaml configs/vanishing-relu.yaml --data-dir DIR[/bold]
    """
    with _errors():
        if plot is not None:
            plots.require_matplotlib()
            plots.check_plot_path(plot)
        profiles: list[GradProfile] = []
        read: list[str | Path] = []
        for target in targets:
            trainer, epoch_known = api.inspected(target, tuple(set_ or ()), as_source(data_dir, offline, quiet))
            k = epochs if epochs is not None else (0 if api.is_run_path(target) else 3)
            progress = render.EpochProgress(trainer.epoch + k, disable=quiet)
            try:
                profiles.append(grad_profile(trainer, k, probe, description=f"{Path(target).stem}: "
                                             f"{describe_model(trainer.model)}", on_step=progress,
                                             trained=api.is_run_path(target), trained_epoch_known=epoch_known))
            finally:
                progress.close()
            # what was read: the config or weights file (a run folder may hold the figure) and the dataset
            read += [*([] if Path(target).is_dir() else [target])]
            read += [trainer.data.location] if trainer.data.location else []
        if len(profiles) == 1:
            _show(profiles[0], json_, inspection.grad_profile, norm.value)
        else:
            _show(compare_profiles(profiles, norm.value), json_, inspection.grad_comparison)
        if plot is not None:
            where = plots.plot_grad_profiles(profiles, plot, norm.value, inputs=read)
            if not json_:
                render.note(f"figure written to {where}")


@app.command("inspect-step")
def inspect_step(
    target: TargetArg,
    examples: Annotated[int, typer.Option(min=1, max=1000, help="Training examples in the step's batch.")] = 4,
    layer: Annotated[int | None, typer.Option(min=0, help="Show only layer I (numbered as in the model).",
                                              show_default=False)] = None,
    set_: SetOpt = None,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Trace one real training step, layer by layer: forward, loss, backward, update, dropout masks.

    The step is the trainer's own, on the first training examples: each layer's output (shape, formula, first
    values, mean, std), the loss, each gradient dL/d· with its formula and norm, dW and db, and each parameter's
    change. The formulas are those of docs/math.md and mlpkit/nn/reference.py. Nothing is saved.

    Example: [bold]mlpkit inspect-step configs/quickstart.yaml --examples 4[/bold]
    """
    with _errors():
        trainer, _ = api.inspected(target, tuple(set_ or ()), as_source(data_dir, offline, quiet))
        if layer is not None and layer >= len(trainer.model.layers):
            raise ConfigError(f"--layer {layer}: the model has layers 0 to {len(trainer.model.layers) - 1}")
        trace = trace_step(trainer, examples, layer, description=f"{Path(target).stem}: "
                           f"{describe_model(trainer.model)}")
        _show(trace, json_, inspection.step_trace)


@app.command("inspect-dropout")
def inspect_dropout(
    target: TargetArg,
    epochs: Annotated[int | None, typer.Option(
        min=0, help="Training epochs before measuring (default: the config's train.epochs; 0 for a saved run).",
        show_default=False)] = None,
    examples: Annotated[int, typer.Option(min=1, help="Examples to measure on.")] = DEFAULT_EXAMPLES,
    passes: Annotated[int, typer.Option(min=1, help="Training-mode passes for the MC-dropout spread.")] =
    DEFAULT_PASSES,
    split: Annotated[SplitName, typer.Option(help="Which split the examples come from.")] = SplitName.test,
    set_: SetOpt = None,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Show how each Dropout layer behaves in training versus inference mode.

    p is the probability of DROPPING a unit (PyTorch/Keras; the notes this
    project grew from used p as the keep probability). For each Dropout layer:
    p, keep probability 1−p, the measured drop rate, and the mean activation in
    training mode (survivors scaled by 1/(1−p)) versus inference mode (the
    identity) — their ratio is about 1. Then the model's loss and accuracy in
    each mode on the same examples, and the spread of its predictions over
    several training-mode passes (MC dropout). Given a config it trains first
    (--epochs); given a finished run folder it measures the saved weights.

    Example: [bold]mlpkit inspect-dropout configs/quickstart.yaml[/bold]   or   [bold]mlpkit inspect-dropout runs/RUN[/bold]
    """
    with _errors():
        trainer = api.trainer_for(target, tuple(set_ or ()), as_source(data_dir, offline, quiet))
        k = epochs if epochs is not None else (0 if api.is_run_path(target) else trainer.cfg.train.epochs)
        if not trainer.model.dropout_layers():
            k = 0  # nothing to see: say so at once rather than after training
        progress = render.EpochProgress(trainer.epoch + k, disable=quiet)
        try:
            api.train_epochs(trainer, k, progress)
        finally:
            progress.close()
        x, y = api.examples_of(trainer, split.value, examples)
        report = dropout_report(trainer.model, x, y, passes)
        _show(report, json_, inspection.dropout_report)


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="A run folder or weights .npz file.", show_default=False)],
    inputs: Annotated[list[Path], typer.Argument(
        help="Image files (PNG, JPEG, BMP, ...), folders of them, .npy/.npz arrays (N×H×W or N×H·W) or a CSV of "
             "pixel rows.", show_default=False)],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes shown per input.")] = 3,
    raw: Annotated[bool, typer.Option("--raw", metavar="", help="Use the images as they are (they must already "
                                      "be the run's size), without the MNIST-style preparation.")] = False,
    prepare: Annotated[PrepName | None, typer.Option(
        "--prepare", help="How pictures are made into the model's input: mnist (20 px in 28, centre of mass), "
        "uci-digits (the box filling 32×32, 4×4 block counts) or none; default: the run's dataset's.",
        show_default=False)] = None,
    show_images: Annotated[bool, typer.Option("--show", metavar="", help="Draw each image as the model saw it, in "
                                              "block characters.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Classify your own digits with a trained run: photos, drawings, scans or arrays.

    Pictures are prepared the way MNIST's digits were made: grayscale, inverted if the background is light, cropped
    to the ink, the longer side scaled to 20 px (for 28×28; in proportion for other sizes), and centred by the centre
    of mass. Arrays already of the run's size are used as they are. Prints the top classes with probabilities.

    Example: [bold]mlpkit predict runs/mnist-sigmoid-20261128-101500 my-digit.jpg --show[/bold]
    """
    with _errors():
        result, seen, given = api.predict(run, list(inputs), top_k=top_k, raw=raw,
                                          preparation=prepare.value if prepare is not None else None)
        for item in result.items:
            for doubt in item.doubts:
                render.warning(f"{item.source}: {doubt}")
        _show(result, json_, reports.predictions, (seen, given) if show_images else None)


class PrepName(str, Enum):
    mnist = "mnist"
    uci_digits = "uci-digits"
    none = "none"


class ExportFormat(str, Enum):
    onnx = "onnx"
    safetensors = "safetensors"


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="A run folder or weights .npz file.", show_default=False)],
    format_: Annotated[ExportFormat, typer.Option("--format", "-f", help="onnx: the inference graph, raw pixels in, "
                                                  "probabilities out; safetensors: the weights under torch.nn."
                                                  "Sequential names.")] = ExportFormat.onnx,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The file to write (default: beside the "
                                                "weights, model.onnx or model.safetensors).", show_default=False)]
    = None,
    json_: JsonOpt = False,
) -> None:
    """Take a trained model to ONNX Runtime or PyTorch (needs pip install 'mlpkit\\[export]').

    Example: [bold]mlpkit export runs/RUN --format onnx -o digits.onnx[/bold]
    """
    with _errors():
        _show(api.export_run(run, format_.value, out), json_, reports.exported)


@app.command("runs")
def runs_(
    folder: Annotated[Path | None, typer.Argument(help="Where to look for runs, 3 levels deep (default: runs/).",
                                                     show_default=False)] = None,
    json_: JsonOpt = False,
) -> None:
    """List the runs in a folder, newest first, with their status and scores.

    For each run: its config, when it started, epochs done of those planned, the best validation accuracy, the
    test accuracy, and its status (finished, running, interrupted, diverged).

    Example: [bold]mlpkit runs[/bold]   or   [bold]mlpkit runs runs/reproduce[/bold]
    """
    with _errors():
        _show(catalog.list_runs(folder or Path("runs"), missing_ok=folder is None), json_, reports.run_list)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders.", show_default=False)],
    json_: JsonOpt = False,
) -> None:
    """Compare runs: their final metrics side by side, and the config keys whose values differ.

    Example: [bold]mlpkit compare runs/quickstart-20261128-101500 runs/quickstart-20261128-103000[/bold]
    """
    with _errors():
        _show(catalog.compare_runs(list(runs)), json_, reports.comparison)


@app.command()
def plot(
    runs: Annotated[list[Path], typer.Argument(help="One or more run folders, overlaid.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The figure to write: .png, .svg or .pdf.")] = Path(
        "curves.png"),
    json_: JsonOpt = False,
) -> None:
    """Draw learning curves of one or more runs, overlaid.

    Training loss as trained and in inference mode, validation loss and accuracy, and each Linear layer's mean
    gradient norm per epoch. Needs matplotlib: pip install 'mlpkit\\[plot]'.

    Example: [bold]mlpkit plot runs/RUN_A runs/RUN_B -o curves.png[/bold]
    """
    with _errors():
        plots.require_matplotlib("mlpkit plot")
        tests = [catalog.read_results(r).get("test", {}) for r in runs]
        where = plots.plot_runs(catalog.learning_curves(list(runs)), out, catalog.run_files(list(runs)),
                                [t.get("accuracy") if isinstance(t, dict) else None for t in tests])
        _show({"figure": str(where), "runs": [str(r) for r in runs]}, json_,
              lambda r: render.console.print(f"figure written to {r['figure']}"))


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="One or more run folders, overlaid.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The page to write (.html).")] = Path("report.html"),
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Write one self-contained HTML page about one or more runs: summary, learning curves, gradient norms,
    confusion matrix, and the test images the model got most confidently wrong. It works offline: every
    chart and picture is inside the file. Needs matplotlib: pip install 'mlpkit\\[plot]'.

    Example: [bold]mlpkit report runs/RUN_A runs/RUN_B -o report.html[/bold]
    """
    with _errors():
        from mlpkit.app.htmlreport import write_report

        where = write_report(list(runs), out, as_source(data_dir, offline, True))
        _show({"report": str(where), "runs": [str(r) for r in runs], "bytes": where.stat().st_size}, json_,
              lambda r: render.console.print(f"report written to {r['report']} ({r['bytes']:,} bytes)"))


@app.command()
def sweep(
    target: Annotated[list[str], typer.Argument(
        help="SWEEP.yaml to run (or continue) a search, or: show NAME.", show_default=False, metavar="SWEEP.yaml|show NAME")],
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes on this machine (BLAS threads divided "
                                                             "so that workers × threads ≤ cores).")] = 1,
    storage: Annotated[str | None, typer.Option(help="An Optuna storage URL shared by several machines "
                                                     "(postgresql://…, mysql://…); default: sweeps/NAME/study.db.",
                                                show_default=False)] = None,
    name: Annotated[str | None, typer.Option(help="The study's name and folder (default: the sweep file's name).",
                                             show_default=False)] = None,
    plot: Annotated[Path | None, typer.Option(help="show: also draw the optimization history (FILE), the parallel "
                                                   "coordinates and the slices (FILE-parallel, FILE-slice).",
                                              show_default=False)] = None,
    export_best: Annotated[Path | None, typer.Option("--export-best", help="show: write the best trial's config "
                                                     "(trains it again bit-identically).", show_default=False)] = None,
    data_dir: DataDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Search hyperparameters with Optuna: every trial a normal run folder under sweeps/NAME/.

    The sweep file names a base config, the keys to search (float, int or choices), the objective (validation
    accuracy or loss), the budget, the sampler and the pruner. Running the same command again continues the
    study up to its budget; with --storage, the same command on several machines joins one study.

    Example: [bold]mlpkit sweep configs/sweeps/mnist-lr-batch.yaml --workers 2[/bold]   then   [bold]mlpkit sweep show mnist-lr-batch[/bold]
    """
    with _errors():
        from mlpkit.app import sweep as sweeps

        if target[0] == "show":
            if len(target) != 2:
                raise ConfigError("mlpkit sweep show NAME: give one sweep name")
            summary = sweeps.show_sweep(target[1], storage=storage)
            if export_best is not None:
                where = sweeps.export_best(summary, export_best)
                render.note(f"the best trial's config written to {where}")
            if plot is not None:
                plots.plot_sweep(target[1], sweeps.storage_url(Path("sweeps") / target[1], storage), plot)
            _show(summary, json_, reports.sweep_summary)
            return
        if len(target) != 1:
            raise ConfigError("mlpkit sweep: give one SWEEP.yaml (or: show NAME)")
        try:
            folder = sweeps.run_sweep(target[0], workers=workers, storage=storage, name=name, data_dir=data_dir)
        except KeyboardInterrupt:
            render.stopped("sweep stopped; run the same command again to continue the study")
            raise typer.Exit(130) from None
        summary = sweeps.show_sweep(name or Path(target[0]).stem, storage=storage)
        _show(summary, json_, reports.sweep_summary)
        if not json_:
            render.note(f"trials in {folder}; see them with: mlpkit sweep show {name or Path(target[0]).stem}")


data_app = typer.Typer(
    help="List, download and describe datasets.\n\nExample: [bold]mlpkit data download mnist[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(data_app, name="data")


@data_app.command("list")
def data_list(data_dir: DataDirOpt = None, json_: JsonOpt = False) -> None:
    """Every known dataset: size, where it is (or would be) cached, and whether its files are present and intact.

    Example: [bold]mlpkit data list[/bold]
    """
    with _errors():
        rows = [dataset_status(name, data_dir) for name in REGISTRY]
        _show(rows, json_, reports.dataset_list)


@data_app.command("download")
def data_download(
    name: Annotated[str, typer.Argument(help="mnist, fashion-mnist or kmnist.", show_default=False)],
    data_dir: DataDirOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download a dataset into the cache (or --data-dir), verifying every file's SHA-256.

    Mirrors are tried in order; a file is renamed into place only once verified.
    Files already present and intact are not downloaded again.

    Example: [bold]mlpkit data download fashion-mnist[/bold]
    """
    with _errors():
        progress = render.DownloadProgress(disable=quiet or json_)
        try:
            result = api.download_dataset(name, data_dir, progress)
        finally:
            progress.close()
        _show(result, json_, reports.downloaded)


@data_app.command("preview")
def data_preview(
    target: Annotated[str, typer.Argument(
        help="A dataset (digits, mnist, a folder, an .npz or .csv) or a YAML config; a config with data.augment "
             "shows its augmentation.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write a labelled PNG grid instead of drawing in "
                                                "the terminal.", show_default=False)] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=64,
                                       help="Examples per class, or training images augmented.")] = 6,
    versions: Annotated[int, typer.Option(min=1, max=16, help="Augmented versions of each (a config with "
                                                                   "data.augment).")] = 2,
    set_: SetOpt = None,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Look at a dataset: the first training examples of each class. Given a config with data.augment: its
    training images beside augmented copies, as the first epoch would draw them.

    Example: [bold]mlpkit data preview digits[/bold]   or   [bold]mlpkit data preview configs/quickstart.yaml --set data.augment.affine.rotate=15[/bold]
    """
    with _errors():
        source = as_source(data_dir, offline, json_)
        augmenting = api.is_config(target) and load_config(target, tuple(set_ or ())).data.augment is not None
        if augmenting:
            p = api.preview_augment(target, tuple(set_ or ()), source, count, versions)
            if out is not None:
                where = api.preview_png(p, out)
                _show({"figure": str(where), "dataset": p.dataset, "settings": p.settings}, json_,
                      lambda r: render.console.print(f"preview written to {r['figure']}"))
            else:
                _show(p, json_, reports.augment_preview)
            return
        c = api.preview_classes(target, tuple(set_ or ()), source, count)
        if out is not None:
            where = api.preview_classes_png(c, out)
            _show({"figure": str(where), "dataset": c.dataset, "class_names": c.class_names}, json_,
                  lambda r: render.console.print(f"preview written to {r['figure']}"))
        else:
            _show(c, json_, reports.class_preview)


@data_app.command("info")
def data_info(
    name: Annotated[str, typer.Argument(help="A dataset name or a path to an .npz file.", show_default=False)],
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Shapes, dtype, pixel range and examples per class of a dataset.

    Example: [bold]mlpkit data info mnist[/bold]
    """
    with _errors():
        ds = load_dataset(name, data_dir, offline=offline, progress=render.DownloadProgress(disable=quiet))
        summary = summarize(ds)
        _show(summary, json_, reports.dataset_info)


def _usage_error(e: typer.TyperException) -> None:
    """Click's usage errors (an unknown option, a missing argument, a bad value) as one line on
    stderr, with the fix where there is one. No line for a bare command: its help was printed."""
    if type(e).__name__ == "NoArgsIsHelpError":  # click >= 8.2 has it; older ones print help themselves
        return
    ctx = getattr(e, "ctx", None)
    cmd = ctx.command_path if ctx is not None else "mlpkit"
    message = e.format_message().rstrip(".")
    render.error(f"{cmd}: {message}{_hint(e)}{'' if message.endswith('?') else ';'} see {cmd} --help")


def _hint(e: Exception) -> str:
    """For an unknown option named like a config key (--epochs, --batch-size), the --set that sets it."""
    name = getattr(e, "option_name", None)
    if type(e).__name__ != "NoSuchOption" or not isinstance(name, str):
        return ""
    key = name.lstrip("-").replace("-", "_")
    from mlpkit.config.schema import Config, DataConfig, ModelConfig, TrainConfig

    for section, cls in (("train", TrainConfig), ("data", DataConfig), ("model", ModelConfig), ("", Config)):
        if key in {f.name for f in dataclasses.fields(cls)} and key not in ("model", "data", "train"):
            return f" (use --set {section + '.' if section else ''}{key}=VALUE)"
    return ""



def run() -> None:  # console-script entry point
    app()
