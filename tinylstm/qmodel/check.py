"""Checking a loaded integer model: the invariants the quantizer guarantees and the simulator,
the C emitter and the overflow proof (docs/quantization.md §11) rely on. Every model ``quantize``
returns passes; anything else is refused with :class:`ModelFormatError` naming node and field."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import ModelFormatError
from ..fixedpoint import INT32_MAX, Lut
from ..ir import SEQ, VEC, View
from .bounds import (
    dense_bound,
    gate_sum_bound,
    gru_gate_sum_bound,
    hidden_bound,
    log_softmax_bound,
    lut_interp_bound,
    lut_value_bound,
    partial_sum_bound,
    pre_activation_bound,
    state_acc_bound,
    state_c_bound,
    widened_acc_bound,
)
from .nodes import (
    MAX_GATE_SHIFT,
    MAX_PRE,
    MAX_STATE_SHIFT,
    MIN_STATE_SHIFT,
    S_MIN,
    QDense,
    QFeatureGather,
    QGru,
    QInput,
    QLstm,
    QLstmState,
    QNode,
    QSelectStep,
    QSoftmax,
    QTable,
)

if TYPE_CHECKING:
    from .model import QuantizedModel

INT8_RANGE = (-128, 127)
#: most features / hidden units / nodes a loaded model may declare
MAX_FEATURES = 1 << 20
MAX_NODES = 100_000
_PRE_FRAC = (4, 24)  # quantize.MIN_AUTO_PRE_FRAC .. 24
_CELL_FRAC = (0, 23)  # quantize.MAX_CELL_FRAC
_GATE_Q = (0, 15)


class _Bad(Exception):
    """A failed check: (where, message)."""


def _fail(where: str, msg: str) -> typing.NoReturn:
    raise _Bad(where, msg)


def check_model(model: QuantizedModel) -> None:
    """Refuse (``ModelFormatError`` naming the node and field) a model the quantizer could not
    have written: wrong field types, inconsistent shapes or dtypes, out-of-range integers, or
    bounds of the overflow proof (§11) that do not hold. Every model ``quantize`` returns passes."""
    try:
        _check_types(model, "model")
        _check_graph(model)
    except _Bad as e:
        where, msg = e.args
        raise ModelFormatError(f"{where}: {msg}") from None


def _conforms(v: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return v is None
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(v, h) for h in typing.get_args(hint))
    if origin is Literal:
        return isinstance(v, str) and v in typing.get_args(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(v, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(x, args[0]) for x in v)
        return len(v) == len(args) and all(_conforms(x, a) for x, a in zip(v, args, strict=True))
    if hint is bool:
        return isinstance(v, bool)
    if hint is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if hint is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if isinstance(hint, type):
        return isinstance(v, hint)
    return True  # pragma: no cover - every annotation above is handled


def _check_types(obj: Any, where: str) -> None:
    """Every dataclass field holds a value of its annotated type (recursively)."""
    if isinstance(obj, tuple):
        for k, x in enumerate(obj):
            _check_types(x, f"{where}[{k}]")
        return
    if not dataclasses.is_dataclass(obj):
        return
    hints = typing.get_type_hints(type(obj))
    name = getattr(obj, "name", None)
    here = f"node '{name}'" if isinstance(name, str) and where.startswith("model.nodes") else where
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if not _conforms(v, hints[f.name]):
            shown = type(v).__name__ if isinstance(v, (np.ndarray, tuple, list, dict)) else repr(v)[:40]
            _fail(here, f"field '{f.name}' is {shown}; expected {_hint_name(hints[f.name])}")
        _check_types(v, f"{where}.{f.name}")


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "").replace("numpy.", "np.")


def _int_in(v: int, lo: int, hi: int, where: str, field: str) -> None:
    if not lo <= v <= hi:
        _fail(where, f"'{field}' = {v} must lie in [{lo}, {hi}]")


def _array(a: np.ndarray, dtypes: tuple[str, ...], shape: tuple[int | None, ...], where: str,
           field: str) -> np.ndarray:
    if a.dtype.name not in dtypes or a.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(a.shape, shape, strict=True)):
        dims = ", ".join("*" if d is None else str(d) for d in shape)
        want_shape = f"({dims},)" if len(shape) == 1 else f"({dims})"
        _fail(where, f"'{field}' is {a.dtype.name} {a.shape}; expected {'/'.join(dtypes)} {want_shape}")
    return a


def _multipliers(mult: np.ndarray, shift: np.ndarray, where: str, field: str) -> None:
    """Requantization pairs (§2): mult in [2^30, 2^31) with shift in [0, 62], or (0, 0)."""
    m = mult.astype(np.int64)
    s = shift.astype(np.int64)
    ok = ((m >= 2**30) & (m < 2**31) & (s >= 0) & (s <= 62)) | ((m == 0) & (s == 0))
    if not ok.all():
        i = int(np.argmin(ok.reshape(-1)))
        _fail(where, f"'{field}' pair {i} (mult {m.reshape(-1)[i]}, shift {s.reshape(-1)[i]}) is not a "
                     "requantization multiplier (mult in [2^30, 2^31), shift in [0, 62], or 0, 0)")


def _matvec_partial(w: np.ndarray, effb: np.ndarray, where: str, field: str) -> None:
    partial = partial_sum_bound(w, effb)
    if partial.size and int(partial.max()) > INT32_MAX:
        _fail(where, f"'{field}': an int32 accumulator could overflow (§11.1)")


def _check_view(v: View, where: str, features: int, kind: str) -> None:
    n = len(v.atoms)
    order = [i for g in v.dims for i in g]
    if sorted(order) != list(range(n)) or not v.atoms or v.atoms[0].label != "B":
        _fail(where, "the layout's axes do not list each of its atoms once, batch first")
    for a in v.atoms:
        if a.size is None and a.is_feature:
            _fail(where, f"feature axis '{a.label}' has no size")
        if a.size is not None and not 1 <= a.size <= MAX_FEATURES:
            _fail(where, f"axis '{a.label}' has size {a.size}")
    if v.kind != kind or (kind == SEQ and v.atoms[1].label != "T"):
        _fail(where, f"the layout is a {v.kind} value; the node is a {kind} value")
    if v.features != features:
        _fail(where, f"the layout has {v.features} features; the node has {features}")


def _check_graph(model: QuantizedModel) -> None:
    nodes = model.nodes
    if not nodes or len(nodes) > MAX_NODES:
        _fail("model", f"'nodes' holds {len(nodes)} nodes; expected 1 to {MAX_NODES}")
    if not isinstance(nodes[0], QInput) or nodes[0].kind != SEQ:
        _fail("model", "'nodes' must start with the sequence input (QInput)")
    for k, n in enumerate(nodes):
        where = f"node '{n.name}'"
        if not (math.isfinite(n.scale) and n.scale > 0):
            _fail(where, f"'scale' = {n.scale!r} must be finite and > 0")
        _int_in(n.zero_point, *INT8_RANGE, where, "zero_point")
        if isinstance(n, (QLstm, QGru)):
            _int_in(n.hidden_size, 1, MAX_FEATURES, where, "hidden_size")
        _int_in(n.features, 1, MAX_FEATURES, where, "features")
        if isinstance(n, QInput):
            if k:
                _fail(where, "an input node after the first node")
            continue
        _int_in(n.src, 0, k - 1, where, "src")
        src = nodes[n.src]
        _check_node(n, src, where)
    _check_view(model.input_view, "model input_view", nodes[0].features, SEQ)
    _check_view(model.output_view, "model output_view", nodes[-1].features, nodes[-1].kind)


def _check_node(n: QNode, src: QNode, where: str) -> None:
    if isinstance(n, QLstm):
        _check_lstm(n, src, where)
    elif isinstance(n, QGru):
        _check_gru(n, src, where)
    elif isinstance(n, QLstmState):
        if not isinstance(src, (QLstm, QGru)) or (isinstance(src, QGru) and n.which != "h"):
            _fail(where, "'src' of an LSTM state must be an LSTM node (or a GRU node for its h)")
        if n.features != src.features or n.kind != VEC:
            _fail(where, f"'features' = {n.features} (vec) must equal the LSTM's {src.features}")
        pairs = (n.mult, n.shift)
        if n.which == "c":
            if len(n.mult) != src.num_directions or len(n.shift) != src.num_directions:
                _fail(where, f"'mult'/'shift' need one pair per direction ({src.num_directions})")
            _multipliers(np.array(pairs[0], np.int64), np.array(pairs[1], np.int64), where, "mult/shift")
            if state_c_bound(n.mult, n.shift, n.zero_point) > INT32_MAX:
                _fail(where, "the cell requantization could overflow int32 (§11.9)")
    elif isinstance(n, QSelectStep):
        if src.kind != SEQ or n.kind != VEC or n.features != src.features:
            _fail(where, "a step selection needs a sequence of the same features")
        _int_in(n.index, -INT32_MAX, INT32_MAX, where, "index")
    elif isinstance(n, QFeatureGather):
        idx = _array(n.indices, ("int64",), (None,), where, "indices")
        if idx.size == 0 or idx.min() < 0 or idx.max() >= src.features or n.kind != src.kind:
            _fail(where, f"'indices' must select among the {src.features} features of its source")
    elif isinstance(n, QDense):
        _check_dense(n, src, where)
    elif isinstance(n, QTable):
        _array(n.table, ("int8",), (256,), where, "table")
        if n.features != src.features or n.kind != src.kind:
            _fail(where, f"'features' = {n.features} must equal its source's {src.features}")
    elif isinstance(n, QSoftmax):
        _check_softmax(n, src, where)


def _check_dense(n: QDense, src: QNode, where: str) -> None:
    w = _array(n.weight, ("int8",), (None, src.features), where, "weight")
    out = w.shape[0]
    if out != n.features or n.kind != src.kind:
        _fail(where, f"'weight' has {out} rows for {n.features} features")
    effb = _array(n.eff_bias, ("int32",), (out,), where, "eff_bias")
    _multipliers(_array(n.mult, ("int32",), (out,), where, "mult"),
                 _array(n.shift, ("int32",), (out,), where, "shift"), where, "mult/shift")
    _int_in(n.act_max, *INT8_RANGE, where, "act_max")
    _int_in(n.act_min, INT8_RANGE[0], n.act_max, where, "act_min")
    _matvec_partial(w, effb, where, "weight")
    bound = dense_bound(w, effb, src.zero_point, n.mult, n.shift, n.zero_point)
    if bound.size and bound.max() > INT32_MAX:
        _fail(where, "the output requantization could overflow int32 (§11.7)")


def _check_softmax(n: QSoftmax, src: QNode, where: str) -> None:
    if n.features != src.features or n.features >= 65536 or n.kind != src.kind:
        _fail(where, f"'features' = {n.features} must equal its source's and be < 65536")
    e = _array(n.exp_table, ("int32",), (256,), where, "exp_table")
    if e[0] != 2**15 or e.min() < 0 or (np.diff(e.astype(np.int64)) > 0).any():
        _fail(where, "'exp_table' must start at 2^15 and decrease to >= 0")
    if n.log:
        t = _array(n.log2_table, ("int32",), (257,), where, "log2_table")
        d = np.diff(t.astype(np.int64))
        if t[0] != 0 or d.min() < 0 or d.max() > 369:
            _fail(where, "'log2_table' must start at 0 and rise by at most 369 per entry (§11.8)")
        _multipliers(np.array([n.l_mult, n.d_mult]), np.array([n.l_shift, n.d_shift]), where,
                     "l_mult/l_shift, d_mult/d_shift")
        if log_softmax_bound(n.l_mult, n.l_shift, n.d_mult, n.d_shift) > INT32_MAX:
            _fail(where, "127 + D - L could overflow int32 (§11.8)")


def _check_lut(lut: Lut, in_frac: int, where: str, field: str) -> None:
    t = _array(lut.table, ("int32",), (None,), where, f"{field}.table")
    n = t.shape[0] - 1
    if n < 2 or n & (n - 1):
        _fail(where, f"'{field}' has {n} segments; expected a power of two >= 2")
    _int_in(lut.sym, 0, 1, where, f"{field}.sym")
    _int_in(lut.q, *_GATE_Q, where, f"{field}.q")
    _int_in(lut.shift, 0, 30, where, f"{field}.shift")
    if lut.x_frac + lut.shift != in_frac:
        _fail(where, f"'{field}' reads Q({lut.x_frac + lut.shift}) inputs; its input is Q({in_frac})")
    if n << lut.shift >= 2**31:
        _fail(where, f"'{field}' grid ({n} segments, shift {lut.shift}) exceeds int32")
    if lut_value_bound(t, lut.sym) > 2**15:
        _fail(where, f"'{field}' holds values beyond +-2^15 (§11.5)")
    if lut_interp_bound(t, lut.shift) > INT32_MAX:
        _fail(where, f"'{field}' interpolation could overflow int32 (§11.4)")


def _check_recurrent(n: QLstm | QGru, src: QNode, where: str) -> None:
    """What an LSTM and a GRU layer share: input, directions, P, clip, lengths, the standard table."""
    n_in = n.input_size
    if src.kind != SEQ or n.kind != SEQ or n_in != src.features:
        _fail(where, f"'input_size' = {n_in} must equal the features of its sequence input ({src.features})")
    if not 1 <= n.num_directions <= 2 or (n.num_directions == 2 and (
            n.directions[0].reverse or not n.directions[1].reverse)):
        _fail(where, "'directions' must be one, or forward then reverse")
    _int_in(n.pre_frac, *_PRE_FRAC, where, "pre_frac")
    if n.clip_q is not None:
        _int_in(n.clip_q, 0, INT32_MAX, where, "clip_q")
    if n.sequence_lens is not None:
        lens = _array(n.sequence_lens, ("int32", "int64"), (None,), where, "sequence_lens")
        if lens.size and (lens.min() < 0 or lens.max() > INT32_MAX):
            _fail(where, "'sequence_lens' must lie in [0, 2^31)")
    if n.input_zero_point != src.zero_point:
        _fail(where, f"'input_zero_point' = {n.input_zero_point} is not the zero point of its input ({src.zero_point})")
    if any(d.standard for d in n.directions):
        if n.table is None:
            _fail(where, "a direction uses the standard table but 'table' is missing")
        _check_standard_table(n.table, n.table_frac, n.pre_frac, where)
    elif n.table is not None:
        _fail(where, "'table' is set but no direction uses it")


def _check_gates(d, rows: int, n_in: int, H: int, dw: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The gate rows' weights, multipliers, biases and shifts (§6) of an LSTM or GRU direction."""
    w = _array(d.w, ("int8", "int16"), (rows, n_in), dw, "w")
    r = _array(d.r, ("int8", "int16"), (rows, H), dw, "r")
    _int_in(d.pre_x, 0, MAX_PRE, dw, "pre_x")
    vec = {f: _array(getattr(d, f), ("int32",), (rows,), dw, f) for f in ("mult_x", "mult_h", "bias", "shift")}
    for f in ("mult_x", "mult_h"):
        if vec[f].size and (vec[f].min() < 0 or vec[f].max() >= 2**15):
            _fail(dw, f"'{f}' must lie in [0, 2^15) (a mul16 multiplier, §6)")
    if vec["shift"].size and (vec["shift"].min() < S_MIN or vec["shift"].max() > MAX_GATE_SHIFT):
        _fail(dw, f"'shift' must lie in [{S_MIN}, {MAX_GATE_SHIFT}] (§6)")
    if w.size and widened_acc_bound(w, d.pre_x).max() > INT32_MAX:
        _fail(dw, "'w': an int32 accumulator could overflow (§11.1)")
    return w, r, vec


def _check_gru(n: QGru, src: QNode, where: str) -> None:
    _check_recurrent(n, src, where)
    H = n.hidden_size
    for k, d in enumerate(n.directions):
        dw = f"{where} direction {k}"
        w, r, vec = _check_gates(d, 3 * H, n.input_size, H, dw)
        _int_in(d.state_shift, MIN_STATE_SHIFT, MAX_STATE_SHIFT, dw, "state_shift")
        if r.size and state_acc_bound(r, d.state_shift).max() > INT32_MAX:
            _fail(dw, "'r': an int32 accumulator could overflow (§16)")
        rb = _array(d.rbias, ("int32",), (H,), dw, "rbias")
        if not n.linear_before_reset and rb.any():
            _fail(dw, "'rbias' must be zero without linear_before_reset")
        _int_in(d.state_frac, *_CELL_FRAC, dw, "state_frac")
        if not d.standard:
            if d.lut_g is None:
                _fail(dw, "custom tables must be given for both f and g")
            _check_lut(d.lut_f, n.pre_frac, dw, "lut_f")
            _check_lut(d.lut_g, n.pre_frac, dw, "lut_g")
        elif d.lut_g is not None:
            _fail(dw, "a standard direction has no custom tables")
        k_h, (qf, qg) = d.state_frac, d.gate_q
        m = max(k_h, qg)
        if (d.a_h, d.a_n, d.s_u) != (m - k_h, m - qg, qf + m - k_h):
            _fail(dw, f"update shifts (a_h, a_n, s_u) = {(d.a_h, d.a_n, d.s_u)} do not match state_frac {k_h} "
                      f"and the tables' q ({qf}, {qg}): expected {(m - k_h, m - qg, qf + m - k_h)}")
        _multipliers(np.array([d.y_mult]), np.array([d.y_shift]), dw, "y_mult/y_shift")
        if state_c_bound([d.y_mult], [d.y_shift], n.zero_point) > INT32_MAX:
            _fail(dw, "the output requantization could overflow int32 (§16)")
        _array(d.initial_h, ("int16",), (1, H), dw, "initial_h")  # one row: the C runs one sequence
        tb = gru_gate_sum_bound(w, r, d.pre_x, d.state_shift, vec["mult_x"], vec["mult_h"], vec["bias"], rb)
        if tb.size and tb.max() > INT32_MAX:
            _fail(dw, "the gate sums t could overflow int32 (§16)")
        zb = pre_activation_bound(tb, vec["shift"], None, rb[:0], rb[:0])
        if zb.size and zb.max() > INT32_MAX:
            _fail(dw, "gate pre-activations could overflow int32 (§16)")


def _check_lstm(n: QLstm, src: QNode, where: str) -> None:
    _check_recurrent(n, src, where)
    H, n_in = n.hidden_size, n.input_size
    zph = n.zero_point
    for k, d in enumerate(n.directions):
        dw = f"{where} direction {k}"
        w, r, vec = _check_gates(d, 4 * H, n_in, H, dw)
        _int_in(d.pre_h, 0, MAX_PRE, dw, "pre_h")
        if r.size and widened_acc_bound(r, d.pre_h).max() > INT32_MAX:
            _fail(dw, "'r': an int32 accumulator could overflow (§11.1)")
        pm = _array(d.peep_mult, ("int32",), (3,), dw, "peep_mult")
        ps = _array(d.peep_shift, ("int32",), (3,), dw, "peep_shift")
        _multipliers(pm, ps, dw, "peep_mult/peep_shift")
        _int_in(d.cell_frac, *_CELL_FRAC, dw, "cell_frac")
        if not d.standard:
            if d.lut_g is None or d.lut_h is None:
                _fail(dw, "custom tables must be given for all of f, g and h")
            _check_lut(d.lut_f, n.pre_frac, dw, "lut_f")
            _check_lut(d.lut_g, n.pre_frac, dw, "lut_g")
            _check_lut(d.lut_h, d.cell_frac, dw, "lut_h")
        elif d.lut_g is not None or d.lut_h is not None:
            _fail(dw, "a standard direction has no custom tables")
        elif n.table is not None and lut_interp_bound(n.table, max(d.cell_frac - n.table_frac, 0)) + (
                1 << max(d.cell_frac - n.table_frac, 0)) > INT32_MAX:
            _fail(dw, f"cell_frac {d.cell_frac}: the cell's tanh from the standard table could overflow int32 (§11.4)")
        k_c = d.cell_frac
        qf, qg, _ = d.gate_q
        m = max(k_c, qg)
        if (d.a_fc, d.a_ig, d.s_c) != (m - k_c, m - qg, qf + m - k_c):
            _fail(dw, f"cell shifts (a_fc, a_ig, s_c) = {(d.a_fc, d.a_ig, d.s_c)} do not match "
                      f"cell_frac {k_c} and the tables' q ({qf}, {qg}): expected {(m - k_c, m - qg, qf + m - k_c)}")
        _multipliers(np.array([d.h_mult]), np.array([d.h_shift]), dw, "h_mult/h_shift")
        if hidden_bound(d.h_mult, d.h_shift, zph) > INT32_MAX:
            _fail(dw, "the hidden requantization could overflow int32 (§11.6)")
        _array(d.initial_h, ("int8",), (1, H), dw, "initial_h")  # one row: the C runs one sequence
        _array(d.initial_c, ("int16",), (1, H), dw, "initial_c")
        if d.peep is not None:
            peep = _array(d.peep, ("int16",), (3, H), dw, "peep")
            if peep.min() < -32767:
                _fail(dw, "'peep' holds -32768 (peepholes lie in [-32767, 32767])")
        tb = gate_sum_bound(w, r, d.pre_x, d.pre_h, vec["mult_x"], vec["mult_h"], vec["bias"])
        if tb.size and tb.max() > INT32_MAX:
            _fail(dw, "the gate sums t could overflow int32 (§11.3)")
        zb = pre_activation_bound(tb, vec["shift"], d.peep, pm, ps)
        if zb.size and zb.max() > INT32_MAX:
            _fail(dw, "gate pre-activations could overflow int32 (§11.3)")


def _check_standard_table(table: np.ndarray, frac: int, pre_frac: int, where: str) -> None:
    """The standard table is exactly what the spec builds (§8) and its interpolation fits (§11.4)."""
    t = _array(table, ("uint16",), (None,), where, "table")
    n = t.shape[0] - 1
    if n < 16 or n & (n - 1) or frac != round(math.log2(n / 16)):
        _fail(where, f"'table' of {n} segments with frac {frac}: expected a power of two >= 16 over [0, 16]")
    x = np.arange(n + 1, dtype=np.float64) * 2.0**-frac
    if not np.array_equal(t, np.rint(2.0**16 * (1.0 - 1.0 / (1.0 + np.exp(-x)))).astype(np.uint16)):
        _fail(where, "'table' is not rint(2^16 (1 - sigmoid(j 2^-frac))) (§8)")
    if pre_frac < frac - 31 or lut_interp_bound(t, max(pre_frac - frac, 0)) > INT32_MAX:
        _fail(where, f"'pre_frac' {pre_frac}: the standard table's interpolation could overflow int32 (§11.4)")
