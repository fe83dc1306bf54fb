"""Keras model with LSTM / GRU layers -> a checked ONNX file tinylstm can import.

One public function, :func:`from_keras`. It wraps ``tf2onnx.convert.from_keras`` (opset 17)
and works around the converter's known traps with TensorFlow 2.21 (see docs/keras.md):

- a Keras 3 ``Sequential`` model makes tf2onnx 1.17 fail with ``KeyError: 'keras_tensor_N'``:
  it is wrapped in an equivalent functional model first;
- ``unroll=True`` makes tf2onnx write the unrolled step arithmetic (no LSTM / GRU node),
  ``recurrent_dropout > 0`` a ``Loop`` and ``dropout > 0`` a ``Mul`` by a tensor of ones in
  front of the node: none of these change inference, so a copy of the model with
  ``unroll=False, dropout=0, recurrent_dropout=0`` and the same weights is converted;
- a tf_keras GRU other than the fused one (``reset_after=False``, ``use_bias=False``, other
  activations) becomes a ``Loop``: it is converted as its fused twin and the ONNX GRU node
  then gets the layer's own attributes (:mod:`.keras_gru`);
- what has no faithful fused export is refused up front with the layer named (SimpleRNN /
  ConvLSTM, other cells, ``Masking`` / ``mask_zero``, ``stateful=True``, Keras 3 GRUs):
  :mod:`.keras_layers`;
- after conversion, the file must hold one ONNX ``LSTM`` / ``GRU`` node per Keras layer, and
  with ``check`` onnxruntime must reproduce the original Keras model at the example shape, at
  another sequence length and at another batch size.

TensorFlow and tf2onnx are imported lazily (``tinylstm.export`` imports without them). The
file is written beside ``path`` under a temporary name and renamed into place only after the
checks pass.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tinylstm.errors import DataError, OutputPathError, UnsupportedModelError

from .checks import ExportError, MissingDependencyError, check_destination, compare_outputs, ort_session, quiet
from .keras_gru import patch_nodes
from .keras_layers import Plan, equivalent_model, plan_layers

__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "from_keras"]

DEFAULT_OPSET = 17
INPUT_NAME = "input"

_INSTALL_HINT = (
    "pip install tensorflow-cpu==2.21.0 tf2onnx && pip install --no-deps tf_keras "
    "(then export TF_USE_LEGACY_KERAS=1 before importing TensorFlow to build tf_keras models)"
)


def from_keras(
    model: Any,
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = 1e-5,
    example_input: np.ndarray | None = None,
) -> Path:
    """Convert a Keras model with LSTM / GRU layers to ONNX at ``path`` and check it against Keras.

    ``model`` is a ``tf_keras`` (Keras 2, ``TF_USE_LEGACY_KERAS=1``) or Keras 3 model
    (functional, ``Sequential`` or nested) with one float input ``(batch, time, features)``;
    ``features`` must be known, ``batch`` and ``time`` stay dynamic unless the model's
    ``Input`` fixes them. The ONNX input is named ``input``, the outputs ``output`` (or
    ``output0``, ``output1``, ... when the model has several).

    ``example_input`` (``(batch, time, features)`` float) is the input of the check; by
    default a seeded standard-normal batch of 2 sequences of length 6. With ``check`` the
    file is run by onnxruntime on it, at another sequence length and at another batch size
    (each only when that axis is dynamic); every output must be within ``atol`` of Keras's.

    GRU layers: tf_keras ``GRU`` with either ``reset_after`` (ONNX ``linear_before_reset`` 1 / 0),
    with or without bias, and activations ONNX's GRU has (sigmoid, tanh, relu, hard_sigmoid,
    linear, elu, softsign, softplus); Keras 3 GRUs are refused (tf2onnx writes a Loop).

    Returns the path written. Raises :class:`UnsupportedModelError` (no LSTM or GRU layer, other
    recurrent layers, masking, stateful layers, Keras 3 GRUs, several inputs), :class:`DataError`
    (example input), :class:`OutputPathError`, :class:`ExportError` (conversion or check
    failed) and :class:`MissingDependencyError` (no TensorFlow / tf2onnx). Nothing is
    written on failure.
    """
    tf, tf2onnx = _import_tensorflow()
    keras = _keras_module_of(model)
    plan = plan_layers(model, keras3=keras.__name__ == "keras")
    dest = check_destination(Path(path))
    batch, time, features = _input_shape(model)
    x = _check_example(example_input, batch, time, features)

    converted = model
    if plan.rebuild:
        converted = equivalent_model(keras, model, plan)
    if keras.__name__ == "keras" and type(converted).__name__ == "Sequential":
        converted = _as_functional(keras, converted, batch, time, features)

    spec = (tf.TensorSpec((batch, time, features), tf.float32, name=INPUT_NAME),)
    try:
        with quiet("tf2onnx", "tensorflow", "absl"):
            proto, _ = tf2onnx.convert.from_keras(converted, input_signature=spec, opset=opset)
    except Exception as e:
        raise ExportError(
            f"tf2onnx.convert.from_keras (opset {opset}) failed: {type(e).__name__}: "
            f"{_first_line(e)}{_keras3_hint(keras)}"
        ) from e
    _rename_outputs(proto)
    _check_rnn_nodes(proto, plan)
    patch_nodes(proto, list(plan.variants))

    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        tmp = tmp_dir / dest.name  # an ordinary file: the user's umask decides its mode
        tmp.write_bytes(proto.SerializeToString())
        if check:
            _check_export(model, tmp, x, batch is None, time is None, atol, opset)
        try:
            os.replace(tmp, dest)
        except OSError as e:
            raise OutputPathError(f"{dest}: cannot write ({e.strerror})") from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return dest


# --------------------------------------------------------------------------------------
# Dependencies
# --------------------------------------------------------------------------------------
def _import_tensorflow() -> tuple[Any, Any]:
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependencyError(
            f"from_keras needs TensorFlow and tf2onnx; TensorFlow is not installed: {_INSTALL_HINT}"
        ) from None
    try:
        import tf2onnx
    except ImportError:
        raise MissingDependencyError(
            f"from_keras needs tf2onnx, which is not installed: pip install tf2onnx ({_INSTALL_HINT})"
        ) from None
    return tf, tf2onnx


def _keras_module_of(model: Any) -> Any:
    """The Keras package the model was built with: ``tf_keras`` (Keras 2) or ``keras`` (3)."""
    modules = [c.__module__ for c in type(model).__mro__]
    if any(m.split(".")[0] == "tf_keras" for m in modules):
        import tf_keras

        return tf_keras
    if any(m.split(".")[0] == "keras" for m in modules):
        import keras

        return keras
    raise UnsupportedModelError(
        f"expected a Keras model (tf_keras or Keras 3), got {type(model).__module__}."
        f"{type(model).__name__}",
        field="model",
    )


# --------------------------------------------------------------------------------------
# The model's input
# --------------------------------------------------------------------------------------
def _input_shape(model: Any) -> tuple[int | None, int | None, int]:
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError):
        inputs = []
    if not inputs:
        raise UnsupportedModelError(
            "the model has no defined input; give it a keras.Input((time, features)) "
            "(or call it once on data) before exporting",
            field="model input",
        )
    if len(inputs) != 1:
        raise UnsupportedModelError(
            f"the model has {len(inputs)} inputs; tinylstm models take one input "
            "(batch, time, features)",
            field="model input",
        )
    shape = tuple(None if d is None else int(d) for d in tuple(inputs[0].shape))
    dtype = str(getattr(inputs[0].dtype, "name", inputs[0].dtype))
    if len(shape) != 3 or shape[2] is None or "float" not in dtype:
        raise UnsupportedModelError(
            f"the model input has shape {shape} and dtype {dtype}; tinylstm models take one "
            "float input (batch, time, features) with a known number of features",
            field="model input",
        )
    return shape[0], shape[1], int(shape[2])


def _check_example(x: Any, batch: int | None, time: int | None, features: int) -> np.ndarray:
    want = f"({batch or 'batch'}, {time or 'time'}, {features})"
    if x is None:
        rng = np.random.default_rng(0)
        return rng.standard_normal((batch or 2, time or 6, features)).astype(np.float32)
    try:
        arr = np.asarray(x)
    except Exception as e:
        raise DataError(f"example_input must be an array {want}: {_first_line(e)}") from None
    if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"example_input must be a 3-D float array {want}, got shape {arr.shape} of {arr.dtype}")
    if arr.size == 0:
        raise DataError(f"example_input is empty: shape {arr.shape}")
    for axis, (size, fixed) in enumerate(zip(arr.shape, (batch, time, features), strict=True)):
        if fixed is not None and size != fixed:
            raise DataError(f"example_input has shape {arr.shape}; the model takes {want} (axis {axis})")
    if not np.all(np.isfinite(arr)):
        raise DataError("example_input holds NaN or infinite values")
    return arr.astype(np.float32)


# --------------------------------------------------------------------------------------
# Model surgery before converting (inference unchanged; the rest in keras_layers.py)
# --------------------------------------------------------------------------------------
def _as_functional(keras: Any, model: Any, batch: int | None, time: int | None, features: int) -> Any:
    """Keras 3 ``Sequential`` -> the same layers in a functional model (tf2onnx 1.17 fails
    on Keras 3 Sequential models with a KeyError)."""
    inp = keras.Input(shape=(time, features), batch_size=batch, name=INPUT_NAME)
    return keras.Model(inp, model(inp))


# --------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------
def _rename_outputs(proto: Any) -> None:
    """Graph outputs -> ``output`` (or ``output0``, ``output1``, ...)."""
    outs = proto.graph.output
    names = ["output"] if len(outs) == 1 else [f"output{k}" for k in range(len(outs))]
    mapping = {o.name: n for o, n in zip(outs, names, strict=True) if o.name != n}
    taken = {v for node in proto.graph.node for v in node.output} | {i.name for i in proto.graph.input}
    if not mapping or taken & set(mapping.values()):
        return
    for node in proto.graph.node:
        for seq in (node.input, node.output):
            for k, v in enumerate(seq):
                if v in mapping:
                    seq[k] = mapping[v]
    for o in outs:
        o.name = mapping.get(o.name, o.name)


def _check_rnn_nodes(proto: Any, plan: Plan) -> None:
    ops = [n.op_type for n in proto.graph.node]
    for op, expected in (("LSTM", plan.lstm), ("GRU", plan.gru)):
        found = ops.count(op)
        if found != expected:
            others = sorted({o for o in ops if o in ("Loop", "Scan", "If")})
            how = f" (it wrote {', '.join(others)} instead)" if others else ""
            raise ExportError(
                f"tf2onnx wrote {found} {op} node(s) for {expected} Keras {op} layer(s){how}; "
                f"tinylstm needs one fused ONNX {op} per layer. Use the standard {op} layer "
                "(no masking, unroll=False)"
            )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "(no message)"


def _keras3_hint(keras: Any) -> str:
    if keras.__name__ == "keras":
        return (
            "; tf2onnx converts tf_keras models most reliably: pip install --no-deps tf_keras, "
            "set TF_USE_LEGACY_KERAS=1 and build the model with tf_keras"
        )
    return ""


# --------------------------------------------------------------------------------------
# The onnxruntime check
# --------------------------------------------------------------------------------------
def _keras_outputs(model: Any, x: np.ndarray) -> list[np.ndarray]:
    out = model(x, training=False)
    if isinstance(out, dict):
        out = list(out.values())
    if not isinstance(out, (list, tuple)):
        out = [out]
    return [np.asarray(o) for o in out]


def _check_export(model: Any, onnx_path: Path, x: np.ndarray, dynamic_batch: bool,
                  dynamic_time: bool, atol: float, opset: int) -> None:
    sess = ort_session(onnx_path, "tf2onnx")
    batch, time = x.shape[0], x.shape[1]
    other_t = time + max(2, time // 2) if dynamic_time else time
    cases = [("the example shape", x)]
    if dynamic_time:
        cases.append((f"sequence length {other_t} (example: {time})", _like(x, batch, other_t, seed=1)))
    if dynamic_batch:
        cases.append((f"batch size {batch + 1} (example: {batch})", _like(x, batch + 1, other_t, seed=2)))
    label = f"tf2onnx, opset {opset}"
    for what, xc in cases:
        want = _keras_outputs(model, xc)
        try:
            got = sess.run(None, {INPUT_NAME: xc})
        except Exception as e:
            raise ExportError(
                f"tf2onnx wrote a model that onnxruntime cannot run at {what}: {_first_line(e)}"
            ) from e
        compare_outputs(want, got, what, atol, label, "Keras")


def _like(x: np.ndarray, batch: int, time: int, seed: int) -> np.ndarray:
    """A seeded input of another shape with the example's per-feature mean and spread."""
    rng = np.random.default_rng(seed)
    flat = x.reshape(-1, x.shape[2]).astype(np.float64)
    mean = flat.mean(0)
    std = flat.std(0) if flat.shape[0] > 1 else np.ones_like(mean)
    std = np.where(std > 0, std, 1.0)
    z = rng.standard_normal((batch, time, x.shape[2]))
    return (z * std + mean).astype(np.float32)
