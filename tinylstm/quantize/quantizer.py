"""Float IR + calibration -> integer model: the driver. Every float -> int decision of tinylstm
lives in this package: :mod:`.params` (int8 scales, per-row weights, multipliers), :mod:`.lstm`
(LSTM layers and their states), :mod:`.heads` (Dense, activations, Softmax), :mod:`.luts` (tables).

The integer semantics are docs/quantization.md; the overflow proof of its §11
(:mod:`tinylstm.qmodel.bounds`) is checked from the actual integers, for every int8 input and
every reachable state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import QuantizationError, UnsupportedModelError
from ..ir import (
    ActivationNode,
    DenseNode,
    FeatureGatherNode,
    FloatModel,
    GruNode,
    InputNode,
    LstmNode,
    LstmStateNode,
    SelectStepNode,
)
from ..qmodel import QFeatureGather, QInput, QLstm, QNode, QSelectStep, QuantizedModel
from .calibration import CalibData, Calibration, Progress, calibrate
from .gru import quantize_gru
from .heads import quantize_activation, quantize_dense
from .lstm import DEFAULT_PRE_FRAC, MIN_PRE_FRAC, cell_frac, quantize_lstm, quantize_lstm_state
from .luts import standard_table
from .params import head_range, int8_params, quantize_rows


def _consumers(model: FloatModel) -> dict[int, list[int]]:
    uses: dict[int, list[int]] = {}
    for k, n in enumerate(model.nodes):
        src = getattr(n, "src", None)
        if src is not None:
            uses.setdefault(src, []).append(k)
    return uses


def quantize(
    float_model: FloatModel,
    calib: Calibration | CalibData,
    *,
    pre_frac: int = DEFAULT_PRE_FRAC,
    lut_size: int = 512,
    lut_interp: bool = True,
    lstm_weight_bits: int | Mapping[str, int] = 16,
    cell_headroom: float = 1.0,
    range_margin: float = 0.05,
    observer: str = "minmax",
    percentile: float = 99.99,
    progress: Progress | bool | None = None,
) -> QuantizedModel:
    """Turn a float model into the integer model (docs/quantization.md).

    ``calib`` is a :class:`Calibration` or raw data for :func:`tinylstm.calibrate.calibrate`
    (then ``observer``, ``percentile``, ``progress`` apply). ``pre_frac``: fraction bits P of
    the gate pre-activations (lowered per layer if the overflow proof needs it); ``lut_size``:
    segments per half table; ``lut_interp=False`` is an ablation mode the C runtime does not
    implement; ``lstm_weight_bits`` (16 or 8) is the width of the LSTM weight matrices (16 keeps
    long-lag memory, docs/quantization.md §13; lowered per matrix if the overflow proof needs
    it; a mapping ``{layer name: 8 or 16}`` sets it per LSTM/GRU layer, 16 for the layers it omits,
    as ``--lstm-weight-bits auto`` chooses); ``cell_headroom`` >= 1 multiplies the calibrated
    ``max |c|`` before choosing the cell's power-of-two range; ``range_margin`` widens the
    calibrated ranges of head outputs and of LSTM hidden states by that fraction of their span on
    each nonzero side (clamped to what the function can reach).
    """
    _check_batch_free(float_model)
    if not isinstance(calib, Calibration):
        calib = calibrate(float_model, calib, observer=observer, percentile=percentile, progress=progress)
    if not MIN_PRE_FRAC <= pre_frac <= 24:
        raise QuantizationError(f"pre_frac {pre_frac} must lie in [{MIN_PRE_FRAC}, 24]")
    if lut_size < 16 or lut_size > 8192 or lut_size & (lut_size - 1):
        raise QuantizationError(f"lut_size {lut_size} must be a power of two in [16, 8192]")
    if not cell_headroom >= 1.0:
        raise QuantizationError(f"cell_headroom {cell_headroom} must be >= 1")
    layer_bits, lstm_weight_bits = _layer_bits(float_model, lstm_weight_bits)
    if not 0.0 <= range_margin <= 1.0:
        raise QuantizationError(f"range_margin {range_margin} must lie in [0, 1]")
    opts = {"pre_frac": pre_frac, "lut_size": lut_size, "lut_interp": lut_interp, "cell_headroom": cell_headroom,
            "range_margin": range_margin, "lstm_weight_bits": lstm_weight_bits}
    table, table_frac = standard_table(lut_size)
    # the options recorded in the model are the JSON scalars above; the table goes to each layer
    layer_opts = dict(opts, table=table, table_frac=table_frac, lstm_weight_bits=16 if layer_bits else lstm_weight_bits)

    uses = _consumers(float_model)
    qnodes: list[QNode] = []
    where: dict[int, int] = {}  # float node index -> integer node index
    params: dict[int, tuple[float, int]] = {}  # integer node index -> (scale, zero point)
    skip: set[int] = set()
    nodes = float_model.nodes
    for k, node in enumerate(nodes):
        if k in skip:
            continue
        src_q = where.get(node.src) if hasattr(node, "src") else None
        src = params[src_q] if src_q is not None else None
        if isinstance(node, InputNode):
            s, zp = int8_params(*calib.range(k, "output"))
            q: QNode = QInput(node.name, node.features, s, zp, kind=node.kind)
        elif isinstance(node, LstmNode):
            q = _with_src(quantize_lstm(node, k, calib, src, dict(layer_opts, **layer_bits.get(node.name, {}))), src_q)
        elif isinstance(node, GruNode):
            q = _with_src(quantize_gru(node, k, calib, src, dict(layer_opts, **layer_bits.get(node.name, {}))), src_q)
        elif isinstance(node, LstmStateNode):
            lq: QLstm = qnodes[src_q]  # type: ignore[assignment]
            q = quantize_lstm_state(node, k, src_q, lq, calib, opts["range_margin"])
        elif isinstance(node, SelectStepNode):
            q = QSelectStep(node.name, src_q, node.index, node.features, src[0], src[1], kind=node.kind)
        elif isinstance(node, FeatureGatherNode):
            q = QFeatureGather(node.name, src_q, np.asarray(node.indices, np.int64), src[0], src[1],
                               kind=node.kind)
        elif isinstance(node, DenseNode):
            relu = None
            out_k = k
            nxt = nodes[k + 1] if k + 1 < len(nodes) else None
            if (isinstance(nxt, ActivationNode) and nxt.activation.name == "Relu" and nxt.src == k
                    and uses.get(k) == [k + 1]):
                relu, out_k = nxt.name, k + 1
                skip.add(k + 1)
            out = int8_params(*head_range(*calib.range(out_k, "output"), opts["range_margin"]))
            q = _with_src(quantize_dense(node, out, src, relu), src_q)
            if relu is not None:
                where[k + 1] = len(qnodes)
        elif isinstance(node, ActivationNode):
            out = int8_params(*head_range(*calib.range(k, "output"), opts["range_margin"], node.activation.name))
            q = _with_src(quantize_activation(node, out, src), src_q)
        else:  # pragma: no cover - the IR is closed
            raise TypeError(type(node))
        where[k] = len(qnodes)
        params[len(qnodes)] = (q.scale, q.zero_point)
        qnodes.append(q)

    return QuantizedModel(
        nodes=tuple(qnodes),
        input_name=float_model.input_name,
        output_name=float_model.output_name,
        input_view=float_model.input_view,
        output_view=float_model.output_view,
        sequence_lens_input=float_model.sequence_lens_input,
        source=float_model.source,
        options=tuple(sorted(opts.items())) + (("observer", calib.observer), ("percentile", calib.percentile)),
        notes=float_model.notes,
        float_fingerprint=float_model.fingerprint(),
        batch_row=float_model.batch_row,
        export_time=float_model.export_time,
        longest_calibration=calib.longest,
    )


def _check_batch_free(fm: FloatModel) -> None:
    """The integer model (and its C) runs one sequence at a time: refuse constants that differ
    between the rows of a static batch."""
    for node, what, rows in fm.batch_dependence():
        raise UnsupportedModelError(
            f"{what} differs between the {rows} rows of the model's static batch, and the generated C "
            "runs one sequence at a time: re-export the model with a dynamic batch axis, or keep one "
            "row's constants with --batch-row K (Python: load_onnx(path, batch_row=K))",
            node=node, field=what,
        )


def _layer_bits(fm: FloatModel, bits: int | Mapping[str, int]) -> tuple[dict[str, dict], int | str]:
    """Per-layer weight widths (``{name: {"matrix_bits": {"W": b, "R": b}}}``) from a mapping whose
    keys are a recurrent layer (both matrices) or ``layer/W``, ``layer/R`` (one matrix), and the
    option value recorded in the model (the int, or ``"key=b,..."`` for a mapping)."""
    if not isinstance(bits, Mapping):
        if bits not in (8, 16):
            raise QuantizationError(f"lstm_weight_bits {bits} must be 8 or 16 (or a mapping layer name -> 8 or 16)")
        return {}, bits
    layers = [n.name for n in fm.nodes if isinstance(n, (LstmNode, GruNode))]
    out: dict[str, dict] = {}
    for key, b in bits.items():
        name, _, matrix = key.rpartition("/") if key not in layers and key.endswith(("/W", "/R")) else (key, "", "")
        if name not in layers or b not in (8, 16):
            raise QuantizationError(f"lstm_weight_bits: '{key}' = {b!r}; expected a recurrent layer of the model "
                                    f"({', '.join(layers)}), optionally with /W or /R, and 8 or 16 bits")
        mb = out.setdefault(name, {"matrix_bits": {}})["matrix_bits"]
        for m in (matrix,) if matrix else ("W", "R"):
            mb[m] = b
    return out, ",".join(f"{k}={b}" for k, b in bits.items())


def _with_src(q, src_q: int | None):
    return dataclasses.replace(q, src=src_q) if src_q is not None else q


__all__: Sequence[str] = ["quantize", "int8_params", "quantize_rows", "cell_frac", "QuantizationError"]
