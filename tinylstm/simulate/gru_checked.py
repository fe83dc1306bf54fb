"""The integer GRU (docs/quantization.md §16): the checked reference kernels, mirrored by name by the
C runtime (phase 2b of issue #18 writes the C side):

===========================  ==========================
``gru_gates``                ``tl_gru_gates_s8``
``gru_candidate``            ``tl_gru_candidate_s8``
``gru_update``               ``tl_gru_update_s16``
``gru_step``                 ``tl_gru_step_s8``
===========================  ==========================

As in :mod:`.checked`, arithmetic is int64 numpy over the batch, and every value the C stores is
checked against its C type (:func:`.checked.store`). ``run_gru`` runs a layer through the fast
path (:mod:`.gru_fast`) where :func:`.gru_fast.plan_gru` proves it exact and overflow-free, and
through these kernels otherwise (or with :data:`.checked.CHECKED`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fixedpoint import mul16, requant, round_shift, sat, sat8, sat16, shift_half_up
from ..qmodel import QGru, QGruDirection
from . import checked
from .checked import LAYERS, gate_values, input_side, matvec_acc, store
from .gru_fast import plans, run_gru_direction

#: Fraction bits of a gate value in the reset product (§16): the products shift by 15 whatever q_f.
GATE_ONE_Q = 15


def state_input(d: QGruDirection, h: np.ndarray) -> np.ndarray:
    """The recurrent matvec input ``v_h = shift_half_up(h, q)`` from the int16 state (int16, §16)."""
    return store(shift_half_up(h, d.state_shift), "int16", "narrowed state")


def gru_gates(layer: QGru, d: QGruDirection, tx: np.ndarray, v_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The update and reset gates (``tl_gru_gates_s8``, §16 with §6).

    tx (B, 3H) the input side ``B + mul16(acc_x, mult_x)`` (:func:`.checked.input_side`), v_h (B, H)
    the narrowed state. Returns z (B, 2H) int32 Q(P) after clip and the gate values (B, 2H) int32
    (z, r) in Q(q_f)."""
    H = layer.hidden_size
    acc_h = matvec_acc(d.r[: 2 * H], v_h, 0, f"{layer.name}: recurrent matvec (z, r)")
    t = store(tx[:, : 2 * H] + mul16(acc_h, d.mult_h[: 2 * H]), "int32", f"{layer.name}: t (z, r)")
    z = t >> d.shift[: 2 * H].astype(np.int64)
    if layer.clip_q is not None:
        z = sat(z, -layer.clip_q, layer.clip_q)
    return z, gate_values(layer, d, z, "f")


def gru_candidate(layer: QGru, d: QGruDirection, tx: np.ndarray, h: np.ndarray, v_h: np.ndarray,
                  r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The candidate (``tl_gru_candidate_s8``, §16). tx (B, 3H) as in :func:`gru_gates`, h (B, H) the int16
    state, v_h its narrowed form, r (B, H) the reset gate. With linear_before_reset the reset gate
    scales the recurrent part ``u = rbias + mul16(R_h v_h, mult_h)``: ``shift_half_up(r u, 15)``;
    without, the matvec reads ``shift_half_up(r h, 15 + q)``. Returns z_h (B, H) int32 Q(P) after clip
    and n (B, H) int32 Q(q_g)."""
    H = layer.hidden_size
    rows = slice(2 * H, 3 * H)
    if layer.linear_before_reset:
        acc = matvec_acc(d.r[rows], v_h, 0, f"{layer.name}: recurrent matvec (h)")
        u = store(d.rbias.astype(np.int64) + mul16(acc, d.mult_h[rows]), "int32", f"{layer.name}: u (h)")
        rec = store(shift_half_up(r * u, GATE_ONE_Q), "int32", f"{layer.name}: r u (h)")
    else:
        rh = store(r * h + ((1 << (GATE_ONE_Q + d.state_shift)) >> 1), "int32", f"{layer.name}: r h (h)")
        v_rh = store(rh >> (GATE_ONE_Q + d.state_shift), "int16", f"{layer.name}: narrowed r h")
        acc = matvec_acc(d.r[rows], v_rh, 0, f"{layer.name}: recurrent matvec (h)")
        rec = mul16(acc, d.mult_h[rows])
    t = store(tx[:, rows] + rec, "int32", f"{layer.name}: t (h)")
    z = t >> d.shift[rows].astype(np.int64)
    if layer.clip_q is not None:
        z = sat(z, -layer.clip_q, layer.clip_q)
    return z, gate_values(layer, d, z, "g")


def gru_update(d: QGruDirection, z: np.ndarray, n: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``h' = sat16(round_shift((z h << a_h) + ((2^q_f - z) n << a_n), s_u))`` (``tl_gru_update_s16``,
    §16): the LSTM's cell update (§7) with f = z, i = 1 - z, g = n, one rounding (half to even);
    ``z = 2^q_f`` keeps ``h`` exactly. z, n, h (B, H) -> h' (B, H) int16 Q(k)."""
    one = 1 << d.gate_q[0]
    zh = z * h
    zn = (one - z) * n
    if d.a_h:
        zh <<= d.a_h
    if d.a_n:
        zn <<= d.a_n
    return sat16(round_shift(zh + zn, d.s_u))  # int64, |sum| < 2^55 (§16)


def gru_output(layer: QGru, d: QGruDirection, h: np.ndarray) -> np.ndarray:
    """The int8 output ``sat8(zp + requant(h, y_mult, y_shift))`` of the int16 state (§16)."""
    return sat8(layer.zero_point + store(requant(h, d.y_mult, d.y_shift), "int32", f"{layer.name}: output requant"))


def gru_step(layer: QGru, d: QGruDirection, x: np.ndarray | None, h: np.ndarray,
             tx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One GRU step for a batch (``tl_gru_step_s8``, §16).

    x (B, I) int8 (or ``tx`` (B, 3H), its precomputed input side), h (B, H) int16 Q(k). Returns
    h' (B, H) int16, y (B, H) int8, z (B, 3H) int32 pre-activations (after clip), gates (B, 3H) int32
    (z, r, n)."""
    H = layer.hidden_size
    if tx is None:
        tx = input_side(layer, d, x[:, None, :])[:, 0]  # type: ignore[arg-type]
    v_h = state_input(d, h)
    z_zr, g_zr = gru_gates(layer, d, tx, v_h)
    z_h, n = gru_candidate(layer, d, tx, h, v_h, g_zr[:, H:])
    h_new = gru_update(d, g_zr[:, :H], n, h)
    return (h_new, gru_output(layer, d, h_new), np.concatenate([z_zr, z_h], axis=1),
            np.concatenate([g_zr, n], axis=1))


# ---------------------------------------------------------------------------------------
# a whole layer
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GruTrace:
    """Integer internals of one GRU direction, indexed by original time step."""

    pre: np.ndarray = field(repr=False)  # (B, T, 3H) int32 gate pre-activations z, r, h (after clip)
    gates: np.ndarray = field(repr=False)  # (B, T, 3H) int32 z, r, n in Q(q)
    state: np.ndarray = field(repr=False)  # (B, T, H) int16 Q(k)
    h: np.ndarray = field(repr=False)  # (B, T, H) int8 output
    valid: np.ndarray = field(repr=False)  # (B, T) bool: step processed

    @property
    def c(self) -> np.ndarray:
        """The int16 state under the LSTM trace's name for its int16 cell (validate counts the values
        at the int16 limits of both)."""
        return self.state


def run_gru(layer: QGru, x: np.ndarray, lens: np.ndarray, trace: bool = False, need_y: bool = True):
    """All directions of a layer: x (B, T, I) int8 values -> y (B, T, D*H) int8 (None when ``need_y``
    is False), the final int8 output per direction, no cells, traces. Through :mod:`.gru_fast` when
    every direction is planned and :data:`.checked.CHECKED` is off, else the checked kernels."""
    fast = None if checked.CHECKED else plans(layer)
    if fast is None or any(p is None for p in fast):
        return run_gru_checked(layer, x, lens, trace)
    rs = [run_gru_direction(layer, d, p, x, lens, need_y=need_y, trace=trace)
          for d, p in zip(layer.directions, fast, strict=True)]
    y = np.concatenate([r.y for r in rs], axis=2) if need_y else None
    return y, [r.h for r in rs], [], [GruTrace(*r.trace) for r in rs] if trace else []


def run_gru_checked(layer: QGru, x: np.ndarray, lens: np.ndarray, trace: bool = False):
    """``run_gru`` through the reference kernels, checking every stored value."""
    bsz, steps, _ = x.shape
    H = layer.hidden_size
    rows = np.arange(bsz)
    ys, hs, trs = [], [], []
    for d in layer.directions:
        tx_all = input_side(layer, d, x)
        h = np.broadcast_to(d.initial_h, (bsz, H)).astype(np.int64)
        yo = np.full((bsz, H), layer.zero_point, np.int64)  # final outputs (rows of length 0 keep zp)
        y = np.full((bsz, steps, H), layer.zero_point, dtype=np.int8)
        tr = (np.zeros((bsz, steps, 3 * H), np.int32), np.zeros((bsz, steps, 3 * H), np.int32),
              np.zeros((bsz, steps, H), np.int16), np.zeros((bsz, steps, H), np.int8), np.zeros((bsz, steps), bool))
        for s in range(steps):
            active = s < lens
            if not active.any():
                continue
            t_idx = np.where(active, lens - 1 - s, 0) if d.reverse else np.full(bsz, s)
            h2, y2, z, g = gru_step(layer, d, None, h, tx=tx_all[rows, t_idx])
            m = active[:, None]
            h = np.where(m, h2, h)
            yo = np.where(m, y2, yo)
            ra, ta = rows[active], t_idx[active]
            y[ra, ta] = y2[active]
            if trace:
                for a, v in zip(tr, (z, g, h2, y2), strict=False):
                    a[ra, ta] = v[active]
                tr[4][ra, ta] = True
        ys.append(y)
        hs.append(yo)
        if trace:
            trs.append(GruTrace(*tr))
    return np.concatenate(ys, axis=2), hs, [], trs


LAYERS[QGru] = run_gru

__all__ = ["GruTrace", "gru_candidate", "gru_gates", "gru_output", "gru_step", "gru_update", "run_gru",
           "run_gru_checked", "state_input"]
