"""Which Keras layers ``from_keras`` converts, and the equivalent model it hands tf2onnx.

:func:`plan_layers` walks the model (nested models included) before anything is converted:
it refuses what has no faithful fused export (SimpleRNN / ConvLSTM, cells other than
LSTMCell, ``Masking`` / ``mask_zero``, ``stateful=True``, Keras 3 GRUs), counts the ONNX
``LSTM`` and ``GRU`` nodes the file must hold, and lists the layers that are converted as an
equivalent copy: training-only options off (``unroll``, ``dropout``, ``recurrent_dropout``
make tf2onnx write unrolled ops, a ``Loop`` or a ``Mul`` by ones; none changes inference) and
GRU variants as their fused twin (:mod:`.keras_gru`). :func:`equivalent_model` builds that
copy with the same weights.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tinylstm.errors import UnsupportedModelError

from .keras_gru import FUSED, GruVariant, fused_config, fused_weights, is_gru, variant_of

#: Recurrent layers ONNX's LSTM / GRU cannot express (class names, Keras 2 and Keras 3).
OTHER_RNNS = ("SimpleRNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "CuDNNGRU")
#: Layer options that do not change inference but make tf2onnx write no LSTM / GRU node.
TRAINING_ONLY = {"unroll": False, "dropout": 0.0, "recurrent_dropout": 0.0}


@dataclass(frozen=True)
class Plan:
    """What the conversion of one model must give, and which layers it converts as a copy."""

    lstm: int  # ONNX LSTM nodes expected (a Bidirectional counts once)
    gru: int  # ONNX GRU nodes expected
    rebuild: frozenset[str]  # names of the layers converted as an equivalent copy
    variants: tuple[GruVariant, ...]  # GRU layers converted as their fused twin, patched after
    fused: frozenset[str]  # names of those layers


def walk(layer: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every layer below ``layer`` (nested models included) with a readable path."""
    for sub in getattr(layer, "layers", []) or []:
        name = f"{prefix}{sub.name}"
        yield name, sub
        yield from walk(sub, name + "/")


def _rnn_options(layer: Any) -> dict[str, Any]:
    """The options of a recurrent layer (or RNN over a cell) that matter to the export."""
    cell = getattr(layer, "cell", None)
    return {
        "unroll": bool(getattr(layer, "unroll", False)),
        "stateful": bool(getattr(layer, "stateful", False)),
        "dropout": float(getattr(cell, "dropout", getattr(layer, "dropout", 0.0)) or 0.0),
        "recurrent_dropout": float(
            getattr(cell, "recurrent_dropout", getattr(layer, "recurrent_dropout", 0.0)) or 0.0
        ),
    }


def is_lstm(layer: Any) -> bool:
    kind = type(layer).__name__
    if kind in ("LSTM", "CuDNNLSTM"):
        return True
    return kind == "RNN" and type(getattr(layer, "cell", None)).__name__ == "LSTMCell"


def _kind(layer: Any, name: str) -> str | None:
    """"LSTM", "GRU" or None (not recurrent) for a layer or a Bidirectional wrapper."""
    kind = type(layer).__name__
    if kind == "Bidirectional":
        pair = (layer.forward_layer, layer.backward_layer)
        for test, what in ((is_lstm, "LSTM"), (is_gru, "GRU")):
            if all(test(d) for d in pair):
                return what
        raise UnsupportedModelError(
            f"Bidirectional({type(layer.forward_layer).__name__}) is not supported; tinylstm handles "
            "LSTM and GRU layers",
            node=name, field="layer type",
        )
    if kind in OTHER_RNNS or (kind == "RNN" and not is_lstm(layer)):
        cell = type(getattr(layer, "cell", None)).__name__
        what = f"RNN({cell})" if kind == "RNN" else kind
        hint = (" (tf2onnx writes RNN(GRUCell) as a Loop: use keras.layers.GRU, same weights)"
                if cell == "GRUCell" else "")
        raise UnsupportedModelError(
            f"{what} layers are not supported; from_keras exports LSTM and GRU layers{hint}",
            node=name, field="layer type",
        )
    if kind == "Masking" or (kind == "Embedding" and getattr(layer, "mask_zero", False)):
        raise UnsupportedModelError(
            "masking makes tf2onnx write the recurrence as a Loop (no LSTM / GRU node); remove "
            "the mask and run sequences unpadded (rows of one length together) or give "
            "tinylstm their lengths",
            node=name, field="Masking" if kind == "Masking" else "mask_zero",
        )
    return "LSTM" if is_lstm(layer) else "GRU" if is_gru(layer) else None


def plan_layers(model: Any, keras3: bool) -> Plan:
    """Refuse what has no faithful fused export; say what the conversion must give."""
    counts = {"LSTM": 0, "GRU": 0}
    rebuild: set[str] = set()
    variants: list[GruVariant] = []
    fused: set[str] = set()
    for name, layer in walk(model):
        kind = _kind(layer, name)
        if kind is None:
            continue
        if kind == "GRU" and keras3:
            raise UnsupportedModelError(
                "tf2onnx 1.17 writes a Keras 3 GRU as a Loop (no GRU node); build the model in tf_keras "
                "(pip install --no-deps tf_keras, TF_USE_LEGACY_KERAS=1) and copy the weights",
                node=name, field="layer type",
            )
        counts[kind] += 1
        bidir = type(layer).__name__ == "Bidirectional"
        for direction in (layer.forward_layer, layer.backward_layer) if bidir else (layer,):
            opts = _rnn_options(direction)
            if opts["stateful"]:
                raise UnsupportedModelError(
                    "stateful=True would freeze the layer's current state into the file as its "
                    "initial state; rebuild the model with stateful=False and the same weights "
                    "(tinylstm's runtimes keep the state between calls themselves)",
                    node=name, field="stateful",
                )
            if opts["unroll"] or opts["dropout"] or opts["recurrent_dropout"]:
                rebuild.add(layer.name)
        variant = variant_of(layer, name) if kind == "GRU" else None
        if variant is not None:
            variants.append(variant)
            fused.add(layer.name)
            rebuild.add(layer.name)
    if not counts["LSTM"] and not counts["GRU"]:
        raise UnsupportedModelError(
            "the model has no LSTM or GRU layer; tinylstm exports and imports LSTM and GRU models",
            field="model",
        )
    return Plan(counts["LSTM"], counts["GRU"], frozenset(rebuild), tuple(variants), frozenset(fused))


# --------------------------------------------------------------------------------------
# The equivalent copy (inference unchanged)
# --------------------------------------------------------------------------------------
def _strip_training_options(config: Any) -> Any:
    """A copy of a layer config with unroll/dropout options off at every nesting level
    (LSTM / GRU, Bidirectional's layer and backward_layer, RNN's cell)."""
    if isinstance(config, dict):
        out = {k: _strip_training_options(v) for k, v in config.items()}
        for key, value in TRAINING_ONLY.items():
            if key in out:
                out[key] = value
        return out
    if isinstance(config, list):
        return [_strip_training_options(v) for v in config]
    return copy.deepcopy(config)


def _copy_weights(src: Any, dst: Any, fused: frozenset[str]) -> None:
    """``dst`` (the clone) gets ``src``'s weights, layer by layer; the layers in ``fused`` get
    their fused GRU twin's (kernel, recurrent kernel, bias (2, 3H))."""
    for layer in getattr(src, "layers", []) or []:
        twin = dst.get_layer(layer.name)
        if layer.name in fused:
            if type(layer).__name__ == "Bidirectional":
                twin.forward_layer.set_weights(fused_weights(layer.forward_layer))
                twin.backward_layer.set_weights(fused_weights(layer.backward_layer))
            else:
                twin.set_weights(fused_weights(layer))
        elif any(sub.name in fused for _, sub in walk(layer)):
            _copy_weights(layer, twin, fused)
        else:
            twin.set_weights(layer.get_weights())


def equivalent_model(keras: Any, model: Any, plan: Plan) -> Any:
    """A clone of ``model`` with the training-only options off in ``plan.rebuild`` and the GRU
    variants in ``plan.fused`` made fused GRUs, with the same (or the twin's) weights."""
    names = plan.rebuild

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name in names or any(sub.name in names for _, sub in walk(layer)):
            config = _strip_training_options(config)
        if layer.name in plan.fused and is_gru(layer):
            config = dict(config, **FUSED)
        elif layer.name in plan.fused or any(sub.name in plan.fused for _, sub in walk(layer)):
            config = fused_config(config)
        return layer.__class__.from_config(config)

    try:
        twin = keras.models.clone_model(model, clone_function=clone)
        _copy_weights(model, twin, plan.fused)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "(no message)"
        raise UnsupportedModelError(
            f"layers {', '.join(sorted(names))} use unroll=True, dropout or a GRU option tf2onnx "
            f"does not fuse, and the model cannot be cloned without them ({type(e).__name__}: {first}); "
            "rebuild it with unroll=False, dropout=0, recurrent_dropout=0 (GRU: reset_after=True, "
            "use_bias=True, tanh / sigmoid) and copy the weights (model.set_weights)",
            node=sorted(names)[0], field="unroll/dropout",
        ) from e
    return twin


__all__ = ["OTHER_RNNS", "TRAINING_ONLY", "Plan", "equivalent_model", "is_lstm", "plan_layers", "walk"]
