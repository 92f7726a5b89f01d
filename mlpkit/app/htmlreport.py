"""``mlpkit report RUN [RUN…] -o report.html``: one self-contained HTML page about one or more runs.

Every asset is inline: the charts are matplotlib SVG written into the page, the gallery's pictures PNG data
URIs, the style a ``<style>`` block; there is no script and no request to anywhere, so the file works offline,
from an e-mail or a USB stick, and cannot break when a CDN moves. (matplotlib because mlpkit's ``plot``
already draws with it: one chart language, vector output that stays sharp when zoomed, and no JavaScript to
load or to fail.)

The page holds, per run: a summary (config, data, environment, wall time, test score); learning curves,
training loss with dropout on and off and validation; per-layer gradient norms on one log scale; the
confusion matrix as a heatmap with per-class accuracy; and a gallery of the test images the model got wrong
most confidently. Several runs share each chart, one colour per run.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.app.catalog import learning_curves, read_config, read_results, run_status
from mlpkit.app.plots import RUN_COLORS, draw_confusion, require_matplotlib
from mlpkit.app.runfiles import read_run_info
from mlpkit.errors import MlpkitError, OutputError

GALLERY = 12  # most confidently wrong test images shown per run


@dataclass(frozen=True)
class Mistake:
    index: int  # in the test split
    true: str
    predicted: str
    probability: float  # the model's probability of its (wrong) answer
    png: str  # data URI
    image: np.ndarray | None = None  # (H, W) in 0..255, for evaluate --plot


@dataclass(frozen=True)
class RunEvaluation:
    """A run scored on its test split for the report: the confusion matrix and its worst mistakes."""

    name: str
    class_names: list[str]
    confusion: list[list[int]]
    per_class_accuracy: list[float]
    accuracy: float
    mistakes: list[Mistake]
    dropout: Any = None  # diagnostics.dropoutreport.DropoutReport on test images (None without dropout)


def evaluate_for_report(run: Path, source: Any = None) -> RunEvaluation:
    """The run's model on its test split: confusion matrix and the most confidently wrong images."""
    from PIL import Image

    from mlpkit.app.runfiles import load_weights
    from mlpkit.app.sources import load_data_for
    from mlpkit.data.core import prepare_splits
    from mlpkit.nn.losses import softmax
    from mlpkit.training.evaluate import predict_logits

    saved = load_weights(run)
    data, _, _ = prepare_splits(load_data_for(saved.cfg, source, stored=True, record=saved.data),
                                saved.cfg.data.validation, saved.cfg.data.normalize)
    test = data.test
    with saved.model.mode(training=False):
        probs = softmax(predict_logits(saved.model, test.x, data.scale, shift=data.shift).astype(np.float64))
    pred = probs.argmax(axis=1)
    c = data.num_classes
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (test.y, pred), 1)
    per_class = [float(confusion[k, k] / max(confusion[k].sum(), 1)) for k in range(c)]
    names = list(data.class_names) or [str(k) for k in range(c)]
    wrong = np.flatnonzero(pred != test.y)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:GALLERY]
    mistakes = []
    shape = data.image_shape
    for i in wrong:
        if len(shape) == 2:
            img = (test.x[i].reshape(shape).astype(np.float64) / float(data.pixel_max) * 255).clip(0, 255)
            pic = Image.fromarray(img.astype(np.uint8)).resize((shape[1] * 4, shape[0] * 4), Image.Resampling.NEAREST)
            buf = io.BytesIO()
            pic.save(buf, format="PNG")
            uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        else:
            uri, img = "", None
        mistakes.append(Mistake(int(i), names[int(test.y[i])], names[int(pred[i])], float(probs[i, pred[i]]), uri,
                                img))
    drop = None
    if any(layer.p > 0 for _, layer in saved.model.dropout_layers()):
        from mlpkit.diagnostics.dropoutreport import dropout_report

        x, y = data.inputs(test, 1000, saved.model.dtype)
        drop = dropout_report(saved.model, x, y, 20)
    return RunEvaluation(run.name, names, confusion.tolist(), per_class, float((pred == test.y).mean()), mistakes,
                         drop)


def _svg(fig: Any, css: str = "chart") -> str:
    """A matplotlib figure as an inline <svg> that scales with the page (no fixed width or height)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    start = text.index("<svg")
    svg = text[start:]
    head, rest = svg.split(">", 1)
    for attr in ("width", "height"):  # let CSS size it: readable at phone width
        i = head.find(f' {attr}="')
        if i >= 0:
            j = head.index('"', i + len(attr) + 3)
            head = head[:i] + head[j + 1:]
    return head + f' class="{css}" role="img">' + rest


def _curves(curves: list[tuple[str, list[dict]]], plt: Any) -> tuple[str, str]:
    """(learning curves SVG, gradient norms SVG): colour = run, line style = split or mode."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    styles = (("train_loss", "-", "train, as trained"), ("train_eval_loss", "--", "train, inference mode"),
              ("val_loss", ":", "validation"))
    for k, (name, rows) in enumerate(curves):
        color = RUN_COLORS[k % len(RUN_COLORS)]
        ep = [r["epoch"] for r in rows]
        for key, style, label in styles:
            ys = [r.get(key) for r in rows]
            if any(isinstance(v, (int, float)) for v in ys):
                ax_loss.plot(ep, [v if isinstance(v, (int, float)) else np.nan for v in ys], style, color=color,
                             label=f"{name}: {label}")
        for key, style, label in (("train_eval_acc", "--", "train"), ("val_acc", ":", "validation")):
            ys = [r.get(key) for r in rows]
            if any(isinstance(v, (int, float)) for v in ys):
                ax_acc.plot(ep, [100 * v if isinstance(v, (int, float)) else np.nan for v in ys], style, color=color,
                            label=f"{name}: {label}")
    ax_loss.set_title("loss (lower is better)", fontsize=10)
    ax_acc.set_title("accuracy, % (inference mode)", fontsize=10)
    from matplotlib.ticker import MaxNLocator

    last = max((r["epoch"] for _, rows in curves for r in rows), default=1)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, last + 0.5)  # whole epochs, even for a one-epoch run
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    loss_svg = _svg(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    dashes = ("-", "--", "-.", ":")
    for k, (name, rows) in enumerate(curves):
        color = RUN_COLORS[k % len(RUN_COLORS)]
        layers = sorted({key for r in rows for key in (r.get("grad_norms") or {}) if key.endswith(".W")},
                        key=lambda s: int(s.split(".")[1]))
        for j, layer in enumerate(layers):
            ys = [(r.get("grad_norms") or {}).get(layer) for r in rows]
            ax.plot([r["epoch"] for r in rows], [v if isinstance(v, (int, float)) and v > 0 else np.nan for v in ys],
                    dashes[j % len(dashes)], color=color, marker="o", markersize=3,
                    label=f"{name}: {layer.removesuffix('.W')}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, last + 0.5)
    ax.set_yscale("log")
    ax.set_title("mean ‖dW‖ per Linear layer (one log scale; line style = layer)", fontsize=10)
    ax.set_xlabel("epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    grad_svg = _svg(fig)
    plt.close(fig)
    return loss_svg, grad_svg


def curves_svg(runs: list[str | Path]) -> str:
    """The learning curves of runs as an inline SVG (the report's first chart), e.g. for a notebook."""
    plt = require_matplotlib("the learning curves")
    return _curves(learning_curves(list(runs)), plt)[0]


def _dropout_svg(evaluations: list[RunEvaluation], plt: Any) -> str:
    """Dropout in training versus inference mode: each Dropout layer's mean output in both modes (≈ equal,
    thanks to the 1/(1 − p) scaling), and the model's test loss and accuracy in both modes."""
    with_dropout = [(k, ev) for k, ev in enumerate(evaluations) if ev.dropout is not None]
    fig, (ax_act, ax_score) = plt.subplots(1, 2, figsize=(9, 3.2))
    width = 0.8 / max(len(with_dropout), 1)
    for j, (k, ev) in enumerate(with_dropout):
        color = RUN_COLORS[k % len(RUN_COLORS)]
        rep = ev.dropout
        xs = np.arange(len(rep.layers))
        ps = "/".join(f"{s.p:g}" for s in rep.layers)
        ax_act.bar(xs - 0.4 + (j + 0.25) * width, [s.mean_train for s in rep.layers], width / 2, color=color,
                   label=f"{ev.name} (p {ps}): training mode")
        ax_act.bar(xs - 0.4 + (j + 0.75) * width, [s.mean_eval for s in rep.layers], width / 2, color=color,
                   alpha=0.45, hatch="//", label=f"{ev.name}: inference mode")
        ax_act.set_xticks(xs, [s.layer for s in rep.layers], fontsize=8)
        ax_score.bar([2 * j, 2 * j + 0.8], [100 * rep.train_mode.accuracy, 100 * rep.eval_mode.accuracy],
                     0.7, color=color, alpha=0.9)
        for x, mode in ((2 * j, "train"), (2 * j + 0.8, "infer")):
            ax_score.text(x, 1, mode, ha="center", va="bottom", fontsize=7, color="white", rotation=90)
    ax_score.set_xticks([2 * j + 0.4 for j in range(len(with_dropout))], [ev.name for _, ev in with_dropout],
                        fontsize=8)
    ax_act.set_title("mean output of each Dropout layer", fontsize=10)
    ax_act.legend(fontsize=7)
    ax_score.set_title("test accuracy, % (1,000 images): dropout on / off", fontsize=10)
    svg = _svg(fig)
    plt.close(fig)
    return svg


def _confusion_svg(ev: RunEvaluation, plt: Any) -> str:
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    draw_confusion(ax, ev.confusion, ev.class_names, 7)
    ax.set_title(f"{ev.name}: confusion matrix (test, {100 * ev.accuracy:.2f} %)", fontsize=9)
    svg = _svg(fig, "chart square")
    plt.close(fig)
    return svg


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;
color:#222;line-height:1.4}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.chart{width:100%;height:auto;display:block}.square{max-width:28rem}
table{border-collapse:collapse;font-size:.85rem;display:block;overflow-x:auto}
td,th{padding:.2rem .5rem;border-bottom:1px solid #eee;text-align:right}td:first-child,th:first-child{text-align:left}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(7rem,1fr));gap:.6rem}
.gallery figure{margin:0;text-align:center;font-size:.8rem}.gallery img{width:100%;image-rendering:pixelated}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
"""


def _section(d: dict, key: str) -> dict:
    """``d[key]`` when it is a mapping (run files may be damaged: unknown fields read as empty)."""
    v = d.get(key)
    return v if isinstance(v, dict) else {}


def _summary(run: Path, color: str) -> str:
    cfg, info, results = read_config(run), read_run_info(run), read_results(run)
    test, data, model, train, data_cfg = (_section(results, "test"), _section(info, "data"), _section(cfg, "model"),
                                          _section(cfg, "train"), _section(cfg, "data"))
    timings = (run / "timings.jsonl")
    from mlpkit.app.runfiles import small_text

    times = []
    for line in (small_text(timings) or "").splitlines():
        try:
            times.append(float(json.loads(line)["time_s"]))
        except (ValueError, KeyError, TypeError):
            continue
    rows = [("status", run_status(run)), ("dataset", data.get("dataset") or data_cfg.get("dataset")),
            ("layers", json.dumps(model.get("layers"))), ("epochs, batch, lr",
                                                          f"{train.get('epochs')}, {train.get('batch_size')}, "
                                                          f"{train.get('lr')}"),
            ("test accuracy", f"{100 * test['accuracy']:.2f} %" if isinstance(test.get("accuracy"), float) else "—"),
            ("test loss", f"{test['loss']:.4f}" if isinstance(test.get("loss"), float) else "—"),
            ("wall time", f"{sum(times):.1f} s over {len(times)} epochs" if times else "—"),
            ("started", info.get("started") or "—")]
    cells = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return (f'<h3><span class="swatch" style="background:{color}"></span>{html.escape(run.name)}</h3>'
            f"<table>{cells}</table>")


def write_report(runs: list[str | Path], out: str | Path, source: Any = None) -> Path:
    """Write the report page for ``runs`` to ``out`` (atomically, never onto a file a run holds)."""
    from mlpkit.writer import atomic_write

    plt = require_matplotlib("mlpkit report")
    target = Path(out)
    if target.suffix.lower() not in (".html", ".htm") or not target.parent.is_dir():
        raise MlpkitError(f"-o {target}: give an .html file in an existing folder")
    paths = [Path(r) for r in runs]
    curves = learning_curves(list(runs))
    evaluations = [evaluate_for_report(p, source) for p in paths]
    loss_svg, grad_svg = _curves(curves, plt)
    colors = [RUN_COLORS[k % len(RUN_COLORS)] for k in range(len(paths))]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f'<meta name=viewport content="width=device-width,initial-scale=1">'
             f"<title>mlpkit report: {html.escape(', '.join(p.name for p in paths))}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>mlpkit report: {html.escape(', '.join(p.name for p in paths))}</h1>",
             f"<p>Made {html.escape(time.strftime('%Y-%m-%d %H:%M'))} on {html.escape(platform.node() or '?')} "
             f"({html.escape(platform.platform(terse=True))}, Python {html.escape(platform.python_version())}).</p>",
             "<h2>Summary</h2>", *(_summary(p, c) for p, c in zip(paths, colors)),
             "<h2>Learning curves</h2>", loss_svg,
             "<p>Colour: run. Solid: training loss as trained (with dropout, where the model has it); dashed: the "
             "training set in inference mode (dropout off); dotted: validation.</p>",
             "<h2>Gradient norms</h2>", grad_svg,
             *(["<h2>Dropout: training versus inference</h2>", _dropout_svg(evaluations, plt),
                 "<p>In training mode each unit is dropped with probability p and survivors are scaled by "
                 "1/(1 − p), so the mean output matches inference mode, where dropout is the identity.</p>"]
               if any(ev.dropout is not None for ev in evaluations) else []),
             "<h2>Confusion matrix and per-class accuracy</h2>"]
    for ev in evaluations:
        parts.append(_confusion_svg(ev, plt))
        cells = "".join(f"<tr><td>{html.escape(n)}</td><td>{100 * a:.1f} %</td></tr>"
                        for n, a in zip(ev.class_names, ev.per_class_accuracy))
        parts.append(f"<table><tr><th>class</th><th>accuracy</th></tr>{cells}</table>")
    parts.append("<h2>Most confidently wrong test images</h2>")
    for ev in evaluations:
        figs = "".join(f'<figure><img src="{m.png}" alt="test image {m.index}"><figcaption>true '
                       f"{html.escape(m.true)}, said {html.escape(m.predicted)} ({100 * m.probability:.1f} %)"
                       "</figcaption></figure>" for m in ev.mistakes if m.png)
        parts.append(f"<h3>{html.escape(ev.name)}</h3><div class=gallery>{figs or '<p>no mistakes</p>'}</div>")
    parts.append("</body></html>\n")
    inputs = [p / name for p in paths for name in ("metrics.jsonl", "config.yaml", "run.json", "model.npz")]
    try:
        atomic_write(target, "".join(parts), inputs)
    except OSError as e:
        raise OutputError(f"-o {target}: cannot be written ({e.strerror or e})") from None
    return target
