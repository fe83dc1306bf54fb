"""How an integer LSTM's constants are stored for the C runtime (docs/quantization.md §5,
``codegen/runtime/tl_lstm.h``): weight encodings, the quad layout, table storage, the per-unit
constants and the step's scratch. Pure numpy: the emitter prints what this module decides."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..qmodel import QGru, QGruDirection, QLstm, QLstmDirection


def weight_ctype(w: np.ndarray) -> str:
    """The storage of an LSTM weight matrix: ``int8_t`` when every weight fits 8 bits (whatever
    the quantizer's dtype), else ``int16_t`` (printed as ``TL_W16(w)`` uint16 words)."""
    v = np.asarray(w)
    if v.size == 0 or (int(v.min()) >= -128 and int(v.max()) <= 127):
        return "int8_t"
    if int(v.min()) >= -32768 and int(v.max()) <= 32767:
        return "int16_t"
    raise ValueError("LSTM weights wider than 16 bits")  # internal: the quantizer makes int8/int16


def quad_layout(w: np.ndarray, hidden: int, inputs: int, wide: bool) -> np.ndarray:
    """Gate rows (4H, K) in i, f, g, o order -> the runtime's quad layout (H, ceil(K/4), 4 gates, 4).

    K is zero-padded to a multiple of 4; int16 weights (``wide``) are stored in quad order
    (k0, k2, k1, k3) to pair with the step's widened inputs, int8 weights in natural order
    (the SXTB16 kernel pairs them itself); see codegen/runtime/tl_lstm.h.
    """
    k4 = (inputs + 3) // 4 * 4
    g = np.zeros((4, hidden, k4), dtype=np.int64)
    g[:, :, :inputs] = np.asarray(w, dtype=np.int64).reshape(4, hidden, inputs)
    q = g.reshape(4, hidden, k4 // 4, 4).transpose(1, 2, 0, 3)  # (H, quads, gate, 4)
    if wide:
        q = q[..., [0, 2, 1, 3]]
    return q


def table_ctype(values: np.ndarray, fallback: str) -> str:
    """The storage of a const table: ``uint16_t`` when every entry fits [0, 65535], else ``fallback``."""
    v = np.asarray(values)
    if v.size == 0 or (int(v.min()) >= 0 and int(v.max()) <= 65535):
        return "uint16_t"
    return fallback


#: the fields of ``tl_lstm_unit_t`` (codegen/runtime/tl_lstm.h), in order
UNIT_FIELDS = ("bias", "mult", "shift")


def unit_constants(d: QLstmDirection | QGruDirection, hidden: int, gates: int = 4) -> np.ndarray:
    """``tl_lstm_unit_t`` of every hidden unit: (H, 4 gates i, f, g, o, 3) int64 with the fields of
    :data:`UNIT_FIELDS`: the bias ``B``, the multipliers packed as ``mx | mh << 16`` (one word for
    SMLAWB / SMLAWT) and the shift ``s`` (spec §6). ``gates=3``: a GRU direction's rows z, r, h."""
    mx = np.asarray(d.mult_x, np.int64)
    mh = np.asarray(d.mult_h, np.int64)
    s = np.asarray(d.shift, np.int64)
    if mx.size and (min(mx.min(), mh.min()) < 0 or max(mx.max(), mh.max()) >= 1 << 15):
        raise ValueError("gate multiplier outside [0, 2^15)")  # internal: the quantizer guarantees it
    if s.size and (s.min() < 0 or s.max() > 31):
        raise ValueError("gate shift outside [0, 31]")  # internal: the quantizer guarantees [4, 30]
    cols = [np.asarray(d.bias, np.int64), mx | (mh << 16), s]
    return np.stack([c.reshape(gates, hidden).T for c in cols], axis=-1)  # (H, gates, 3)


def scratch_bytes(inputs: int, hidden: int) -> int:
    """TL_LSTM_SCRATCH_BYTES(I, H): widened x and h (int16, quad-padded) and the new h."""
    return 8 * ((inputs + 3) // 4) + 8 * ((hidden + 3) // 4) + hidden


def gru_scratch_bytes(inputs: int, hidden: int, linear_before_reset: bool) -> int:
    """TL_GRU_SCRATCH_BYTES(I, H, LBR) (codegen/runtime/tl_gru.h): x widened and the state narrowed
    (int16, quad-padded); without linear_before_reset also the reset products (int16) and the update
    gates (int32)."""
    base = 8 * ((inputs + 3) // 4) + 8 * ((hidden + 3) // 4)
    return base if linear_before_reset else base + 8 * ((hidden + 3) // 4) + 4 * hidden


def layer_scratch_bytes(layer: QLstm | QGru) -> int:
    """The step scratch of one recurrent layer (LSTM or GRU)."""
    if isinstance(layer, QGru):
        return gru_scratch_bytes(layer.input_size, layer.hidden_size, layer.linear_before_reset)
    return scratch_bytes(layer.input_size, layer.hidden_size)


def scratch_halves(layers: Iterable[QLstm | QGru]) -> int:
    """int16 elements of the scratch every step shares: the largest layer's (LSTM or GRU), in whole
    words (0: no recurrent layer)."""
    need = max((layer_scratch_bytes(n) for n in layers), default=0)
    return (need + 3) // 4 * 2
