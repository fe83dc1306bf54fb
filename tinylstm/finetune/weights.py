"""The weights fine-tuning changes: read from a float model, put back into a copy of it.

Trainable: per LSTM direction ``W`` (4H, I), ``R`` (4H, H) and the bias ``b = Wb + Rb`` (4H,),
rows in tinylstm's gate order i, f, g, o; per Dense node its weight (O, F) and bias (O,). Values
are float32, as the ONNX file stores them, so the model the integer arithmetic sees during
training is the one written (no second rounding).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UnsupportedModelError
from ..ir import DenseNode, FloatModel, LstmNode
from ..qmodel import QDense, QLstm, QuantizedModel
from ..quantize.luts import is_standard
from ..quantize.params import quantize_rows

#: (node name, field) -> float32 array
Weights = dict[tuple[str, str], np.ndarray]


def check_supported(fm: FloatModel) -> None:
    """Refuse what the torch forward does not model (one clear error naming the node)."""
    from ..ir import (
        ActivationNode,
        FeatureGatherNode,
        InputNode,
        LstmStateNode,
        SelectStepNode,
    )

    known = (InputNode, LstmNode, LstmStateNode, SelectStepNode, FeatureGatherNode, DenseNode, ActivationNode)
    for n in fm.nodes:
        if not isinstance(n, known):
            raise UnsupportedModelError(f"finetune supports LSTM layers with Dense/activation heads; "
                                        f"{type(n).__name__.removesuffix('Node')} is not supported", node=n.name)
        if not isinstance(n, LstmNode):
            continue
        if n.sequence_lens is not None or n.sequence_lens_is_input:
            raise UnsupportedModelError("finetune runs each sequence at its own length; an LSTM with "
                                        "sequence_lens is not supported", node=n.name, field="sequence_lens")
        for d in n.directions:
            if d.p is not None:
                raise UnsupportedModelError("finetune does not support peepholes", node=n.name, field="P")
            if not is_standard(d.activations):
                raise UnsupportedModelError(
                    f"finetune supports the default activations (Sigmoid, Tanh, Tanh), not "
                    f"{', '.join(str(a) for a in d.activations)}", node=n.name, field="activations")


def read_weights(fm: FloatModel) -> Weights:
    """The trainable arrays of ``fm`` (copies, float32)."""
    out: Weights = {}
    for n in fm.nodes:
        if isinstance(n, LstmNode):
            for d, dr in enumerate(n.directions):
                out[(n.name, f"w{d}")] = np.array(dr.w, np.float32)
                out[(n.name, f"r{d}")] = np.array(dr.r, np.float32)
                out[(n.name, f"b{d}")] = np.array(dr.b, np.float32)
        elif isinstance(n, DenseNode):
            out[(n.name, "weight")] = np.array(n.weight, np.float32)
            out[(n.name, "bias")] = np.array(n.bias, np.float32)
    return out


def with_weights(fm: FloatModel, w: Weights) -> FloatModel:
    """A copy of ``fm`` holding the arrays ``w`` (float32) instead of its own."""
    nodes = []
    for n in fm.nodes:
        if isinstance(n, LstmNode):
            dirs = tuple(
                dataclasses.replace(dr, w=_f32(w[(n.name, f"w{d}")]), r=_f32(w[(n.name, f"r{d}")]),
                                    b=_f32(w[(n.name, f"b{d}")]))
                for d, dr in enumerate(n.directions))
            n = dataclasses.replace(n, directions=dirs)
        elif isinstance(n, DenseNode):
            n = dataclasses.replace(n, weight=_f32(w[(n.name, "weight")]), bias=_f32(w[(n.name, "bias")]))
        nodes.append(n)
    return dataclasses.replace(fm, nodes=tuple(nodes))


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def matrix_names(fm: FloatModel) -> list[tuple[str, int, str]]:
    """Every LSTM weight matrix: ``(node, direction, "W" or "R")`` in model order."""
    return [(n.name, d, m) for n in fm.nodes if isinstance(n, LstmNode) for d in range(n.num_directions)
            for m in ("W", "R")]


def on_grid(w: Weights, qm: QuantizedModel) -> Weights:
    """``w`` with every LSTM and Dense matrix replaced by its integers times its per-row scale,
    the values the integer model ``qm`` (quantized from ``w``) computes with, as float32.

    Quantizing them again gives the same integers (``rint(wq (1 + e))`` with ``|e| < 2^-22``), and
    the float model they make computes what the integer model does, up to its activation
    rounding: its calibrated ranges fit the integer model (those of the float weights the
    straight-through training leaves behind need not: measured, an adding-problem output range
    calibrated to [0, 0.91] instead of [0, 1.0])."""
    out = dict(w)
    for n in qm.nodes:
        mats = []
        if isinstance(n, QLstm):
            mats = [(f"w{d}", dr.w) for d, dr in enumerate(n.directions)] + [
                (f"r{d}", dr.r) for d, dr in enumerate(n.directions)]
        elif isinstance(n, QDense):
            mats = [("weight", n.weight)]
        for field, wq in mats:
            top = int(np.abs(wq).max()) if wq.size else 0
            again, scale = quantize_rows(w[(n.name, field)], max(top.bit_length() + 1, 2))
            if not np.array_equal(again, wq):  # pragma: no cover - the quantizer changed its weight rule
                raise AssertionError("finetune: per-row weights differ from the quantizer's")
            out[(n.name, field)] = (again.astype(np.float64) * scale[:, None]).astype(np.float32)
    return out
