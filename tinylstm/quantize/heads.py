"""Quantizing the heads: Dense (with a fused Relu), elementwise activations as int8 tables,
Softmax and LogSoftmax (docs/quantization.md §10)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import QuantizationError
from ..fixedpoint import INT32_MAX
from ..ir import ActivationNode, DenseNode
from ..qmodel import QDense, QNode, QSoftmax, QTable
from ..qmodel.bounds import dense_bound, log_softmax_bound, partial_sum_bound
from .luts import exp_table, int8_table, log2_table
from .params import as_int32, multiplier, multipliers, quantize_rows


def quantize_dense(node: DenseNode, out: tuple[float, int], src: tuple[float, int], relu: str | None) -> QDense:
    """A Dense node: int8 per-row weights, int32 effective bias, output at ``out = (scale, zp)``;
    ``relu`` names a fused Relu (then the output saturates at its zero point)."""
    sx, zpx = src
    sy, zpy = out
    wq, sw = quantize_rows(node.weight)
    bq = np.rint(np.asarray(node.bias, np.float64) / (sx * sw))
    effb = bq - zpx * wq.astype(np.int64).sum(axis=1)
    effb = as_int32(effb, f"node '{node.name}': bias (too large for the input and weight scales)")
    partial = partial_sum_bound(wq, effb)
    if partial.size and int(partial.max()) > INT32_MAX:
        raise QuantizationError(f"node '{node.name}': an int32 accumulator could overflow (fan-in too large)")
    mult, shift = multipliers(sx * sw / sy, f"node '{node.name}' output requantization")
    bound = dense_bound(wq, effb, zpx, mult, shift, zpy)
    if bound.size and bound.max() > INT32_MAX:
        raise QuantizationError(f"node '{node.name}': output requantization overflows int32")
    lo = max(-128, zpy) if relu is not None else -128
    return QDense(node.name, node.src, wq, effb, mult, shift, lo, 127, sy, zpy, fused=relu, kind=node.kind)


def quantize_activation(node: ActivationNode, out: tuple[float, int], src: tuple[float, int]) -> QNode:
    """An elementwise activation (an int8 table) or Softmax / LogSoftmax over the features."""
    sx, zpx = src
    act = node.activation
    if act.name in ("Softmax", "LogSoftmax"):
        if node.features >= 65536:
            raise QuantizationError(f"node '{node.name}': {act.name} over {node.features} features (max 65535)")
        if act.name == "Softmax":
            return QSoftmax(node.name, node.src, False, exp_table(sx), None, 0, 0, 0, 0, node.features,
                            1.0 / 256.0, -128, kind=node.kind)
        sy = out[0] if out[1] == 127 else 1.0 / 128.0  # log-softmax <= 0: zp 127 by construction
        # |L| <= 2^20 ln2 / (2^16 sy), |D| <= 255 sx / sy: each kept below 2^29 (§11.8)
        sy = max(sy, 16.0 * math.log(2.0) / 2.0**29, 255.0 * sx / 2.0**29)
        lm, ls = multiplier(math.log(2.0) / (2.0**16 * sy), f"node '{node.name}' log-softmax")
        dm, ds = multiplier(sx / sy, f"node '{node.name}' log-softmax")
        if log_softmax_bound(lm, ls, dm, ds) > INT32_MAX:
            raise QuantizationError(f"node '{node.name}': log-softmax requantization overflows int32")
        return QSoftmax(node.name, node.src, True, exp_table(sx), log2_table(), lm, ls, dm, ds, node.features,
                        sy, 127, kind=node.kind)
    sy, zpy = out
    table = int8_table(act, sx, zpx, sy, zpy)
    return QTable(node.name, node.src, str(act), table, node.features, sy, zpy, kind=node.kind)
