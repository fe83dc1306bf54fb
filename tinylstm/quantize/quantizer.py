"""Float IR + calibration -> integer model. Every float -> int decision of tinylstm lives here.

The integer semantics are docs/quantization.md; the overflow proof of its §11 is checked here,
from the actual integers, for every int8 input and every reachable state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import QuantizationError, UnsupportedModelError
from ..fixedpoint import INT16_MAX, INT32_MAX, Lut, quantize_multiplier
from ..ir import (
    ActivationNode,
    DenseNode,
    FeatureGatherNode,
    FloatModel,
    InputNode,
    LstmNode,
    LstmStateNode,
    SelectStepNode,
)
from ..qmodel import (
    QDense,
    QFeatureGather,
    QInput,
    QLstm,
    QLstmDirection,
    QLstmState,
    QNode,
    QSelectStep,
    QSoftmax,
    QTable,
    QuantizedModel,
    acc_bound,
    encoded_factors,
    log_softmax_bound,
    state_c_bound,
)
from .calibration import CalibData, Calibration, Progress, calibrate
from .luts import BOUNDED, LutError, build_lut, exp_table, int8_table, log2_table

#: Default fraction bits of gate pre-activations (measured: docs/quantization.md §13).
DEFAULT_PRE_FRAC = 16
MIN_PRE_FRAC = 8
MAX_CELL_FRAC = 23


# ---------------------------------------------------------------------------------------
# small float -> int helpers
# ---------------------------------------------------------------------------------------
def int8_params(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric per-tensor int8 ``(scale, zero_point)`` for a range (widened to hold 0), §4."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise QuantizationError(f"tensor range [{lo}, {hi}] is not finite")
    if hi - lo < 1e-8:
        return 1.0 / 128.0, 0
    s = (hi - lo) / 255.0
    zp = int(np.clip(np.rint(-128.0 - lo / s), -128, 127))
    return s, zp


def int8_params_min_scale(lo: float, hi: float, s_min: float) -> tuple[float, int]:
    """``int8_params`` with the scale raised to at least ``s_min`` (zero point from the same ``lo``):
    for outputs whose requantization would overflow int32 at the calibrated scale (§11.8, §11.9)."""
    s, zp = int8_params(lo, hi)
    if s >= s_min:
        return s, zp
    return s_min, int(np.clip(np.rint(-128.0 - min(float(lo), 0.0) / s_min), -128, 127))


#: Output ranges of the bounded elementwise activations (the margin never widens past them).
_ACT_BOUNDS = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0), "Softsign": (-1.0, 1.0), "HardSigmoid": (0.0, 1.0)}


def head_range(lo: float, hi: float, margin: float, act: str | None = None) -> tuple[float, float]:
    """A calibrated range (LSTM hidden state, head output) widened by ``margin * (hi - lo)`` on each side that is
    not exactly 0 (a sample's extremes underestimate the population's, §4), clamped to the
    activation's own bounds."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    span = hi - lo
    lo2 = lo - margin * span if lo < 0 else lo
    hi2 = hi + margin * span if hi > 0 else hi
    if act in _ACT_BOUNDS:
        b0, b1 = _ACT_BOUNDS[act]
        lo2, hi2 = max(lo2, min(b0, lo)), min(hi2, max(b1, hi))
    return lo2, hi2


def quantize_rows(w: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row weights in ``[-(2^(bits-1) - 1), 2^(bits-1) - 1]``:
    ``(wq (R, K) int8 (bits <= 8) or int16, scale (R,))``."""
    w = np.asarray(w, dtype=np.float64)
    qmax = 2 ** (bits - 1) - 1
    amax = np.max(np.abs(w), axis=1) if w.shape[1] else np.zeros(w.shape[0])
    scale = np.where(amax > 0, amax / qmax, 1.0)
    wq = np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int8 if bits <= 8 else np.int16)
    return wq, scale


def _lstm_matrix(w: np.ndarray, bits: int, zp: int, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights of one LSTM matrix at the widest width <= ``bits`` whose matvec provably fits
    int32 (§11.1), with the effective bias ``-zp * sum_k wq[r, k]``."""
    for b in range(bits, 7, -1):
        wq, sw = quantize_rows(w, b)
        effb = -zp * wq.astype(np.int64).sum(axis=1)
        partial = np.abs(effb) + 128 * np.abs(wq.astype(np.int64)).sum(axis=1)
        if not partial.size or int(partial.max()) <= INT32_MAX:
            return wq, sw, effb.astype(np.int32)
    raise QuantizationError(f"{where}: an int32 accumulator could overflow even with 8-bit weights (fan-in too large)")


def _mult(factor: float, where: str) -> tuple[int, int]:
    """``quantize_multiplier`` with an odd multiplier (spec §2.1): of the two odd neighbours of the
    exact ``factor * 2^shift`` the nearer one, so no requantization with shift >= 33 meets a tie
    and the C may round on the product's high word alone (``tl_requant_odd``)."""
    try:
        mult, shift = quantize_multiplier(factor)
    except ValueError as e:
        raise QuantizationError(f"{where}: {e}") from None
    if mult == 0 or mult & 1:
        return mult, shift
    exact = factor * 2.0**shift
    down, up = mult - 1, mult + 1
    if down < 2**30 or (up < 2**31 and abs(up - exact) < abs(exact - down)):
        return up, shift
    return down, shift


def _mults(factors: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [_mult(float(f), where) for f in factors]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))


def _check_matvec(wq: np.ndarray, effb: np.ndarray, where: str) -> None:
    partial = np.abs(effb.astype(np.int64)) + 128 * np.abs(wq.astype(np.int64)).sum(axis=1)
    if partial.size and int(partial.max()) > INT32_MAX:
        raise QuantizationError(f"{where}: an int32 accumulator could overflow (fan-in too large)")


def _i32(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.size and (np.abs(a).max() > INT32_MAX):
        raise QuantizationError(f"{what} does not fit int32")
    return a.astype(np.int32)


# ---------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------
def cell_frac(cmax: float, headroom: float) -> int:
    """``k = 15 - ceil(log2(cmax * headroom))`` clamped to [0, 23] (§7)."""
    v = cmax * headroom
    if v <= 0:
        return 15
    return int(min(max(15 - math.ceil(math.log2(v)), 0), MAX_CELL_FRAC))


def _gate_lut(act, in_frac: int, limit: float, opts: dict, node: str, slot: str) -> Lut:
    try:
        return build_lut(act, in_frac, limit=limit, size=opts["lut_size"], interp=opts["lut_interp"])
    except LutError as e:
        raise QuantizationError(f"node '{node}': {slot} activation {act}: {e}") from None


def _quantize_direction(node: LstmNode, d: int, k_node: int, calib: Calibration, sx: float, zpx: int,
                        sh: float, zph: int, opts: dict) -> tuple[QLstmDirection, int]:
    """One direction; returns it and the pre-activation fraction bits P it needs."""
    dr = node.directions[d]
    H = node.hidden_size
    name = node.name
    f_act, g_act, h_act = dr.activations
    wq, sw, effb_x = _lstm_matrix(dr.w, opts["lstm_weight_bits"], zpx, f"node '{name}' (input matmul)")
    rq, sr, effb_h = _lstm_matrix(dr.r, opts["lstm_weight_bits"], zph, f"node '{name}' (recurrent matmul)")

    # cell format from calibration (and the initial state)
    cmax = calib.absmax(k_node, f"c{d}")
    cmax = max(cmax, float(np.max(np.abs(dr.initial_c))) if dr.initial_c.size else 0.0)
    k = cell_frac(cmax, opts["cell_headroom"])

    if h_act.name not in BOUNDED:
        raise QuantizationError(
            f"node '{name}': the cell output activation (h) {h_act} is unbounded; the integer LSTM "
            f"supports {', '.join(BOUNDED)} there (no float fallback)"
        )
    # peepholes: int16 per gate
    if dr.p is not None:
        p = np.asarray(dr.p, dtype=np.float64)
        pmax = np.max(np.abs(p), axis=1)
        sp = np.where(pmax > 0, pmax / 32767.0, 1.0)
        peep = np.clip(np.rint(p / sp[:, None]), -32767, 32767).astype(np.int16)
    else:
        sp = np.ones(3)
        peep = None

    ax = acc_bound(wq, zpx).astype(np.float64)
    ah = acc_bound(rq, zph).astype(np.float64)
    bias = np.asarray(dr.b, dtype=np.float64)
    P = opts["pre_frac"]
    while True:
        mx, shx = _mults(sw * sx * 2.0**P, f"node '{name}' input requantization")
        mh, shh = _mults(sr * sh * 2.0**P, f"node '{name}' recurrent requantization")
        bz = np.rint(bias * 2.0**P)
        pm, psh = _mults(sp * 2.0 ** (P - k), f"node '{name}' peephole requantization")
        zb = ax * encoded_factors(mx, shx) + 1 + ah * encoded_factors(mh, shh) + 1 + np.abs(bz)
        if peep is not None:
            pk = np.abs(peep.astype(np.float64)).max(axis=1) * 32768.0 * encoded_factors(pm, psh) + 1
            zb = zb + np.concatenate([np.full(H, pk[0]), np.full(H, pk[1]), np.zeros(H), np.full(H, pk[2])])
        clip_ok = node.clip is None or node.clip * 2.0**P <= INT32_MAX
        if zb.max() <= INT32_MAX and clip_ok:
            break
        if P <= MIN_PRE_FRAC:
            raise QuantizationError(
                f"node '{name}': gate pre-activations can reach {zb.max() / 2.0**P:.4g} (worst case over all "
                f"int8 inputs), beyond int32 even with {P} fraction bits"
            )
        P -= 1
    z_real = zb / 2.0**P  # proven bound of |z| per row, real units
    clip = node.clip if node.clip is not None else math.inf
    lim_f = min(clip, float(np.max(np.concatenate([z_real[: 2 * H], z_real[3 * H :]]))))
    lim_g = min(clip, float(np.max(z_real[2 * H : 3 * H])))
    lut_f = _gate_lut(f_act, P, lim_f, opts, name, "gate (f)")
    lut_g = _gate_lut(g_act, P, lim_g, opts, name, "cell input (g)")
    lut_h = _gate_lut(h_act, k, 2.0 ** (15 - k), opts, name, "cell output (h)")

    qf, qg, qh = lut_f.q, lut_g.q, lut_h.q
    m = max(k, qg)
    a_fc, a_ig, s_c = m - k, m - qg, qf + m - k
    hm, hs = _mult(2.0 ** -(qf + qh) / sh, f"node '{name}' hidden requantization")
    if 2.0**30 * (hm * 2.0**-hs) + 1 + abs(zph) > INT32_MAX:
        raise QuantizationError(f"node '{name}': hidden requantization overflows int32 (scale too small)")

    h0 = np.clip(np.rint(np.asarray(dr.initial_h, np.float64) / sh) + zph, -128, 127).astype(np.int8)
    c0 = np.clip(np.rint(np.asarray(dr.initial_c, np.float64) * 2.0**k), -32768, INT16_MAX).astype(np.int16)
    qd = QLstmDirection(
        w=wq, r=rq, effb_x=effb_x, effb_h=effb_h, mult_x=mx, shift_x=shx, mult_h=mh, shift_h=shh,
        bias=_i32(bz, f"node '{name}': gate bias"), peep=peep, peep_mult=pm, peep_shift=psh,
        cell_frac=k, lut_f=lut_f, lut_g=lut_g, lut_h=lut_h, a_fc=a_fc, a_ig=a_ig, s_c=s_c,
        h_mult=hm, h_shift=hs, initial_h=h0, initial_c=c0, reverse=dr.reverse,
    )
    return qd, P


def _hidden_bound(node: LstmNode) -> float:
    """sup |h| = sup |f_act| * sup |h_act| over all directions (h = o * h_act(c))."""
    from ..ir.reference import apply_activation

    probe = np.concatenate([np.linspace(-64.0, 64.0, 1 << 14), [-1e6, 1e6]])
    b = 0.0
    for d in node.directions:
        f_act, _, h_act = d.activations
        b = max(b, float(np.max(np.abs(apply_activation(f_act, probe)))) *
                float(np.max(np.abs(apply_activation(h_act, probe)))))
    return b


def _quantize_lstm(node: LstmNode, k: int, calib: Calibration, src: tuple[float, int], opts: dict) -> QLstm:
    sx, zpx = src
    lo, hi = head_range(*calib.range(k, "output"), opts["range_margin"])
    bound = _hidden_bound(node)
    if math.isfinite(bound):
        lo, hi = max(lo, -bound), min(hi, bound)
    for dr in node.directions:
        if dr.initial_h.size:
            lo = min(lo, float(dr.initial_h.min()))
            hi = max(hi, float(dr.initial_h.max()))
    sh, zph = int8_params(lo, hi)
    p_req = opts["pre_frac"]
    while True:
        dirs = []
        p_used = p_req
        for d in range(node.num_directions):
            qd, p = _quantize_direction(node, d, k, calib, sx, zpx, sh, zph, dict(opts, pre_frac=p_req))
            dirs.append(qd)
            p_used = min(p_used, p)
        if p_used == p_req:
            break
        p_req = p_used  # one P per layer: redo every direction at the smallest one
    clip_q = None if node.clip is None else int(np.rint(node.clip * 2.0**p_req))
    return QLstm(
        name=node.name, src=node.src, input_size=node.input_size, hidden_size=node.hidden_size,
        directions=tuple(dirs), pre_frac=p_req, clip_q=clip_q, input_forget=node.input_forget,
        sequence_lens=node.sequence_lens, sequence_lens_is_input=node.sequence_lens_is_input,
        scale=sh, zero_point=zph, kind=node.kind,
    )


# ---------------------------------------------------------------------------------------
# heads
# ---------------------------------------------------------------------------------------
def _quantize_dense(node: DenseNode, out: tuple[float, int], src: tuple[float, int], relu: str | None) -> QDense:
    sx, zpx = src
    sy, zpy = out
    wq, sw = quantize_rows(node.weight)
    bq = np.rint(np.asarray(node.bias, np.float64) / (sx * sw))
    effb = bq - zpx * wq.astype(np.int64).sum(axis=1)
    effb = _i32(effb, f"node '{node.name}': bias (too large for the input and weight scales)")
    _check_matvec(wq, effb, f"node '{node.name}'")
    mult, shift = _mults(sx * sw / sy, f"node '{node.name}' output requantization")
    bound = (np.abs(effb.astype(np.float64)) + acc_bound(wq, zpx)) * encoded_factors(mult, shift) + 1 + abs(zpy)
    if bound.size and bound.max() > INT32_MAX:
        raise QuantizationError(f"node '{node.name}': output requantization overflows int32")
    lo = max(-128, zpy) if relu is not None else -128
    return QDense(node.name, node.src, wq, effb, mult, shift, lo, 127, sy, zpy, fused=relu, kind=node.kind)


def _quantize_activation(node: ActivationNode, out: tuple[float, int], src: tuple[float, int]) -> QNode:
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
        lm, ls = _mult(math.log(2.0) / (2.0**16 * sy), f"node '{node.name}' log-softmax")
        dm, ds = _mult(sx / sy, f"node '{node.name}' log-softmax")
        if log_softmax_bound(lm, ls, dm, ds) > INT32_MAX:
            raise QuantizationError(f"node '{node.name}': log-softmax requantization overflows int32")
        return QSoftmax(node.name, node.src, True, exp_table(sx), log2_table(), lm, ls, dm, ds, node.features,
                        sy, 127, kind=node.kind)
    sy, zpy = out
    table = int8_table(act, sx, zpx, sy, zpy)
    return QTable(node.name, node.src, str(act), table, node.features, sy, zpy, kind=node.kind)


def _consumers(model: FloatModel) -> dict[int, list[int]]:
    uses: dict[int, list[int]] = {}
    for k, n in enumerate(model.nodes):
        src = getattr(n, "src", None)
        if src is not None:
            uses.setdefault(src, []).append(k)
    return uses


# ---------------------------------------------------------------------------------------
def quantize(
    float_model: FloatModel,
    calib: Calibration | CalibData,
    *,
    pre_frac: int = DEFAULT_PRE_FRAC,
    lut_size: int = 512,
    lut_interp: bool = True,
    lstm_weight_bits: int = 16,
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
    it); ``cell_headroom`` >= 1 multiplies the calibrated ``max |c|`` before choosing the
    cell's power-of-two range; ``range_margin`` widens the calibrated ranges of head outputs
    and of LSTM hidden states by that fraction of their span on each nonzero side (clamped to
    what the function can reach).
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
    if lstm_weight_bits not in (8, 16):
        raise QuantizationError(f"lstm_weight_bits {lstm_weight_bits} must be 8 or 16")
    if not 0.0 <= range_margin <= 1.0:
        raise QuantizationError(f"range_margin {range_margin} must lie in [0, 1]")
    opts = {"pre_frac": pre_frac, "lut_size": lut_size, "lut_interp": lut_interp, "cell_headroom": cell_headroom,
            "range_margin": range_margin, "lstm_weight_bits": lstm_weight_bits}

    uses = _consumers(float_model)
    qnodes: list[QNode] = []
    where: dict[int, int] = {}  # float node index -> integer node index
    params: dict[int, tuple[float, int]] = {}  # integer node index -> (scale, zero point)
    kinds_k: dict[int, int] = {}  # integer LSTM index -> float index
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
            q = _quantize_lstm(node, k, calib, src, opts)
            q = _with_src(q, src_q)
        elif isinstance(node, LstmStateNode):
            lq: QLstm = qnodes[src_q]  # type: ignore[assignment]
            if node.which == "h":
                q = QLstmState(node.name, src_q, "h", node.features, lq.scale, lq.zero_point)
            else:
                # |c| <= 2^15: the scale must keep 2^15 * 2^-k / s (plus rounding, zp) within int32
                s_min = max(2.0 ** (15 - d.cell_frac) for d in lq.directions) / 2.0**30
                s, zp = int8_params_min_scale(*head_range(*calib.range(k, "output"), opts["range_margin"]), s_min)
                pairs = [_mult(2.0**-d.cell_frac / s, f"node '{node.name}'") for d in lq.directions]
                if state_c_bound([p[0] for p in pairs], [p[1] for p in pairs], zp) > INT32_MAX:
                    raise QuantizationError(f"node '{node.name}': cell requantization overflows int32")
                q = QLstmState(node.name, src_q, "c", node.features, s, zp,
                               tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))
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
            q = _with_src(_quantize_dense(node, out, src, relu), src_q)
            if relu is not None:
                where[k + 1] = len(qnodes)
        elif isinstance(node, ActivationNode):
            out = int8_params(*head_range(*calib.range(k, "output"), opts["range_margin"], node.activation.name))
            q = _with_src(_quantize_activation(node, out, src), src_q)
        else:  # pragma: no cover - the IR is closed
            raise TypeError(type(node))
        where[k] = len(qnodes)
        params[len(qnodes)] = (q.scale, q.zero_point)
        if isinstance(q, QLstm):
            kinds_k[len(qnodes)] = k
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


def _with_src(q, src_q: int | None):
    import dataclasses

    return dataclasses.replace(q, src=src_q) if src_q is not None else q


__all__: Sequence[str] = ["quantize", "int8_params", "quantize_rows", "cell_frac", "QuantizationError"]
