"""A trained model for other runtimes: ONNX (the inference graph) and safetensors (PyTorch names).

ONNX (opset 17): the input ``pixels`` is float32 (N, D) in the dataset's stored
units (0..255 for MNIST-style images, 0..16 for the embedded digits), so raw
pixels go in; the graph applies the run's input scaling and normalization, then
each Linear as a ``Gemm``, each activation as ``Sigmoid``/``Relu``/``Tanh``
(Dropout is the identity at inference and is left out), and ends with two
outputs: ``logits`` (N, C) and ``probabilities`` (N, C), a ``Softmax`` over
classes.

safetensors: the weights under the names ``torch.nn.Sequential`` gives the same
stack — ``{i}.weight`` as (out, in), PyTorch's layout, and ``{i}.bias`` — with
the architecture and the input scaling in the metadata (see the README for the
few lines that rebuild the ``nn.Sequential``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.app.runfiles import CHECKPOINTS, input_record, load_weights
from mlpkit.errors import ConfigError, MlpkitError
from mlpkit.nn.layers import Linear, kind_of
from mlpkit.writer import atomic_write, check_destination

OPSET = 17
EXTRA_HINT = "pip install 'mlpkit[export]'"


class ExportError(MlpkitError):
    """The export cannot be made (a missing package, an unwritable file)."""


def _need(module: str, fmt: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"--format {fmt} needs the {module.split('.')[0]} package; install it with {EXTRA_HINT}") \
            from None


def architecture(model: Any) -> list[dict]:
    """The stack as plain data: what ``torch.nn.Sequential`` needs to rebuild it."""
    out = []
    for layer in model.layers:
        role = kind_of(layer).role
        if role == "linear":
            out.append({"type": "Linear", "in_features": layer.in_features,
                        "out_features": layer.params["W"].shape[1]})
        elif role == "dropout":
            out.append({"type": "Dropout", "p": layer.p})
        else:
            out.append({"type": type(layer).__name__})
    return out


def to_onnx(model: Any, record: dict, name: str = "mlpkit") -> bytes:
    """The inference graph as a checked ONNX model (``onnx.checker``)."""
    onnx = _need("onnx", "onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    d, c = model.in_features, None
    inits.append(numpy_helper.from_array(np.array([record["scale"]], np.float32), "input_scale"))
    inits.append(numpy_helper.from_array(np.array([record["shift"]], np.float32), "input_shift"))
    nodes.append(helper.make_node("Mul", ["pixels", "input_scale"], ["scaled"], name="input_scale"))
    nodes.append(helper.make_node("Add", ["scaled", "input_shift"], ["x0"], name="input_shift"))
    current = "x0"
    linears = [i for i, layer in enumerate(model.layers) if isinstance(layer, Linear)]
    for i, layer in enumerate(model.layers):
        out = "logits" if i == linears[-1] else f"x{i + 1}"
        if isinstance(layer, Linear):
            W = np.ascontiguousarray(layer.params["W"], dtype=np.float32)  # (D, C): Gemm without transposing
            inits.append(numpy_helper.from_array(W, f"layers.{i}.W"))
            inits.append(numpy_helper.from_array(np.asarray(layer.params["b"], np.float32), f"layers.{i}.b"))
            nodes.append(helper.make_node("Gemm", [current, f"layers.{i}.W", f"layers.{i}.b"], [out],
                                          name=f"layers.{i}"))
            c = W.shape[1]
        else:
            op = kind_of(layer).onnx_op
            if op is None:
                continue  # the identity at inference (Dropout)
            nodes.append(helper.make_node(op, [current], [out], name=f"layers.{i}"))
        current = out
        if i == linears[-1]:
            break
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"))
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", c]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", c])], inits)
    m = helper.make_model(graph, producer_name="mlpkit", opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8  # readable by onnxruntime releases since 1.14
    meta = {"class_names": json.dumps(record.get("class_names") or []),
            "input": f"float32 pixels in the dataset's stored units (0..{_number(record.get('pixel_max', 255))}), "
                     "flattened row by row"}
    helper.set_model_props(m, meta)
    onnx.checker.check_model(m, full_check=True)
    return m.SerializeToString()


def to_safetensors(model: Any, record: dict) -> bytes:
    """The weights under ``torch.nn.Sequential`` names, (out, in) layout, architecture in the metadata."""
    st = _need("safetensors.numpy", "safetensors")
    tensors = {}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Linear):
            tensors[f"{i}.weight"] = np.ascontiguousarray(layer.params["W"].T, dtype=np.float32)  # (out, in)
            tensors[f"{i}.bias"] = np.ascontiguousarray(layer.params["b"], dtype=np.float32)
    meta = {"format": "mlpkit", "architecture": json.dumps(architecture(model)),
            "input_scale": repr(float(record["scale"])), "input_shift": repr(float(record["shift"])),
            "class_names": json.dumps(record.get("class_names") or [])}
    return st.save(tensors, metadata=meta)


def export(model: Any, record: dict, fmt: str, path: str | Path, inputs: tuple[Path, ...] = ()) -> Path:
    """Write the model to ``path``: a new name or a regular file, never one of ``inputs`` (the weights read)."""
    p = Path(path)
    if not p.parent.is_dir():
        raise ExportError(f"-o {p}: the folder {p.parent} does not exist")
    try:
        check_destination(p, inputs)  # before the work: a bad -o is refused at once
        data = to_onnx(model, record) if fmt == "onnx" else to_safetensors(model, record)
        atomic_write(p, data, inputs)
    except OSError as e:
        raise ExportError(f"-o {p}: cannot be written ({e.strerror or e})") from None
    return p


@dataclass(frozen=True)
class Exported:
    run: str
    format: str
    file: str
    bytes: int
    layers: list[dict]


def export_run(run: str | Path, fmt: str, out: str | Path | None = None) -> Exported:
    """Write a run's model as ONNX or safetensors."""
    if fmt not in ("onnx", "safetensors"):
        raise ConfigError(f"--format {fmt[:40]!r}: expected onnx or safetensors")
    saved = load_weights(run)
    rec = input_record(saved)
    target = Path(out) if out is not None else saved.path.with_suffix(".onnx" if fmt == "onnx" else ".safetensors")
    run_dir = Path(run) if Path(run).is_dir() else None
    run_files = [f for d in (run_dir, run_dir / CHECKPOINTS) if d.is_dir() for f in d.iterdir()] if run_dir else []
    p = export(saved.model, rec, fmt, target, inputs=(saved.path, *run_files))  # never over the run it exports
    return Exported(str(saved.path), fmt, str(p), p.stat().st_size, architecture(saved.model))


def _number(v: object) -> str:
    """255.0 as 255, 16.0 as 16: the metadata is read by people."""
    return f"{v:g}" if isinstance(v, float) else str(v)
