"""TensorBoard scalars of a run (``train.tensorboard: true``; ``pip install 'mlpkit[tensorboard]'``).

The event file is built in memory from the whole history with TensorBoard's own record and protobuf classes,
and written through ``mlpkit.writer`` (atomically, like every run file) as ``events.out.tfevents.mlpkit``
after each epoch: a resumed run rewrites it whole, so it never holds an epoch twice. ``tensorboard --logdir
runs`` shows every run's curves. Wall times are the epoch numbers, so two runs of one seed write the same
bytes (the real times are in timings.jsonl).
"""

from __future__ import annotations

import io
from typing import Any

from mlpkit.errors import ConfigError

EVENTS_NAME = "events.out.tfevents.mlpkit"  # TensorBoard reads any file whose name holds "tfevents"
INSTALL_HINT = "pip install 'mlpkit[tensorboard]' (or pip install tensorboard)"
SCALARS = (("train_loss", "loss/train_as_trained"), ("train_eval_loss", "loss/train_inference"),
           ("val_loss", "loss/validation"), ("train_eval_acc", "accuracy/train_inference"),
           ("val_acc", "accuracy/validation"), ("lr", "learning_rate"))


def require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError(f"train.tensorboard: needs the tensorboard package, which is not installed; install it "
                          f"with {INSTALL_HINT}") from None


def events_bytes(history: list[Any]) -> bytes:
    """An event file of the history's scalars: losses, accuracies, the learning rate, each layer's ‖dW‖."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    buf = io.BytesIO()
    records = RecordWriter(buf)
    records.write(event_pb2.Event(wall_time=0.0, file_version="brain.Event:2").SerializeToString())
    for m in history:
        values = []
        for key, tag in SCALARS:
            v = getattr(m, key, None)
            if isinstance(v, (int, float)):
                values.append(summary_pb2.Summary.Value(tag=tag, simple_value=float(v)))
        for name, v in sorted((getattr(m, "grad_norms", None) or {}).items()):
            if isinstance(v, (int, float)):
                values.append(summary_pb2.Summary.Value(tag=f"grad_norm/{name}", simple_value=float(v)))
        event = event_pb2.Event(wall_time=float(m.epoch), step=int(m.epoch), summary=summary_pb2.Summary(value=values))
        records.write(event.SerializeToString())
    return buf.getvalue()
