"""The same float LSTM in tf_keras, built from tinylstm's float IR (for the TFLite peers).

    .venv-peers/bin/python bench/peers/keras_twin.py MODEL.onnx    # build + float parity

:func:`build_twin` reads ``tinylstm.load_onnx(path)`` and rebuilds the network layer by layer:
tinylstm's gate rows are ordered i, f, g, o and Keras's kernel columns i, f, c, o (the same
order), so ``kernel = W.T``, ``recurrent_kernel = R.T`` and Keras's one bias is tinylstm's
folded bias ``Wb + Rb``. What a plain Keras LSTM (and so the TFLite converter) cannot express
raises :class:`NotExpressible` with the reason.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (sets TF_USE_LEGACY_KERAS before TensorFlow)

from tinylstm import ir  # noqa: E402

#: Keras spellings of the IR activations a Dense head may carry.
_HEAD_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Softmax": "softmax"}


class NotExpressible(Exception):  # noqa: N818 - a reason, not a failure of this script
    """The model uses something a Keras LSTM / the TFLite int8 LSTM kernel cannot express."""


@dataclass(frozen=True)
class Parity:
    """Float twin vs onnxruntime on the same inputs."""

    max_abs_diff: float
    sequences: int


def _check_lstm(node: ir.LstmNode) -> None:
    if node.num_directions != 1 or node.directions[0].reverse:
        raise NotExpressible(
            f"{node.name}: {node.direction} LSTM (TFLM has no bidirectional or reverse LSTM op; "
            "the converter would need two unidirectional LSTMs and REVERSE_V2 ops)")
    d = node.directions[0]
    if d.p is not None:
        raise NotExpressible(f"{node.name}: peepholes (Keras's LSTM has none; TFLM rejects them)")
    if node.clip is not None:
        raise NotExpressible(f"{node.name}: cell clip {node.clip:g} (TFLite's converter fixes its own clip)")
    if node.input_forget:
        raise NotExpressible(f"{node.name}: input_forget (coupled gates; TFLM rejects them)")
    if [a.name for a in d.activations] != ["Sigmoid", "Tanh", "Tanh"] or any(
            a.alpha is not None or a.beta is not None for a in d.activations):
        acts = ", ".join(str(a) for a in d.activations)
        raise NotExpressible(f"{node.name}: activations {acts} (the int8 LSTM kernel has sigmoid/tanh only)")
    if np.any(d.initial_h) or np.any(d.initial_c):
        raise NotExpressible(f"{node.name}: nonzero initial state")
    if node.sequence_lens is not None or node.sequence_lens_is_input:
        raise NotExpressible(f"{node.name}: sequence_lens (run sequences unpadded instead)")


def plan(model: ir.FloatModel) -> list[tuple[str, Any]]:
    """The Keras layer list for ``model``: ("lstm", (node, return_sequences)), ("dense",
    (node, activation)). Raises :class:`NotExpressible`."""
    nodes = model.nodes
    layers: list[tuple[str, Any]] = []
    k = 1
    while k < len(nodes):
        node = nodes[k]
        if getattr(node, "src", None) != k - 1:
            raise NotExpressible(f"{node.name}: not a plain chain of layers")
        if isinstance(node, ir.LstmNode):
            _check_lstm(node)
            layers.append(("lstm", [node, True]))
        elif isinstance(node, (ir.SelectStepNode, ir.LstmStateNode)):
            last = layers[-1] if layers else None
            is_last_h = (isinstance(node, ir.SelectStepNode) and node.index == -1) or (
                isinstance(node, ir.LstmStateNode) and node.which == "h" and node.src == k - 1)
            if last is None or last[0] != "lstm" or not is_last_h:
                raise NotExpressible(f"{node.name}: only the last step's h of an LSTM can be read")
            last[1][1] = False  # return_sequences=False
        elif isinstance(node, ir.FeatureGatherNode):
            if not np.array_equal(node.indices, np.arange(node.indices.size)):
                raise NotExpressible(f"{node.name}: feature reordering")
        elif isinstance(node, ir.DenseNode):
            layers.append(("dense", [node, None]))
        elif isinstance(node, ir.ActivationNode):
            name = node.activation.name
            if not layers or layers[-1][0] != "dense" or layers[-1][1][1] is not None or name not in _HEAD_ACTIVATIONS:
                raise NotExpressible(f"{node.name}: activation {node.activation} outside a Dense head")
            layers[-1][1][1] = _HEAD_ACTIVATIONS[name]
        else:
            raise NotExpressible(f"{node.name}: {type(node).__name__}")
        k += 1
    if not any(kind == "lstm" for kind, _ in layers):
        raise NotExpressible("no LSTM layer")
    return layers


def build_twin(model: ir.FloatModel, batch: int | None = 1, time: int | None = None) -> Any:
    """A tf_keras model computing ``model`` on (batch, time, features) inputs.

    ``batch=1`` is what the TFLite converter needs for a fused int8 LSTM; ``time=None`` keeps
    the length dynamic (the converter stores shape signature ``[1, -1, F]``).
    """
    import tf_keras as keras

    layers = plan(model)
    inp = keras.Input(batch_shape=(batch, time, model.input_features), name="input")
    h = inp
    weights: list[np.ndarray] = []
    for kind, (node, extra) in layers:
        if kind == "lstm":
            d = node.directions[0]
            h = keras.layers.LSTM(node.hidden_size, return_sequences=extra, name=_safe(node.name))(h)
            weights += [d.w.T, d.r.T, d.b]  # gate order i, f, g(c), o on both sides
        else:
            h = keras.layers.Dense(node.features, activation=extra, name=_safe(node.name))(h)
            weights += [node.weight.T, node.bias]
    twin = keras.Model(inp, h)
    twin.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return twin


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name).strip("_") or "layer"


def float_parity(onnx_path: Path, model: ir.FloatModel, twin: Any, seqs: list[np.ndarray]) -> Parity:
    """max |Keras twin - onnxruntime| over ``seqs`` (each canonical (1, L, F))."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    run = common.in_onnx_layout(model, lambda x: sess.run(None, {name: x})[0])
    worst = 0.0
    for x in seqs:
        want = run(x)
        got = np.asarray(twin(x, training=False))
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want))))
    return Parity(worst, len(seqs))


def main(argv: list[str] | None = None) -> int:
    import tinylstm

    ap = argparse.ArgumentParser(description="Build the tf_keras twin of an ONNX LSTM; check float parity.")
    ap.add_argument("onnx", type=Path)
    ap.add_argument("--sequences", type=int, default=20)
    ap.add_argument("--length", type=int, default=50)
    args = ap.parse_args(argv)
    model = tinylstm.load_onnx(args.onnx)
    try:
        twin = build_twin(model, batch=None)
    except NotExpressible as e:
        print(f"not expressible in Keras/TFLite: {e}")
        return 1
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((1, args.length, model.input_features)).astype(np.float32)
            for _ in range(args.sequences)]
    p = float_parity(args.onnx, model, twin, seqs)
    print(f"{args.onnx.name}: Keras twin vs onnxruntime max |diff| {p.max_abs_diff:.3g} "
          f"over {p.sequences} sequences of length {args.length}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
