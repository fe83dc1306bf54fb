"""The Armv6-M assembly of the fast LSTM step (codegen/runtime/tl_kernels_v6m*.c) on QEMU (M0+).

Its helpers, called through a small shim, against tinylstm.fixedpoint bit for bit: sigmoid and tanh
of the standard table (tl_v6m_sig, tl_v6m_tanh: every table size the quantizer builds from 16 to
8192 segments, every gate shift 1..14 and cell shift 1..16, inputs around every clamp, the segment
edges and the int32 / int16 ends) and the general requantization of the rare hooks (tl_v6m_req:
shifts 0..62). Then whole layers on the paths no quantized model of the other tests takes: a cell
finer than 2^-16 of the table's grid (cell_shift > 16) and h requantizations outside [2^-55, 2^-33),
against the simulator, every state of every step; and cell updates at and next to ties (round half
to even).
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from tinylstm.codegen.emit import emit_model
from tinylstm.codegen.runtime_files import RUNTIME_DIR

import tinylstm
from tinylstm.cbuild import crossbuild, qemu
from tinylstm.cbuild import emulated as ctarget
from tinylstm.cbuild.toolchain import missing_reason
from tinylstm.fixedpoint import requant, sigmoid_q15, tanh_q15
from tinylstm.quantize.luts import standard_table
from tinylstm.quantize.quantizer import quantize
from tinylstm.simulate.checked import gate_values

_MISSING = missing_reason("arm-none-eabi-gcc", "qemu-system-arm")
pytestmark = [pytest.mark.cross, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]

TARGET = "cortex-m0plus"
SIZES = (16, 512, 8192)

# Records of 8 int32 (function, a, b, c, 16 - shift, clamp, table, 0) -> one int32 each; the tables
# first (count, then per table n and the n + 1 entries as int32).
PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>

#include "tl_lstm_internal.h"

void tl_v6m_sig(void);
void tl_v6m_tanh(void);
void tl_v6m_req(void);
/* r0 = fn(r0 = a, r1 = b, r2 = c) with r7 = ctx[1], r8 = ctx[2], r9 = 2^15, r12 = ctx[3], fn = ctx[0] */
int32_t tl_call(int32_t a, int32_t b, int32_t c, const uint32_t *ctx);
__asm__(".syntax unified\n.thumb\n.global tl_call\n.thumb_func\ntl_call:\n"
        "    push {r4-r7, lr}\n    mov r4, r8\n    mov r5, r9\n    push {r4, r5}\n"
        "    ldr r7, [r3, #4]\n    ldr r4, [r3, #8]\n    mov r8, r4\n    movs r4, #1\n    lsls r4, r4, #15\n"
        "    mov r9, r4\n    ldr r4, [r3, #12]\n    mov r12, r4\n    ldr r4, [r3]\n    blx r4\n"
        "    pop {r4, r5}\n    mov r8, r4\n    mov r9, r5\n    pop {r4-r7, pc}\n");

static uint16_t tables[3][8193];
static int32_t rec[8];

int main(int argc, char **argv)
{
    FILE *in, *out;
    int32_t nt, k, n, j, count, i, v;
    uint32_t ctx[4];
    if (argc != 3 || (in = fopen(argv[1], "rb")) == 0 || (out = fopen(argv[2], "wb")) == 0) {
        return 2;
    }
    if (fread(&nt, 4, 1, in) != 1 || nt > 3) {
        return 3;
    }
    for (k = 0; k < nt; k++) {
        if (fread(&n, 4, 1, in) != 1 || n > 8192) {
            return 4;
        }
        for (j = 0; j <= n; j++) {
            if (fread(&v, 4, 1, in) != 1) {
                return 5;
            }
            tables[k][j] = (uint16_t)v;
        }
    }
    if (fread(&count, 4, 1, in) != 1) {
        return 6;
    }
    for (i = 0; i < count; i++) {
        if (fread(rec, 4, 8, in) != 8) {
            return 7;
        }
        ctx[0] = rec[0] == 0 ? (uint32_t)tl_v6m_sig : rec[0] == 1 ? (uint32_t)tl_v6m_tanh : (uint32_t)tl_v6m_req;
        ctx[1] = (uint32_t)rec[4];
        ctx[2] = (uint32_t)rec[5];
        ctx[3] = (uint32_t)tables[rec[6]];
        v = tl_call(rec[1], rec[2], rec[3], ctx);
        fwrite(&v, 4, 1, out);
    }
    fclose(out);
    return 0;
}
"""


@pytest.fixture(scope="module")
def helpers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("v6m")
    (d / "prog.c").write_text(PROGRAM)
    srcs = [d / "prog.c", RUNTIME_DIR / "tl_kernels_v6m.c", RUNTIME_DIR / "tl_kernels_v6m_unit.c"]
    return crossbuild.build(TARGET, srcs, d / "prog.elf", include_dirs=[RUNTIME_DIR], opt="-Os").elf


def _run(elf: Path, tables: list[np.ndarray], recs: np.ndarray) -> np.ndarray:
    d = elf.parent
    blob = [struct.pack("<i", len(tables))]
    for t in tables:
        blob.append(struct.pack("<i", t.shape[0] - 1) + t.astype("<i4").tobytes())
    blob.append(struct.pack("<i", recs.shape[0]) + recs.astype("<i4").tobytes())
    (d / "in.bin").write_bytes(b"".join(blob))
    qemu.run(TARGET, elf, ["in.bin", "out.bin"], cwd=d, timeout=120, check=True)
    return np.frombuffer((d / "out.bin").read_bytes(), dtype="<i4").astype(np.int64)


def _inputs(rng: np.random.Generator, n: int, shift: int, lo: int, hi: int) -> np.ndarray:
    """Values around the clamp (n << shift, for u and 2u), the segment edges, zero and the ends."""
    cap = n << shift
    pts = [0, 1, 2, 3, cap - 2, cap - 1, cap, cap + 1, cap // 2 - 1, cap // 2, cap // 2 + 1]
    seg = rng.integers(0, n, 24) << shift
    pts += list(seg) + list(seg + 1) + list(seg - 1) + list(seg + (1 << shift) // 2)
    pts += list(rng.integers(0, 2 * cap + 2, 160)) + list(rng.integers(lo, hi, 40, endpoint=True)) + [lo, hi]
    u = np.array(pts, dtype=np.int64)
    z = np.concatenate([u, -u])
    return np.unique(np.clip(z, lo, hi))


def test_sigmoid_and_tanh_match_the_spec(helpers: Path) -> None:
    rng = np.random.default_rng(3)
    tables = [standard_table(n)[0] for n in SIZES]
    recs, want = [], []
    for t, table in enumerate(tables):
        n = table.shape[0] - 1
        for gs in range(1, 15):  # gates: P - frac in [1, 14]
            z = _inputs(rng, n, gs, -(2**31) + 1, 2**31 - 1)
            for fn, ref in ((0, sigmoid_q15), (1, tanh_q15)):
                recs += [(fn, int(v), 0, 0, 16 - gs, (n << gs) - 1, t, 0) for v in z]
                want.append(ref(z, table, gs))
        for cs in range(1, 17):  # the cell: int16, k - frac in [1, 16] (more: the rare hook)
            c = _inputs(rng, n, cs - 1, -32768, 32767)
            recs += [(1, int(v), 0, 0, 16 - cs, min((n << cs) - 1, 0x1FFFF), t, 0) for v in c]
            want.append(tanh_q15(c, table, cs))
    got = _run(helpers, tables, np.array(recs, dtype=np.int64))
    exp = np.concatenate(want)
    bad = np.flatnonzero(got != exp)
    assert bad.size == 0, f"{bad.size} of {exp.size} differ, first: {recs[bad[0]]} -> {got[bad[0]]}, not {exp[bad[0]]}"


def test_general_requant_matches_the_spec(helpers: Path) -> None:
    rng = np.random.default_rng(4)
    acc = np.concatenate([rng.integers(-(2**30), 2**30, 3000, endpoint=True),
                          rng.integers(-70000, 70000, 1000), [0, 1, -1, 2**30, -(2**30), 2**31 - 1, -(2**31)]])
    mult = rng.integers(2**30, 2**31, acc.shape[0])
    shift = rng.integers(0, 63, acc.shape[0])
    shift[: 4 * 63] = np.repeat(np.arange(63), 4)
    mult[-3:], shift[-3:] = 0, 0  # mult 0 comes with shift 0
    recs = np.stack([np.full_like(acc, 2), acc, mult, shift, 0 * acc, 0 * acc, 0 * acc, 0 * acc], axis=1)
    exp = requant(acc, mult, shift).astype(np.int64)
    exp = ((exp + 2**31) % 2**32) - 2**31  # modulo 2^32, as the C (exact where it fits)
    got = _run(helpers, [standard_table(16)[0]], recs)
    bad = np.flatnonzero(got != exp)
    assert bad.size == 0, f"{bad.size} differ, first: {recs[bad[0]].tolist()} -> {got[bad[0]]}, not {exp[bad[0]]}"


def _small_lstm(inputs: int, hidden: int, scale: float, seed: int):
    rng = np.random.default_rng(seed)
    w = (rng.uniform(-1, 1, (1, 4 * hidden, inputs)) * scale).astype(np.float32)
    r = (rng.uniform(-1, 1, (1, 4 * hidden, hidden)) * scale).astype(np.float32)
    b = (rng.uniform(-1, 1, (1, 8 * hidden)) * scale / 2).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"))]
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y"], hidden_size=hidden)], "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", "batch", inputs])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["time", 1, "batch", hidden])], inits)
    return tinylstm.load_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _with_h_shift(q, h_shift: int):
    (layer,) = q.lstm_layers
    d = dataclasses.replace(layer.directions[0], h_shift=h_shift)
    new = dataclasses.replace(layer, directions=(d,))
    return dataclasses.replace(q, nodes=tuple(new if n is layer else n for n in q.nodes))


@pytest.mark.parametrize("bits", [16, 8])
def test_rare_tails_equal_the_simulator(bits: int, tmp_path: Path) -> None:
    """Tiny cells on a 16-segment table: cell_shift 17 (tanh(c') on its first segment); then the
    same layer with h_shift 32 and 56 (requant of h on both words, beyond the folded form)."""
    rng = np.random.default_rng(bits)
    fm = _small_lstm(5, 7, 0.05, seed=3)
    q = quantize(fm, [rng.uniform(-1.5, 1.5, (9, 4, 5)).astype(np.float32)], lstm_weight_bits=bits, lut_size=16)
    (layer,) = q.lstm_layers
    assert layer.directions[0].cell_frac - layer.table_frac > 16
    x = q.quantize_input(rng.uniform(-1.5, 1.5, (6, 2, 5)).astype(np.float32))
    for k, model in enumerate((q, _with_h_shift(q, 32), _with_h_shift(q, 56))):
        assert "tl_lstm_step_fast(" in emit_model(model, "m")["m.c"]
        exe = ctarget.build_target(model, TARGET, tmp_path / str(k), "-Os", trace=True)
        y, tr = model.run_int(x, trace=True)
        r = ctarget.run_target(exe, x, "run", trace=True)
        assert np.array_equal(r.y, y)
        for name, dirs in tr.items():
            for d, st in enumerate(dirs):
                assert np.array_equal(r.trace[name][d].h, st.h) and np.array_equal(r.trace[name][d].c, st.c)


def _with_rows(q, rows: np.ndarray, z: np.ndarray):
    """q with the gate ``rows`` of its one direction constant: zero weights, z = (z << 4) >> 4."""
    (layer,) = q.lstm_layers
    d = layer.directions[0]
    w, r, bias, shift = d.w.copy(), d.r.copy(), d.bias.copy(), d.shift.copy()
    w[rows], r[rows], bias[rows], shift[rows] = 0, 0, z << 4, 4
    new = dataclasses.replace(layer, directions=(dataclasses.replace(d, w=w, r=r, bias=bias, shift=shift),))
    return dataclasses.replace(q, nodes=tuple(new if n is layer else n for n in q.nodes))


@pytest.mark.parametrize("bits", [16, 8])
def test_cell_rounding_at_ties(bits: int, tmp_path: Path) -> None:
    """The unit loop's cell rounding (half to even, spec sec. 7) at and next to ties on the common
    path: the input and candidate gates of each unit are constants (zero weights, chosen biases) whose
    product i g, the whole sum while c = 0, is half-way with an odd or an even floor, or half-way
    plus bits below 2^a_fc with an even floor (the bits the loop keeps apart from its sum)."""
    rng = np.random.default_rng(10 + bits)
    q = quantize(_small_lstm(6, 24, 1.0, seed=3), [rng.uniform(-2, 2, (9, 4, 6)).astype(np.float32)],
                 lstm_weight_bits=bits)
    (layer,) = q.lstm_layers
    d, h = layer.directions[0], layer.hidden_size
    assert d.standard and d.peep is None and layer.clip_q is None and d.a_ig == 0 and d.a_fc >= 1
    assert not d.initial_c.any()
    zs = rng.choice(np.arange(-(2**14), 2**14), 2500, replace=False)
    gi, gg = gate_values(layer, d, zs, "f").astype(np.int32), gate_values(layer, d, zs, "g").astype(np.int32)
    prod = gi[:, None] * gg[None, :]  # (2500, 2500) i g, |i g| <= 2^30
    m, even = prod & ((1 << d.s_c) - 1), (prod >> d.s_c) & 1 == 0  # remainder, floor's parity
    half = m >> d.a_fc == 1 << 14
    kinds = [half & (m % (1 << d.a_fc) == 0) & ~even, half & (m % (1 << d.a_fc) == 0) & even,
             half & (m % (1 << d.a_fc) != 0) & even]
    pairs = [np.argwhere(k)[:8] for k in kinds]
    assert all(len(pp) == 8 for pp in pairs), [len(pp) for pp in pairs]
    ii, jj = np.concatenate(pairs).T
    rows = np.concatenate([np.arange(h), 2 * h + np.arange(h)])
    model = _with_rows(q, rows, np.concatenate([zs[ii], zs[jj]]))
    x = model.quantize_input(rng.uniform(-2, 2, (4, 3, 6)).astype(np.float32))
    y, tr = model.run_int(x, trace=True)
    (st,) = next(iter(tr.values()))
    # the constants hold (i, g at the first step of each sequence)
    assert np.array_equal(st.gates[:, 0, :h], np.broadcast_to(gi[ii], (3, h)))
    assert np.array_equal(st.gates[:, 0, 2 * h : 3 * h], np.broadcast_to(gg[jj], (3, h)))
    assert "tl_lstm_step_fast(" in emit_model(model, "m")["m.c"]
    exe = ctarget.build_target(model, TARGET, tmp_path, "-Os", trace=True)
    r = ctarget.run_target(exe, x, "run", trace=True)
    (ct,) = next(iter(r.trace.values()))
    assert np.array_equal(r.y, y) and np.array_equal(ct.c, st.c) and np.array_equal(ct.h, st.h)
