"""Keras GRU layers the fused tf2onnx path does not cover, as a fused twin plus a patched ONNX node.

tf2onnx 1.17 writes one ONNX ``GRU`` node only for the tf_keras GRU that TensorFlow runs as its
fused (cuDNN-compatible) function: ``reset_after=True``, ``use_bias=True``, ``activation="tanh"``,
``recurrent_activation="sigmoid"`` (and no ``recurrent_dropout`` / ``unroll``, handled with the
LSTM's training-only options). Every other tf_keras GRU becomes a ``Loop`` that tinylstm cannot
import, although the ONNX GRU expresses it exactly:

- ``reset_after=False`` is ONNX ``linear_before_reset=0``; its single bias ``(3H,)`` is ONNX's
  ``Wb`` (``Rb`` zero);
- ``use_bias=False`` is a zero bias;
- other activations are ONNX ``activations`` (with ``activation_alpha`` / ``activation_beta``).

So such a layer is converted as its fused twin (``reset_after=True``, bias ``[Wb; 0]`` or zeros,
tanh / sigmoid, same kernels) and the twin's GRU node, found by its weights, gets the layer's own
attributes afterwards. from_keras then checks the patched file against the *original* model with
onnxruntime, so a wrong patch cannot go unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinylstm.errors import UnsupportedModelError

from .checks import ExportError

#: Keras activation name -> (ONNX name, alpha, beta) for the ONNX GRU's ``activations``.
#: hard_sigmoid is tf_keras 2's clip(0.2 x + 0.5, 0, 1); linear is Affine(1, 0).
ACTIVATIONS: dict[str, tuple[str, float | None, float | None]] = {
    "sigmoid": ("Sigmoid", None, None),
    "tanh": ("Tanh", None, None),
    "relu": ("Relu", None, None),
    "hard_sigmoid": ("HardSigmoid", 0.2, 0.5),
    "linear": ("Affine", 1.0, 0.0),
    "elu": ("Elu", 1.0, None),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
}
#: the config of the GRU tf2onnx fuses into one GRU node
FUSED = {"reset_after": True, "use_bias": True, "activation": "tanh", "recurrent_activation": "sigmoid"}


@dataclass(frozen=True)
class GruVariant:
    """A GRU layer (or a Bidirectional's pair) converted as its fused twin, then patched."""

    name: str  # the Keras layer (the Bidirectional wrapper for a pair)
    kernels: tuple[np.ndarray, ...]  # (I, 3H) kernel per direction, forward first: finds the node
    reset_after: bool
    activations: tuple[tuple[str, float | None, float | None], ...]  # (f, g) per direction, ONNX spelling


def is_gru(layer: Any) -> bool:
    return type(layer).__name__ == "GRU"


def _activation_name(config: dict[str, Any], key: str, name: str) -> str:
    value = config.get(key)
    if isinstance(value, dict):  # Keras 3 style serialization
        value = value.get("config", value.get("class_name"))
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise UnsupportedModelError(
            f"GRU {key}={value!r} has no ONNX GRU equivalent; supported: {', '.join(ACTIVATIONS)}",
            node=name, field=key,
        )
    return value


def variant_of(layer: Any, name: str) -> GruVariant | None:
    """The patch a GRU layer (or a Bidirectional over GRUs) needs, None when tf2onnx fuses it as it is."""
    directions = (layer.forward_layer, layer.backward_layer) if type(layer).__name__ == "Bidirectional" else (layer,)
    configs = [d.get_config() for d in directions]
    if all(all(c.get(k) == v for k, v in FUSED.items()) for c in configs):
        return None
    acts = tuple(
        tuple(ACTIVATIONS[_activation_name(c, k, name)] for k in ("recurrent_activation", "activation"))
        for c in configs
    )
    if len({bool(c.get("reset_after", True)) for c in configs}) != 1:
        raise UnsupportedModelError("the two directions disagree on reset_after", node=name, field="reset_after")
    kernels = tuple(np.asarray(d.get_weights()[0]) for d in directions)
    return GruVariant(name, kernels, bool(configs[0].get("reset_after", True)), acts)  # type: ignore[arg-type]


def fused_config(config: Any) -> Any:
    """A copy of a layer config with every GRU in it (nested: Bidirectional, models) made the fused GRU."""
    if isinstance(config, list):
        return [fused_config(v) for v in config]
    if not isinstance(config, dict):
        return config
    out = {k: fused_config(v) for k, v in config.items()}
    if out.get("class_name") == "GRU" and isinstance(out.get("config"), dict):
        out["config"] = dict(out["config"], **FUSED)
    return out


def fused_weights(layer: Any) -> list[np.ndarray]:
    """The weights of the fused twin of a GRU layer: kernel, recurrent kernel, bias ``(2, 3H)``
    (``[input bias; recurrent bias]``: a reset_after=False bias is the input half, the recurrent
    half zero; no bias: zeros)."""
    weights = layer.get_weights()
    kernel, recurrent = weights[0], weights[1]
    bias = np.zeros((2, kernel.shape[1]), dtype=kernel.dtype)
    if len(weights) > 2:
        b = np.asarray(weights[2])
        if b.ndim == 1:
            bias[0] = b
        else:
            bias[:] = b
    return [kernel, recurrent, bias]


def patch_nodes(proto: Any, variants: list[GruVariant]) -> None:
    """Give each variant's GRU node (found by its W = kernel.T per direction) the layer's own
    ``linear_before_reset`` and activations."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in proto.graph.initializer}
    nodes = [n for n in proto.graph.node if n.op_type == "GRU"]
    used: set[int] = set()
    for v in variants:
        want = np.stack([k.T for k in v.kernels])
        match = [k for k, n in enumerate(nodes) if k not in used and len(n.input) > 1 and n.input[1] in inits
                 and _same(numpy_helper.to_array(inits[n.input[1]]), want)]
        if not match:
            raise ExportError(f"tf2onnx wrote no GRU node with the weights of layer '{v.name}'; "
                              "cannot set its reset_after / activations")
        used.add(match[0])
        node = nodes[match[0]]
        keep = [a for a in node.attribute if a.name not in
                ("activations", "activation_alpha", "activation_beta", "linear_before_reset")]
        del node.attribute[:]
        node.attribute.extend(keep)
        flat = [a for pair in v.activations for a in pair]
        node.attribute.append(helper.make_attribute("linear_before_reset", int(v.reset_after)))
        node.attribute.append(helper.make_attribute("activations", [a[0] for a in flat]))
        alphas = [a[1] for a in flat if a[1] is not None]
        betas = [a[2] for a in flat if a[2] is not None]
        if alphas:
            node.attribute.append(helper.make_attribute("activation_alpha", alphas))
        if betas:
            node.attribute.append(helper.make_attribute("activation_beta", betas))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a.astype(np.float32), b.astype(np.float32)))


__all__ = ["ACTIVATIONS", "FUSED", "GruVariant", "fused_config", "fused_weights", "is_gru", "patch_nodes",
           "variant_of"]
