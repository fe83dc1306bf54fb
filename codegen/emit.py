"""The C emitter: an integer model -> ``{filename: text}`` (pure), and :func:`generate_c`.

Generated files (``p`` = the prefix):

- ``p.h`` / ``p.c``: the public API (``p_state_t``, ``p_reset``, ``p_step``, ``p_run``), the
  model's const weights and tables, one params initializer per layer and thin per-model code
  calling the runtime; everything not public is ``static``;
- the runtime (``tl_*.h``, ``tl_*.c``), copied verbatim from ``codegen/runtime/``;
- ``CMakeLists.txt``, ``p.mk`` (Makefile fragment), ``p_example.c``.

Nothing from the model reaches the C text except through :func:`names.c_ident` (identifiers) and
:func:`names.c_comment` (comments). The output is deterministic: no timestamps; the banner holds
the tinylstm version and a hash of the model. Semantics: docs/quantization.md; API: docs/c-api.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._version import __version__
from ..digest import tree_sha256
from ..fixedpoint import Lut
from ..qmodel import (
    QDense,
    QFeatureGather,
    QInput,
    QLstm,
    QLstmState,
    QSelectStep,
    QSoftmax,
    QTable,
    QuantizedModel,
)
from .cformat import C_SIZES, c_float, c_int, check_range, const_array, smallest_unsigned_or
from .names import c_comment, c_ident, check_prefix
from .plan import Plan, make_plan
from .project import build_files, example_c
from .runtime_files import RUNTIME_SOURCES, runtime_files
from .writer import write_tree

# sizes on a 32-bit target (4-byte pointers), for <P>_FLASH_BYTES
_SIZEOF_LUT = 20
_SIZEOF_UNIT = 88
_SIZEOF_LSTM_PARAMS = 8 + 24 + 4 + 4 + 24 + 16 + 3 * _SIZEOF_LUT + 24
_SIZEOF_DENSE_PARAMS = 36
_SIZEOF_SOFTMAX_PARAMS = 28


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


def fast_requant_ok(mult: np.ndarray, shift: np.ndarray) -> bool:
    """True when ``tl_requant_odd`` is exact for every pair: mult odd with shift in [33, 62], or mult 0."""
    m = np.asarray(mult, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    return bool(np.all((m == 0) | (((m & 1) == 1) & (s >= 33) & (s <= 62))))


def fast_lut_ok(lut: Lut) -> bool:
    """True when a table suits the fast paths (TL_LSTM_FAST_LUT): a point-symmetric uint16 half
    table whose interpolation sum ``|T[j+1] - T[j]| * (2^shift - 1)`` plus the rounding addend
    ``2^(shift-1)`` stays below 2^31 (the Armv7E-M kernel rounds on that sum in one register)."""
    t = np.asarray(lut.table, dtype=np.int64)
    if not lut.sym or t.min() < 0 or t.max() > 0xFFFF:
        return False
    step = int(np.abs(np.diff(t)).max()) if t.size > 1 else 0
    return step * ((1 << lut.shift) - 1) + (1 << lut.shift) < 2**31


def fast_cell_ok(q_f: int, q_g: int, a_fc: int, a_ig: int, s_c: int) -> bool:
    """True when the cell update has the short form of the fast paths (TL_LSTM_FAST_CELL): gate
    tables in Q(15), so c << a_fc and g << a_ig fit int32, 1 <= s_c <= 31, and the rounded
    quotient (at most 2^15 + 2^23 + 1 in magnitude, spec sec. 7) fits int32."""
    return q_f == 15 and q_g == 15 and 0 <= a_fc <= 15 and 0 <= a_ig <= 15 and 1 <= s_c <= 31


def fast_note(fast: int) -> str:
    parts = [n for bit, n in ((1, "odd multipliers, shift >= 33"), (2, "symmetric uint16 tables"),
                              (4, "Q(15) gates, short cell update")) if fast & bit]
    return "; ".join(parts) or "general paths"


def scratch_bytes(inputs: int, hidden: int) -> int:
    """TL_LSTM_SCRATCH_BYTES(I, H): widened x and h (int16, quad-padded) and the new h."""
    return 8 * ((inputs + 3) // 4) + 8 * ((hidden + 3) // 4) + hidden


def model_hash(model: QuantizedModel) -> str:
    """SHA-256 over every field of the integer model but ``source`` (the path it was read from),
    so the same model gives the same C wherever its file lies."""
    return tree_sha256(model, lambda obj, name: isinstance(obj, QuantizedModel) and name == "source")


class _Emitter:
    def __init__(self, plan: Plan, prefix: str):
        self.plan = plan
        self.nodes = plan.nodes
        self.p = prefix
        self.P = prefix.upper()
        self.data: list[str] = []  # const data blocks, in order
        self.flash = 0
        self.tables: dict[tuple[str, bytes], str] = {}
        self.fields: list[tuple[int, str]] = []  # (alignment, declaration) of the state struct
        self.fixed_ram = 0  # state bytes besides the workspace
        self.scratch_halves = 0  # int16 elements of the LSTM step scratch (0: no LSTM)
        self.lstm_fast: dict[int, int] = {}  # id(direction) -> its TL_LSTM_FAST_* flags

    # ---- names ---------------------------------------------------------------------------
    def fid(self, k: int) -> str:
        """Name of node k's fields in the state struct."""
        return f"n{k}_{c_ident(self.nodes[k].name, 'node')}"

    def nid(self, k: int) -> str:
        """Name of node k's static data: prefixed, so it can never meet a public name."""
        return f"{self.p}_{self.fid(k)}"

    def describe(self, k: int) -> str:
        n = self.nodes[k]
        return f"node {k}: {type(n).__name__[1:]} '{c_comment(n.name, 80)}'"

    # ---- const data ---------------------------------------------------------------------
    def array(self, ctype: str, name: str, values: np.ndarray, comment: str, per_line: int = 16) -> str:
        arr = np.asarray(values)
        self.data.append(const_array(ctype, name, arr, comment, per_line))
        self.flash += (C_SIZES[ctype] * int(arr.size) + 3) // 4 * 4  # arrays start 4-byte aligned
        return name

    def weights(self, ctype: str, name: str, values: np.ndarray, comment: str) -> str:
        """LSTM weights: int8_t as they are; int16 as TL_W16(w) words (uint16_t, tl_lstm.h)."""
        if ctype == "int8_t":
            return self.array(ctype, name, values, comment)
        flat = np.asarray(values).reshape(-1).astype(np.int64)
        check_range("int16_t", flat, name)
        lines = [", ".join(f"TL_W16({int(v)})" for v in flat[i : i + 12]) + "," for i in range(0, flat.size, 12)]
        self.data.append(f"/* {comment}; stored as TL_W16 words */\nstatic const uint16_t {name}[{flat.size}] = {{\n"
                         + "\n".join("    " + ln for ln in lines) + "\n};\n")
        self.flash += (2 * int(flat.size) + 3) // 4 * 4
        return name

    def table(self, values: np.ndarray, fallback: str, comment: str) -> tuple[str, str]:
        """A deduplicated const table: returns (name, ctype)."""
        v = np.asarray(values).astype(np.int64).reshape(-1)
        ctype = smallest_unsigned_or(v, fallback)
        key = (ctype, v.tobytes())
        if key not in self.tables:
            name = f"{self.p}_table{len(self.tables)}"
            self.tables[key] = name
            self.array(ctype, name, v, comment)
        return self.tables[key], ctype

    @staticmethod
    def table_ctype(lut: Lut) -> str:
        return smallest_unsigned_or(np.asarray(lut.table).astype(np.int64).reshape(-1), "int32_t")

    def lut(self, lut: Lut, in_what: str) -> str:
        name, ctype = self.table(
            lut.table, "int32_t",
            f"{c_comment(lut.function, 60)}: {'half table (point-symmetric)' if lut.sym else 'full table'}, "
            f"{lut.n} segments, grid 2^-{lut.x_frac}, output Q({lut.q})",
        )
        ptrs = f"{name}, 0" if ctype == "uint16_t" else f"0, {name}"
        return (f"{{{ptrs}, {lut.n}, {lut.sym}, {lut.shift}}} /* {c_comment(lut.function, 60)}: "
                f"{in_what} Q({lut.in_frac}) -> Q({lut.q}) */")

    def field(self, ctype: str, decl: str, count: int, comment: str) -> None:
        self.fields.append((C_SIZES[ctype], f"    {ctype} {decl}; /* {comment} */"))
        self.fixed_ram += C_SIZES[ctype] * count

    @staticmethod
    def weight_type(w: np.ndarray) -> str:
        """int8_t when every weight fits 8 bits (whatever the quantizer's dtype), else int16_t."""
        v = np.asarray(w)
        if v.size == 0 or (int(v.min()) >= -128 and int(v.max()) <= 127):
            return "int8_t"
        if int(v.min()) >= -32768 and int(v.max()) <= 32767:
            return "int16_t"
        raise ValueError("LSTM weights wider than 16 bits")  # internal: the quantizer makes int8/int16

    # ---- per node -----------------------------------------------------------------------
    def emit_lstm(self, k: int, n: QLstm) -> None:
        nid, H, I, D = self.nid(k), n.hidden_size, n.input_size, n.num_directions
        P = n.pre_frac
        self.data.append(f"/* ---- {self.describe(k)}: I={I}, H={H}, "
                         f"{'bidirectional' if D == 2 else ('reverse' if n.directions[0].reverse else 'forward')}, "
                         f"gate pre-activations Q({P}) ---- */\n")
        params = []
        for di, d in enumerate(n.directions):
            base = f"{nid}_d{di}"
            tx = self.weight_type(d.w)
            th = self.weight_type(d.r)
            self.weights(tx, f"{base}_wx", quad_layout(d.w, H, I, tx == "int16_t"),
                         f"direction {di}: input weights W (I={I}), quad layout [unit][quad][gate i, f, g, o][4] "
                         f"(tl_lstm.h), {tx[:-2]} per-row scale")
            self.weights(th, f"{base}_wh", quad_layout(d.r, H, H, th == "int16_t"),
                         f"direction {di}: recurrent weights R (H={H}), quad layout, {th[:-2]}")
            cols = [d.effb_x, d.mult_x, d.effb_h, d.mult_h, d.bias, d.shift_x, d.shift_h]
            rows = np.stack([np.asarray(c, np.int64).reshape(4, H).T for c in cols], axis=-1)  # (H, 4, 7)
            if (rows[..., 5:] < 0).any() or (rows[..., 5:] > 62).any():
                raise ValueError("requantization shift outside [0, 62]")  # internal: the quantizer guarantees it
            # a zero multiplier gives 0 at any shift: give it shift 33 so the fast path applies
            for m_col, s_col in ((1, 5), (3, 6)):
                rows[..., s_col] = np.where(rows[..., m_col] == 0, 33, rows[..., s_col])
            pairs = [(rows[..., 1], rows[..., 5]), (rows[..., 3], rows[..., 6]),
                     (np.asarray(d.h_mult, np.int64), np.asarray(d.h_shift, np.int64))]
            fast = 0
            if all(fast_requant_ok(m, sh) for m, sh in pairs):
                fast |= 1  # TL_LSTM_FAST_REQUANT
            if all(fast_lut_ok(lut) and self.table_ctype(lut) == "uint16_t" for lut in (d.lut_f, d.lut_g, d.lut_h)):
                fast |= 2  # TL_LSTM_FAST_LUT
            if fast_cell_ok(d.lut_f.q, d.lut_g.q, d.a_fc, d.a_ig, d.s_c):
                fast |= 4  # TL_LSTM_FAST_CELL
            self.lstm_fast[id(d)] = fast
            lines = []
            for j in range(H):
                u = rows[j]  # (4 gates, 7 columns)
                fields = ", ".join("{" + ", ".join(c_int(v - (33 if col >= 5 else 0)) for v in u[:, col]) + "}"
                                   for col in (0, 2, 1, 3, 4, 5, 6))
                lines.append(f"    {{{fields}}},")
            self.data.append(
                f"/* direction {di}: per unit, per gate i, f, g, o: effb_x, effb_h, mult_x, mult_h, bias Q({P}), "
                f"shift_x - 33, shift_h - 33 */\nstatic const tl_lstm_unit_t {base}_units[{H}] = {{\n"
                + "\n".join(lines) + "\n};\n")
            self.flash += _SIZEOF_UNIT * H
            peep = "0"
            if d.peep is not None:
                peep = self.array("int16_t", f"{base}_peep", np.asarray(d.peep).T,
                                  f"direction {di}: peepholes (H={H}, 3) i, f, o, int16 per-gate scale")
            pm = ", ".join(c_int(v) for v in np.asarray(d.peep_mult).reshape(-1))
            ps = ", ".join(c_int(v) for v in np.asarray(d.peep_shift).reshape(-1))
            k_c = d.cell_frac
            params.append(
                "    {\n"
                f"        .input_size = {I},\n"
                f"        .hidden_size = {H},\n"
                f"        .wx = {base + '_wx' if tx == 'int8_t' else '0'},\n"
                f"        .wx16 = {base + '_wx' if tx == 'int16_t' else '0'},\n"
                f"        .wh = {base + '_wh' if th == 'int8_t' else '0'},\n"
                f"        .wh16 = {base + '_wh' if th == 'int16_t' else '0'},\n"
                f"        .fast = {fast}, /* TL_LSTM_FAST_*: {fast_note(fast)} */\n"
                "        .w16_encoding = &TL_W16_ENCODING,\n"
                f"        .units = {base}_units,\n"
                f"        .peep = {peep},\n"
                f"        .peep_mult = {{{pm}}}, /* pq * c: Q({k_c}) -> Q({P}) */\n"
                f"        .peep_shift = {{{ps}}},\n"
                f"        .has_clip = {0 if n.clip_q is None else 1},\n"
                f"        .clip_q = {c_int(n.clip_q or 0)}, /* Q({P}) */\n"
                f"        .input_forget = {int(bool(n.input_forget))},\n"
                f"        .one_f = {1 << d.lut_f.q}, /* 1.0 in Q({d.lut_f.q}) */\n"
                f"        .lut_f = {self.lut(d.lut_f, 'i, f, o gates:')},\n"
                f"        .lut_g = {self.lut(d.lut_g, 'cell candidate:')},\n"
                f"        .lut_h = {self.lut(d.lut_h, 'cell output, cell')},\n"
                f"        .a_fc = {d.a_fc}, /* f*c: Q({d.lut_f.q}+{k_c}) << {d.a_fc} */\n"
                f"        .a_ig = {d.a_ig}, /* i*g: Q({d.lut_f.q}+{d.lut_g.q}) << {d.a_ig} */\n"
                f"        .s_c = {d.s_c}, /* -> cell Q({k_c}) */\n"
                f"        .h_mult = {c_int(d.h_mult)}, /* o*h_act(c): Q({d.lut_f.q}+{d.lut_h.q}) -> int8 h */\n"
                f"        .h_shift = {d.h_shift},\n"
                f"        .h_zero_point = {n.zero_point},\n"
                "    },"
            )
            self.flash += _SIZEOF_LSTM_PARAMS
        self.data.append(f"static const tl_lstm_params_t {nid}[{D}] = {{\n" + "\n".join(params) + "\n};\n")
        h0 = np.stack([np.asarray(d.initial_h).reshape(-1) for d in n.directions])
        c0 = np.stack([np.asarray(d.initial_c).reshape(-1) for d in n.directions])
        if np.unique(h0).size > 1:
            self.array("int8_t", f"{nid}_h0", h0, "initial hidden state (D, H), int8")
        if np.unique(c0).size > 1:
            self.array("int16_t", f"{nid}_c0", c0, "initial cell state (D, H), int16 Q(k)")
        readers = [j for j in self.plan.live if getattr(self.nodes[j], "src", None) == k and j > 0
                   and not isinstance(self.nodes[j], QLstmState)]
        if self.plan.streaming and self.lens_kind(k) != "none" and (readers or k == self.plan.out_index):
            self.array("int8_t", f"{nid}_pad", np.full(H, n.zero_point), "output at steps past the sequence length")
        fid = self.fid(k)
        self.field("int16_t", f"{fid}_c[{D}][{H}]", D * H, f"LSTM {k} cell (D, H), int16, Q(k) per direction")
        self.field("int8_t", f"{fid}_h[{D}][{H}]", D * H, f"LSTM {k} hidden (D, H), int8 (s_h, zp_h = {n.zero_point})")

    def emit_dense(self, k: int, n: QDense) -> None:
        nid = self.nid(k)
        self.data.append(f"/* ---- {self.describe(k)}: {n.weight.shape[1]} -> {n.features}"
                         f"{', fused Relu' if n.fused else ''} ---- */\n")
        self.array("int8_t", f"{nid}_w", n.weight, f"weight ({n.features}, {n.weight.shape[1]}), int8 per-row scale")
        self.array("int32_t", f"{nid}_b", n.eff_bias, "effective bias, int32 at s_x * s_W[r]", 8)
        self.array("int32_t", f"{nid}_m", n.mult, "requantization multipliers: acc -> output scale", 8)
        self.array("int8_t", f"{nid}_s", n.shift, "requantization shifts")
        self.data.append(
            f"static const tl_dense_params_t {nid} = {{\n"
            f"    .in_features = {n.weight.shape[1]},\n    .out_features = {n.features},\n"
            f"    .weight = {nid}_w,\n    .eff_bias = {nid}_b,\n    .mult = {nid}_m,\n    .shift = {nid}_s,\n"
            f"    .zero_point = {n.zero_point},\n    .act_min = {n.act_min},\n    .act_max = {n.act_max},\n}};\n")
        self.flash += _SIZEOF_DENSE_PARAMS

    def emit_table(self, k: int, n: QTable) -> None:
        self.data.append(f"/* ---- {self.describe(k)}: {c_comment(n.activation, 60)} on int8 ---- */\n")
        self.array("int8_t", f"{self.nid(k)}_table", n.table, "y = table[x + 128]")

    def emit_softmax(self, k: int, n: QSoftmax) -> None:
        nid = self.nid(k)
        self.data.append(f"/* ---- {self.describe(k)}: {'LogSoftmax' if n.log else 'Softmax'} over "
                         f"{n.features} ---- */\n")
        e, et = self.table(n.exp_table, "int32_t", "exp table: rint(2^15 exp(-m s_x)), m = 0..255")
        if et != "uint16_t":
            raise ValueError("softmax exp table outside [0, 65535]")  # internal: entries are <= 2^15
        l2 = "0"
        if n.log:
            l2, lt = self.table(n.log2_table, "int32_t", "log2 table: rint(2^16 log2(1 + t/256)), t = 0..256")
            if lt != "int32_t":
                raise ValueError("log2 table must be int32")  # internal: LOG2[256] = 65536
        self.data.append(
            f"static const tl_softmax_params_t {nid} = {{\n    .features = {n.features},\n"
            f"    .exp_table = {e},\n    .log2_table = {l2},\n    .l_mult = {c_int(n.l_mult)},\n"
            f"    .l_shift = {n.l_shift},\n    .d_mult = {c_int(n.d_mult)},\n    .d_shift = {n.d_shift},\n}};\n")
        self.flash += _SIZEOF_SOFTMAX_PARAMS

    def emit_gather(self, k: int, n: QFeatureGather) -> None:
        self.data.append(f"/* ---- {self.describe(k)}: {n.features} features ---- */\n")
        if self.nodes[n.src].features > 65536:
            raise ValueError("feature gather over more than 65536 features")
        self.array("uint16_t", f"{self.nid(k)}_idx", n.indices, "y[i] = x[idx[i]]")

    # ---- value expressions ------------------------------------------------------------------
    def lens_kind(self, k: int) -> str:
        n = self.nodes[k]
        assert isinstance(n, QLstm)
        if n.sequence_lens_is_input:
            return "input"
        if n.sequence_lens is not None:
            return "const"
        return "none"

    def const_len(self, k: int) -> int:
        return int(np.asarray(self.nodes[k].sequence_lens).reshape(-1)[0])

    def len_full(self, k: int) -> str:
        """The valid length of LSTM k in a whole-sequence context (``steps``, ``len`` in scope)."""
        kind = self.lens_kind(k)
        if kind == "input":
            return "len"
        if kind == "const":
            c = self.const_len(k)
            return f"(steps < {c} ? steps : {c})"
        return "steps"

    def step_valid(self, k: int) -> str | None:
        """Streaming: condition for step ``t`` of LSTM k to be processed (None: always)."""
        kind = self.lens_kind(k)
        if kind == "input":
            return "t < len"
        if kind == "const":
            return f"t < {self.const_len(k)}"
        return None

    def sval(self, k: int) -> str:
        """Streaming: pointer to node k's value at the current step."""
        n = self.nodes[k]
        if isinstance(n, QInput):
            return "xs"
        if isinstance(n, QLstm):
            h = f"s->{self.fid(k)}_h[0]"
            cond = self.step_valid(k)
            return f"({cond} ? {h} : {self.nid(k)}_pad)" if cond else h
        return f"s->{self.fid(k)}_v"

    def bval(self, k: int) -> str:
        """Buffered: pointer to node k's value at step ``t``."""
        n = self.nodes[k]
        if isinstance(n, QInput):
            return "s->xin" if self.plan.input.perm else f"&x[t * {n.features}]"
        if isinstance(n, QLstm):
            off = self.plan.buffer_of(k)
            assert off is not None
            return f"&s->ws[{off} * {self.P}_MAX_STEPS + t * {n.features}]"
        return f"s->{self.fid(k)}_v"

    def compute(self, k: int, val: Callable[[int], str]) -> str:
        """The call computing node k's value (non-LSTM, non-state) into its state vector."""
        n = self.nodes[k]
        out = f"s->{self.fid(k)}_v"
        nid = self.nid(k)
        if isinstance(n, QFeatureGather):
            return f"tl_gather_s8({val(n.src)}, {nid}_idx, {n.features}, {out});"
        if isinstance(n, QDense):
            return f"tl_dense_s8(&{nid}, {val(n.src)}, {out});"
        if isinstance(n, QTable):
            return f"tl_table_s8({nid}_table, {val(n.src)}, {n.features}, {out});"
        if isinstance(n, QSoftmax):
            return f"tl_softmax_s8(&{nid}, {val(n.src)}, {out});"
        raise TypeError(type(n).__name__)  # pragma: no cover

    # ---- code ---------------------------------------------------------------------------------
    def is_seq(self, k: int) -> bool:
        return self.nodes[k].kind == "seq"

    def chain(self, k: int) -> list[int]:
        """Buffered: the non-base sequence nodes to compute (in order) for node k's value at t."""
        out = []
        while True:
            n = self.nodes[k]
            if isinstance(n, (QInput, QLstm)):
                break
            out.append(k)
            k = n.src
        return sorted(out)

    def chain_code(self, k: int, ind: str) -> list[str]:
        lines = []
        base = k
        while not isinstance(self.nodes[base], (QInput, QLstm)):
            base = self.nodes[base].src
        if isinstance(self.nodes[base], QInput) and self.plan.input.perm:
            lines.append(f"{ind}tl_gather_s8(&x[t * {self.plan.input.features}], {self.p}_in_perm, "
                         f"{self.plan.input.features}, s->xin);")
        for c in self.chain(k):
            lines.append(ind + f"/* {self.describe(c)} */")
            lines.append(ind + self.compute(c, self.bval))
        return lines

    def write_out(self, dst: str, val: str, ind: str) -> str:
        o = self.plan.output
        if o.perm:
            return f"{ind}tl_gather_s8({val}, {self.p}_out_perm, {o.features}, {dst});"
        return f"{ind}tl_copy_s8({dst}, {val}, {o.features});"

    def vec_nodes(self) -> list[int]:
        return [k for k in self.plan.live if not self.is_seq(k) and not isinstance(self.nodes[k], QSelectStep)]

    def selects(self) -> list[int]:
        return self.plan.live_of(QSelectStep)

    def vec_eval_fn(self) -> list[str]:
        ks = self.vec_nodes()
        if not ks:
            return []
        L = ["/* The vector (non-sequence) nodes, from the final LSTM states and the captured steps. */",
             f"static void {self.p}_vec_eval({self.p}_state_t *s, int32_t steps, int32_t len)", "{",
             "    (void)steps;", "    (void)len;"]
        for k in ks:
            n = self.nodes[k]
            L.append(f"    /* {self.describe(k)} */")
            if isinstance(n, QLstmState):
                src = self.nodes[n.src]
                H = src.hidden_size
                sfid = self.fid(n.src)
                kind = self.lens_kind(n.src)
                empty = None
                if kind == "input":
                    empty = "len == 0"
                elif kind == "const" and self.const_len(n.src) == 0:
                    empty = "1"
                for di in range(src.num_directions):
                    dst = f"s->{self.fid(k)}_v + {di * H}"
                    if n.which == "h":
                        body = f"tl_copy_s8({dst}, s->{sfid}_h[{di}], {H});"
                        zp = src.zero_point
                    else:
                        body = (f"tl_requant_s16_s8(s->{sfid}_c[{di}], {H}, {c_int(n.mult[di])}, {n.shift[di]}, "
                                f"{n.zero_point}, {dst});")
                        zp = n.zero_point
                    fill = f"tl_fill_s8({dst}, {H}, {zp}); /* no step processed */"
                    if empty is None:
                        L.append("    " + body)
                    elif empty == "1":
                        L.append("    " + fill)
                    else:
                        L += [f"    if ({empty}) {{", "        " + fill, "    } else {", "        " + body, "    }"]
            else:
                L.append("    " + self.compute(k, lambda j: f"s->{self.fid(j)}_v"))
        L += ["}", ""]
        return L

    def step_kernel(self, n: QLstm) -> str:
        """tl_lstm_step_fast when every direction of the layer allows it (tl_lstm.h: all three fast flags,
        int16 weights, no peepholes, clip or coupled gates), else the general step."""
        fast = (all(self.lstm_fast.get(id(d)) == 7 and d.peep is None
                    and self.weight_type(d.w) == self.weight_type(d.r) == "int16_t" for d in n.directions)
                and not n.input_forget and n.clip_q is None)
        return "tl_lstm_step_fast" if fast else "tl_lstm_step_s8"

    def seq_step_fn(self) -> list[str]:
        L = ["/* One time step of every sequence node (streaming). xs: the step's canonical input. */",
             f"static void {self.p}_seq_step({self.p}_state_t *s, const int8_t *xs, int32_t t, int32_t len)", "{",
             "    (void)xs;", "    (void)t;", "    (void)len;"]
        for k in self.plan.live:
            n = self.nodes[k]
            if not self.is_seq(k) or isinstance(n, QInput):
                continue
            L.append(f"    /* {self.describe(k)} */")
            if isinstance(n, QLstm):
                nid, fid = self.nid(k), self.fid(k)
                call = [f"{self.step_kernel(n)}(&{nid}[0], {self.sval(n.src)}, s->{fid}_h[0], s->{fid}_c[0], "
                        "s->scratch);",
                        f"{self.P}_TRACE_STEP({k}, 0, t, s->{fid}_h[0], s->{fid}_c[0]);"]
                cond = self.step_valid(k)
                if cond:
                    L += [f"    if ({cond}) {{"] + ["        " + c for c in call] + ["    }"]
                else:
                    L += ["    " + c for c in call]
            else:
                L.append("    " + self.compute(k, self.sval))
        L += ["}", ""]
        return L

    def reset_fn(self) -> list[str]:
        L = [f"void {self.p}_reset({self.p}_state_t *s)", "{", "    s->t = 0;"]
        for k in self.plan.live_of(QLstm):
            n = self.nodes[k]
            nid, fid, H, D = self.nid(k), self.fid(k), n.hidden_size, n.num_directions
            h0 = np.stack([np.asarray(d.initial_h).reshape(-1) for d in n.directions])
            c0 = np.stack([np.asarray(d.initial_c).reshape(-1) for d in n.directions])
            for d in range(D):
                if np.unique(h0).size > 1:
                    L.append(f"    tl_copy_s8(s->{fid}_h[{d}], &{nid}_h0[{d * H}], {H});")
                else:
                    L.append(f"    tl_fill_s8(s->{fid}_h[{d}], {H}, {int(h0.reshape(-1)[0])});")
                if np.unique(c0).size > 1:
                    L.append(f"    for (int32_t j = 0; j < {H}; ++j) {{")
                    L.append(f"        s->{fid}_c[{d}][j] = {nid}_c0[{d * H} + j];")
                    L.append("    }")
                else:
                    L.append(f"    for (int32_t j = 0; j < {H}; ++j) {{")
                    L.append(f"        s->{fid}_c[{d}][j] = {int(c0.reshape(-1)[0])};")
                    L.append("    }")
        L += ["}", ""]
        return L

    def select_target(self, k: int) -> str:
        idx = self.nodes[k].index
        return f"steps - {-idx}" if idx < 0 else str(idx)

    def run_prologue(self, fn: str, with_len: bool) -> list[str]:
        o = self.plan.output
        out_count = f"steps * {o.features}" if self.plan.output_seq else str(o.features)
        bad = ["steps < 1"]
        if not self.plan.streaming:
            bad.append(f"steps > {self.P}_MAX_STEPS")
        for k in self.selects():
            t = self.select_target(k)
            bad.append(f"{t} < 0" if self.nodes[k].index < 0 else f"steps <= {t}")
        args = "int32_t steps, int32_t len" if with_len else "int32_t steps"
        L = [f"void {fn}({self.p}_state_t *s, const int8_t *x, {args}, int8_t *y)", "{"]
        if not with_len:
            L.append("    const int32_t len = steps;")
        zp = self.nodes[-1].zero_point
        L += [f"    {self.p}_reset(s);", f"    if ({' || '.join(bad)}) {{"]
        if self.plan.output_seq:
            L += ["        if (steps > 0) {", f"            tl_fill_s8(y, {out_count}, {zp});", "        }"]
        else:
            L.append(f"        tl_fill_s8(y, {out_count}, {zp});")
        L += ["        return;", "    }"]
        if with_len:
            L += ["    if (len < 0) {", "        len = 0;", "    } else if (len > steps) {", "        len = steps;",
                  "    }"]
        L.append("    (void)len;")
        return L

    def run_streaming(self, fn: str, with_len: bool) -> list[str]:
        F = self.plan.input.features
        L = self.run_prologue(fn, with_len)
        L.append("    for (int32_t t = 0; t < steps; ++t) {")
        if self.plan.input.perm:
            L.append(f"        tl_gather_s8(&x[t * {F}], {self.p}_in_perm, {F}, s->xin);")
            L.append(f"        {self.p}_seq_step(s, s->xin, t, len);")
        else:
            L.append(f"        {self.p}_seq_step(s, &x[t * {F}], t, len);")
        for k in self.selects():
            n = self.nodes[k]
            L += [f"        if (t == {self.select_target(k)}) {{ /* {self.describe(k)} */",
                  f"            tl_copy_s8(s->{self.fid(k)}_v, {self.sval(n.src)}, {n.features});", "        }"]
        if self.plan.output_seq:
            L.append(self.write_out(f"&y[t * {self.plan.output.features}]", self.sval(self.plan.out_index),
                                    "        "))
        L.append("    }")
        if not self.plan.output_seq:
            if self.vec_nodes():
                L.append(f"    {self.p}_vec_eval(s, steps, len);")
            L.append(self.write_out("y", f"s->{self.fid(self.plan.out_index)}_v", "    "))
        L += ["}", ""]
        return L

    def run_buffered(self, fn: str, with_len: bool) -> list[str]:
        L = self.run_prologue(fn, with_len)
        for k in self.plan.live_of(QLstm):
            n = self.nodes[k]
            nid, fid, H, F = self.nid(k), self.fid(k), n.hidden_size, n.features
            off = self.plan.buffer_of(k)
            L.append(f"    {{ /* {self.describe(k)} */")
            L.append(f"        const int32_t n_valid = {self.len_full(k)};")
            for di, d in enumerate(n.directions):
                L.append(f"        for (int32_t i = 0; i < n_valid; ++i) {{ /* direction {di}: "
                         f"{'reverse' if d.reverse else 'forward'} */")
                L.append(f"            const int32_t t = {'n_valid - 1 - i' if d.reverse else 'i'};")
                L.append("            (void)t;")
                L += self.chain_code(n.src, "            ")
                L.append(f"            {self.step_kernel(n)}(&{nid}[{di}], {self.bval(n.src)}, s->{fid}_h[{di}], "
                         f"s->{fid}_c[{di}], s->scratch);")
                L.append(f"            {self.P}_TRACE_STEP({k}, {di}, t, s->{fid}_h[{di}], s->{fid}_c[{di}]);")
                if off is not None:
                    L.append(f"            tl_copy_s8(&s->ws[{off} * {self.P}_MAX_STEPS + t * {F} + {di * H}], "
                             f"s->{fid}_h[{di}], {H});")
                L.append("        }")
                if off is not None:
                    L += ["        for (int32_t t = n_valid; t < steps; ++t) {",
                          f"            tl_fill_s8(&s->ws[{off} * {self.P}_MAX_STEPS + t * {F} + {di * H}], "
                          f"{H}, {n.zero_point});",
                          "        }"]
            L.append("    }")
        for k in self.selects():
            n = self.nodes[k]
            L.append(f"    {{ /* {self.describe(k)} */")
            L.append(f"        const int32_t t = {self.select_target(k)};")
            L += self.chain_code(n.src, "        ")
            L.append(f"        tl_copy_s8(s->{self.fid(k)}_v, {self.bval(n.src)}, {n.features});")
            L.append("    }")
        out = self.plan.out_index
        if self.plan.output_seq:
            L.append("    for (int32_t t = 0; t < steps; ++t) {")
            L += self.chain_code(out, "        ")
            L.append(self.write_out(f"&y[t * {self.plan.output.features}]", self.bval(out), "        "))
            L.append("    }")
        else:
            if self.vec_nodes():
                L.append(f"    {self.p}_vec_eval(s, steps, len);")
            L.append(self.write_out("y", f"s->{self.fid(out)}_v", "    "))
        L += ["}", ""]
        return L

    def step_fn(self) -> list[str]:
        F = self.plan.input.features
        L = [f"void {self.p}_step({self.p}_state_t *s, const int8_t *x, int8_t *y)", "{",
             "    const int32_t t = s->t;", "    const int32_t len = INT32_MAX;",
             "    const int32_t steps = INT32_MAX;", "    (void)len;", "    (void)steps;"]
        if self.plan.input.perm:
            L += [f"    tl_gather_s8(x, {self.p}_in_perm, {F}, s->xin);", f"    {self.p}_seq_step(s, s->xin, t, len);"]
        else:
            L.append(f"    {self.p}_seq_step(s, x, t, len);")
        for k in self.selects():
            n = self.nodes[k]
            L.append(f"    tl_copy_s8(s->{self.fid(k)}_v, {self.sval(n.src)}, {n.features}); /* {self.describe(k)} */")
        out = self.plan.out_index
        if self.plan.output_seq:
            L.append(self.write_out("y", self.sval(out), "    "))
        else:
            if self.vec_nodes():
                L.append(f"    {self.p}_vec_eval(s, steps, len);")
            L.append(self.write_out("y", f"s->{self.fid(out)}_v", "    "))
        L += ["    if (t < INT32_MAX) {", "        s->t = t + 1;", "    }", "}", ""]
        return L

    # ---- files --------------------------------------------------------------------------------
    def build(self) -> tuple[str, str]:
        plan = self.plan
        for k in plan.live:
            n = self.nodes[k]
            if isinstance(n, QLstm):
                self.emit_lstm(k, n)
            elif isinstance(n, QDense):
                self.emit_dense(k, n)
            elif isinstance(n, QTable):
                self.emit_table(k, n)
            elif isinstance(n, QSoftmax):
                self.emit_softmax(k, n)
            elif isinstance(n, QFeatureGather):
                self.emit_gather(k, n)
            if not isinstance(n, (QInput, QLstm)):
                self.field("int8_t", f"{self.fid(k)}_v[{n.features}]", n.features, f"{self.describe(k)}: value")
        lstms = plan.live_of(QLstm)
        if lstms:
            need = max(scratch_bytes(self.nodes[k].input_size, self.nodes[k].hidden_size) for k in lstms)
            self.scratch_halves = (need + 3) // 4 * 2  # whole words: no padding after it
            self.fixed_ram += 2 * self.scratch_halves
        if plan.input.perm:
            self.array("uint16_t", f"{self.p}_in_perm", plan.input.perm,
                       "canonical input feature -> position in a step")
            self.field("int8_t", f"xin[{plan.input.features}]", plan.input.features, "input step, canonical order")
        if plan.output.perm:
            inv = np.argsort(np.asarray(plan.output.perm))
            self.array("uint16_t", f"{self.p}_out_perm", inv, "output position in a step -> canonical feature")
        header = self.header()
        source = self.source()
        return header, source

    def state_struct(self) -> list[str]:
        fields = sorted(self.fields, key=lambda f: -f[0])  # int32, int16, int8: no padding inside
        L = [f"/** @brief Everything {self.p} changes while running (caller-owned; one per instance). */",
             "typedef struct {", "    int32_t t; /* time steps since reset (step()), saturating */"]
        if self.scratch_halves:  # right after t: 4-byte aligned for the kernels' word loads
            L.append(f"    int16_t scratch[{self.scratch_halves}]; /* one LSTM step: widened x and h, new h "
                     f"(tl_lstm.h) */")
        L += [decl for _, decl in fields]
        if self.plan.buffers:
            L.append(f"    int8_t ws[{self.plan.ws_width} * {self.P}_MAX_STEPS]; /* run(): LSTM output sequences "
                     f"(time, features) */")
        L.append(f"}} {self.p}_state_t;")
        return L

    def banner(self, what: str) -> str:
        m = self.plan.model
        src = f" * Source: {c_comment(m.source, 100)}\n" if m.source else ""
        return (f"/*\n * {what} - generated by tinylstm {__version__}; model sha256 {model_hash(m)}.\n"
                f" * Do not edit: regenerate with tinylstm.generate_c(). API: docs/c-api.md.\n{src} */\n")

    def header(self) -> str:
        p, P, plan, m = self.p, self.P, self.plan, self.plan.model
        guard = f"{P}_H_INCLUDED"
        fixed = 4 + self.fixed_ram
        ram = (f"(({fixed} + {plan.ws_width} * ({P}_MAX_STEPS) + 3) / 4 * 4)" if plan.buffers
               else f"{(fixed + 3) // 4 * 4}")
        L = [self.banner(f"{p}.h"), f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
             f"/** int8 features per time step of the input (ONNX input '{c_comment(m.input_name, 60)}'). */",
             f"#define {P}_INPUT_SIZE {plan.input.features}",
             f"/** int8 values per output{' time step' if plan.output_seq else ''} "
             f"(ONNX output '{c_comment(m.output_name, 60)}'). */",
             f"#define {P}_OUTPUT_SIZE {plan.output.features}",
             "/** 1: run() writes one output per time step; 0: one output per sequence. */",
             f"#define {P}_MANY_TO_MANY {int(plan.output_seq)}",
             f"/** 1: {p}_step() exists (every LSTM runs forward and no head reads a fixed early step). */",
             f"#define {P}_HAS_STEP {int(plan.has_step)}",
             f"/** 1: the ONNX graph takes sequence_lens: {p}_run_lens() exists. */",
             f"#define {P}_HAS_RUN_LENS {int(plan.lens_input)}",
             "/** Real value of an int8 input v: INPUT_SCALE * (v - INPUT_ZERO_POINT). Metadata only. */",
             f"#define {P}_INPUT_SCALE {c_float(m.input_scale)}",
             f"#define {P}_INPUT_ZERO_POINT ({m.input_zero_point})",
             "/** Real value of an int8 output v: OUTPUT_SCALE * (v - OUTPUT_ZERO_POINT). */",
             f"#define {P}_OUTPUT_SCALE {c_float(m.output_scale)}",
             f"#define {P}_OUTPUT_ZERO_POINT ({m.output_zero_point})"]
        if plan.buffers or not plan.streaming:
            L += [f"/** Longest sequence {p}_run() accepts: it sizes the workspace in {p}_state_t. May be",
                  " *  overridden at compile time (-D...) for every file including this header. */",
                  f"#ifndef {P}_MAX_STEPS", f"#define {P}_MAX_STEPS {plan.max_steps}", "#endif"]
        L += ["/** Const data of this model (weights, tables, parameters; 32-bit target, 4-byte aligned arrays), "
              "runtime code excluded. */",
              f"#define {P}_FLASH_BYTES {self.flash}",
              f"/** sizeof({p}_state_t): all mutable memory of one instance (stack excluded). */",
              f"#define {P}_RAM_BYTES {ram}", ""]
        L += self.state_struct()
        L += ["", "/** @brief Put the state at the start of a sequence (initial h and c; step counter 0). */",
              f"void {p}_reset({p}_state_t *s);"]
        if plan.has_step:
            L += ["", "/**",
                  f" * @brief One time step: x ({P}_INPUT_SIZE int8, one step of the input) -> y ({P}_OUTPUT_SIZE",
                  " * int8): the output for this step (many-to-one: after the last step it equals the model's",
                  " * output). Continues from the state; call reset() first for a new sequence.", " */",
                  f"void {p}_step({p}_state_t *s, const int8_t *x, int8_t *y);"]
        out_desc = (f"steps * {P}_OUTPUT_SIZE int8: one output per step" if plan.output_seq
                    else f"{P}_OUTPUT_SIZE int8")
        bound = f"1 <= steps <= {P}_MAX_STEPS" if not plan.streaming else "steps >= 1"
        L += ["", "/**", f" * @brief A whole sequence: x (steps * {P}_INPUT_SIZE int8, the ONNX input's layout at",
              f" * batch 1) -> y ({out_desc}).", f" * Starts from reset() (calls it). Needs {bound}; otherwise y is "
              f"filled with {P}_OUTPUT_ZERO_POINT.", " */",
              f"void {p}_run({p}_state_t *s, const int8_t *x, int32_t steps, int8_t *y);"]
        if plan.lens_input:
            L += ["", "/** @brief run() where only the first len steps are valid (ONNX sequence_lens, batch 1):",
                  " *  later steps give the padding output; len is clamped to [0, steps]. */",
                  f"void {p}_run_lens({p}_state_t *s, const int8_t *x, int32_t steps, int32_t len, int8_t *y);"]
        L += ["", f"#ifdef {P}_TRACE",
              "/** Debug hook (define " + f"{P}_TRACE when compiling {p}.c and provide it): called after each",
              " *  LSTM step with the node index, direction, time index and the new state. */",
              f"void {p}_trace(int32_t node, int32_t direction, int32_t t, const int8_t *h, const int16_t *c);",
              "#endif", "", f"#endif /* {guard} */", ""]
        return "\n".join(L)

    def source(self) -> str:
        p, P, plan = self.p, self.P, self.plan
        L = [self.banner(f"{p}.c"), f'#include "{p}.h"', '#include "tl_heads.h"', '#include "tl_lstm.h"', "",
             f"#ifdef {P}_TRACE",
             f"#define {self.P}_TRACE_STEP(node, dir, t, h, c) {p}_trace((node), (dir), (t), (h), (c))",
             "#else", f"#define {self.P}_TRACE_STEP(node, dir, t, h, c) ((void)0)", "#endif", "",
             f"typedef char {p}_ram_bytes_check[(sizeof({p}_state_t) <= {P}_RAM_BYTES) ? 1 : -1];", ""]
        L.append("\n".join(self.data))
        if plan.streaming:
            L += self.seq_step_fn()
        L += self.vec_eval_fn()
        L += self.reset_fn()
        if plan.has_step:
            L += self.step_fn()
        runner = self.run_streaming if plan.streaming else self.run_buffered
        if plan.lens_input:
            L += runner(f"{p}_run_lens", True)
            L += [f"void {p}_run({p}_state_t *s, const int8_t *x, int32_t steps, int8_t *y)", "{",
                  f"    {p}_run_lens(s, x, steps, steps, y);", "}", ""]
        else:
            L += runner(f"{p}_run", False)
        return "\n".join(L)


def emit_model(model: QuantizedModel, prefix: str = "model", max_steps: int | None = None) -> dict[str, str]:
    """``{filename: text}`` of the model's C (header, source), without runtime or build files."""
    check_prefix(prefix)
    plan = make_plan(model, max_steps)
    header, source = _Emitter(plan, prefix).build()
    return {f"{prefix}.h": header, f"{prefix}.c": source}


def footprint(model: QuantizedModel, prefix: str = "model", max_steps: int | None = None) -> dict[str, int]:
    """The numbers behind ``<P>_FLASH_BYTES`` and ``<P>_RAM_BYTES`` (which is an expression of
    ``<P>_MAX_STEPS`` for models with a sequence workspace): ``flash_bytes``, ``ram_bytes`` (at
    ``max_steps``, or the default bound), ``ram_fixed`` and ``ram_per_step`` (workspace bytes per
    step of ``max_steps``; 0 for streaming models)."""
    check_prefix(prefix)
    plan = make_plan(model, max_steps)
    em = _Emitter(plan, prefix)
    em.build()
    fixed = 4 + em.fixed_ram
    steps = plan.max_steps or 0
    return {"flash_bytes": em.flash, "ram_bytes": (fixed + plan.ws_width * steps + 3) // 4 * 4,
            "ram_fixed": fixed, "ram_per_step": plan.ws_width, "max_steps": steps}


def generate_files(model: QuantizedModel, prefix: str = "model", max_steps: int | None = None) -> dict[str, str]:
    """Every generated file as ``{filename: text}``: model, runtime, CMake, make fragment, example."""
    check_prefix(prefix)
    plan = make_plan(model, max_steps)
    files = emit_model(model, prefix, max_steps)
    files.update(runtime_files())
    files.update(build_files(prefix, RUNTIME_SOURCES))
    files[f"{prefix}_example.c"] = example_c(plan, prefix)
    return dict(sorted(files.items()))


def generate_c(
    qmodel: QuantizedModel,
    out_dir: str | os.PathLike,
    prefix: str = "model",
    *,
    max_steps: int | None = None,
) -> list[Path]:
    """Write the model's C99 library into ``out_dir`` (atomically: all files or none).

    ``prefix`` names every public symbol (``<prefix>_run``, ``<PREFIX>_INPUT_SIZE``...).
    ``max_steps`` bounds ``<prefix>_run`` for models with a reverse or bidirectional LSTM (their
    workspace holds whole sequences; default: the input's static length, else 256).
    Returns the written paths. See docs/c-api.md.
    """
    return write_tree(generate_files(qmodel, prefix, max_steps), out_dir)
