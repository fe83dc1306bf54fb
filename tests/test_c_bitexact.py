"""Generated C vs the integer simulator: exact equality, never a tolerance.

- the primitives (tl_round_shift, tl_requant, tl_div_round, tl_sat8/16, tl_lut_eval) against
  tinylstm/fixedpoint.py on edge values (ties of both parities and signs, extremes, every grid
  point of real tables);
- the LSTM stage kernels (tl_lstm_gates_s8, tl_lstm_cell_s16) and both steps (tl_lstm_step_s8 and,
  for the standard table, tl_lstm_step_fast) against simulate.lstm_gates / lstm_cell / lstm_step on
  arbitrary states (int16 and int8 weights, peepholes, clip, coupled gates, custom tables, gate
  inputs coarser than the standard table's grid);
- a zoo of whole models (hand-built ONNX covering every LSTM attribute the quantizer accepts, and
  the PyTorch fixtures; many-to-one and many-to-many): the C output AND every LSTM state (h and c
  of every layer and direction, per step) equal ``run_int(..., trace=True)``, through ``run``,
  ``step`` (reset between sequences, state filled with garbage first) and several instances
  stepped in lock-step; on gcc -O2, clang -O3, gcc -O0, a clang ASan+UBSan build, the portable
  kernels and the Armv6-M arithmetic (-DTL_NO_LONG_MUL) under ASan+UBSan.

The reference is the checked simulator (``simulate.checked.CHECKED``: every stored value
range-checked, step by step), forced for this module.
"""

from __future__ import annotations

import ast
import dataclasses
import glob
import importlib.util
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_builders import HeadSpec, LstmSpec, random_input, single_lstm_model, stacked_model
from tinylstm.codegen.emit import emit_model
from tinylstm.codegen.runtime_files import RUNTIME_SOURCES, runtime_files
from tinylstm.codegen.writer import write_tree

import tinylstm
from tinylstm.cbuild.host import build_host, run_c
from tinylstm.cbuild.toolchain import STRICT_FLAGS, compile_host, missing_reason
from tinylstm.data.taskfiles import load_task_file
from tinylstm.fixedpoint import Lut, div_round, lut_eval, requant, round_shift, sat8, sat16
from tinylstm.ir import Activation
from tinylstm.quantize.luts import build_lut
from tinylstm.quantize.quantizer import quantize
from tinylstm.simulate import checked as simulate

ROOT = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))


@pytest.fixture(scope="module", autouse=True)
def checked_reference():
    """The checked simulator is the reference of every comparison here."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(simulate, "CHECKED", True)
        yield


# ---------------------------------------------------------------------------------------------
# primitives
# ---------------------------------------------------------------------------------------------
_PRIMS_C = r"""
#include <stdio.h>
#include "tl_fixedpoint.h"

static int32_t g_i32[70000];
static uint16_t g_u16[70000];

int main(void)
{
    int64_t rec[4];
    tl_lut_t lut = {0, 0, 0, 0, 0};
    while (fread(rec, sizeof rec[0], 4u, stdin) == 4u) {
        int64_t r = 0;
        switch (rec[0]) {
        case 0: r = tl_round_shift(rec[1], (int32_t)rec[2]); break;
        case 1: r = tl_round_shift32((int32_t)rec[1], (int32_t)rec[2]); break;
        case 2: r = tl_requant((int32_t)rec[1], (int32_t)rec[2], (int32_t)rec[3]); break;
        case 3: r = tl_div_round((int32_t)rec[1], (int32_t)rec[2]); break;
        case 4: r = tl_sat8((int32_t)rec[1]); break;
        case 5: r = tl_sat16(rec[1]); break;
        case 6: {
            int32_t j, n = (int32_t)rec[1];
            int use16 = (int)(rec[3] >> 8);
            for (j = 0; j <= n; ++j) {
                int64_t v;
                if (fread(&v, sizeof v, 1u, stdin) != 1u) {
                    return 3;
                }
                g_i32[j] = (int32_t)v;
                g_u16[j] = (uint16_t)v;
            }
            lut.u16 = use16 ? g_u16 : 0;
            lut.i32 = use16 ? 0 : g_i32;
            lut.n = n;
            lut.sym = (int32_t)rec[2];
            lut.shift = (int32_t)(rec[3] & 255);
            continue;
        }
        case 7: r = tl_lut_eval((int32_t)rec[1], &lut); break;
        default: return 2;
        }
        if (fwrite(&r, sizeof r, 1u, stdout) != 1u) {
            return 4;
        }
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def prims(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prims")
    write_tree(dict(runtime_files(), **{"prims.c": _PRIMS_C}), d / "src")
    exe = d / "prims"
    compile_host([d / "src" / "prims.c"], exe, include_dirs=(d / "src",), opt="-O2")
    return exe


def _call(exe: Path, records: np.ndarray) -> np.ndarray:
    res = subprocess.run([str(exe)], input=np.ascontiguousarray(records, np.int64).tobytes(), capture_output=True,
                         timeout=120, check=True)
    return np.frombuffer(res.stdout, np.int64)


def _edges32() -> np.ndarray:
    v = [0, 1, -1, 2, -2, 3, -3, 2**31 - 1, -(2**31) + 1, -(2**31)]
    for k in range(1, 31):
        v += [2**k, 2**k - 1, 2**k + 1, -(2**k), -(2**k) + 1, -(2**k) - 1]
    return np.unique(np.clip(np.array(v, np.int64), -(2**31), 2**31 - 1))


def test_round_shift_ties_and_extremes(prims: Path) -> None:
    rng = np.random.default_rng(0)
    recs = []
    for s in range(0, 63):
        lim = 2**63 - 1 - (2 ** (s - 1) if s else 0)
        q = rng.integers(-(2**20), 2**20, 40)
        xs = [q * 2**s + (2 ** (s - 1) if s else 0), q * 2**s, q * 2**s - 1, q * 2**s + 1,
              np.array([lim, -lim, 0, 1, -1, 2**s, -(2**s), 3 * 2 ** max(s - 1, 0), -3 * 2 ** max(s - 1, 0)]),
              rng.integers(-(2**62), 2**62, 40)]
        x = np.clip(np.concatenate([np.asarray(a, dtype=object).astype(np.int64) for a in xs]), -lim, lim)
        recs.append(np.stack([np.zeros_like(x), x, np.full_like(x, s), np.zeros_like(x)], 1))
    r = np.concatenate(recs)
    got = _call(prims, r)
    want = np.array([int(round_shift(int(a), int(s))) for a, s in zip(r[:, 1], r[:, 2], strict=True)])
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"first mismatch: round_shift({r[bad[0], 1]}, {r[bad[0], 2]}) C {got[bad[0]]}"


def test_round_shift32_equals_round_shift(prims: Path) -> None:
    e = _edges32()
    rng = np.random.default_rng(1)
    x = np.concatenate([e, rng.integers(-(2**31), 2**31, 2000)])
    recs = []
    for s in range(0, 31):
        ties = (rng.integers(-(2 ** (30 - s)), 2 ** (30 - s), 200) * 2**s + (2 ** (s - 1) if s else 0))
        xs = np.clip(np.concatenate([x, ties]), -(2**31), 2**31 - 1)
        recs.append(np.stack([np.ones_like(xs), xs, np.full_like(xs, s), np.zeros_like(xs)], 1))
    r = np.concatenate(recs)
    got = _call(prims, r)
    want = round_shift(r[:, 1], r[:, 2])
    assert np.array_equal(got, want)


def test_requant(prims: Path) -> None:
    rng = np.random.default_rng(2)
    acc = np.concatenate([_edges32(), rng.integers(-(2**31) + 1, 2**31 - 1, 300)])
    acc = acc[acc > -(2**31)]  # |acc| < 2^31 (spec sec. 2)
    recs = [np.stack([np.full_like(acc, 2), acc, np.zeros_like(acc), np.zeros_like(acc)], 1)]  # mult 0
    for mult in (2**30, 2**31 - 1, 1518500250, int(rng.integers(2**30, 2**31))):
        for shift in range(0, 63):
            recs.append(np.stack([np.full_like(acc, 2), acc, np.full_like(acc, mult), np.full_like(acc, shift)], 1))
    r = np.concatenate(recs)
    got = _call(prims, r)
    want = requant(r[:, 1], r[:, 2], r[:, 3])
    # only results an int32 can hold are meaningful (spec sec. 11 proves every call site fits)
    fits = (want >= -(2**31)) & (want <= 2**31 - 1)
    assert np.array_equal(got[fits], want[fits])
    assert fits.sum() > 10000


def test_div_round_sat(prims: Path) -> None:
    rng = np.random.default_rng(3)
    den = np.concatenate([np.arange(1, 40), [2**31 - 1, 2**30, 255, 256, 32768], rng.integers(1, 2**31 - 1, 60)])
    recs = []
    for d in den:
        num = np.unique(np.clip(np.concatenate([
            np.arange(0, 80), [2**31 - 1, 2**23, d, 2 * d, d // 2, d // 2 + 1, 3 * (d // 2), 5 * d // 2],
            rng.integers(0, 2**31 - 1, 20)]), 0, 2**31 - 1))
        recs.append(np.stack([np.full_like(num, 3), num, np.full_like(num, d), np.zeros_like(num)], 1))
    x = np.concatenate([_edges32(), np.arange(-70000, 70000, 7)])
    recs.append(np.stack([np.full_like(x, 4), x, 0 * x, 0 * x], 1))
    big = np.concatenate([x, [2**40, -(2**40), 2**62, -(2**62)]])
    recs.append(np.stack([np.full_like(big, 5), big, 0 * big, 0 * big], 1))
    r = np.concatenate(recs)
    got = _call(prims, r)
    want = np.where(r[:, 0] == 3, div_round(r[:, 1], np.maximum(r[:, 2], 1)),
                    np.where(r[:, 0] == 4, sat8(r[:, 1]), sat16(r[:, 1])))
    assert np.array_equal(got, want)


def _lut_cases() -> list[tuple[str, Lut]]:
    out = []
    for name, act, in_frac, limit, size in (
        ("sigmoid-P16", Activation("Sigmoid"), 16, np.inf, 512),
        ("tanh-P16", Activation("Tanh"), 16, np.inf, 512),
        ("tanh-k13", Activation("Tanh"), 13, 4.0, 512),
        ("sigmoid-P8-small", Activation("Sigmoid"), 8, np.inf, 64),
        ("hardsigmoid-full", Activation("HardSigmoid", 0.3, 0.4), 16, np.inf, 256),
        ("relu-clip", Activation("Relu"), 14, 3.0, 128),
        ("elu-clip-negative", Activation("Elu", 1.0), 16, 2.5, 512),
        ("affine-clip", Activation("Affine", -1.5, 0.25), 12, 1.0, 32),
        ("softsign-clip", Activation("Softsign"), 20, 5.0, 1024),
    ):
        out.append((name, build_lut(act, in_frac, limit=limit, size=size)))
    return out


@pytest.mark.parametrize("name,lut", _lut_cases(), ids=[c[0] for c in _lut_cases()])
def test_lut_eval(prims: Path, name: str, lut: Lut) -> None:
    t = lut.table.astype(np.int64)
    use16 = int(t.min() >= 0 and t.max() <= 65535)
    head = np.array([[6, lut.n, lut.sym, lut.shift | (use16 << 8)]], np.int64)
    sh = lut.shift
    grid = (np.arange(-lut.n - 2, lut.n + 3, dtype=np.int64) << sh)
    half = (1 << (sh - 1)) if sh else 0
    near = np.concatenate([grid + d for d in (-1, 0, 1, half - 1, half, half + 1)])
    dom = lut.n << sh
    rng = np.random.default_rng(4)
    x = np.concatenate([near, rng.integers(-2 * dom, 2 * dom, 20000), _edges32()])
    if lut.in_frac <= 12:
        x = np.concatenate([x, np.arange(-2 * dom, 2 * dom + 1)])  # every representable input
    x = np.clip(x, -(2**31) + 1, 2**31 - 1)  # x > -2^31 (spec sec. 11.4)
    evals = np.stack([np.full_like(x, 7), x, 0 * x, 0 * x], 1)
    data = np.concatenate([head.reshape(-1), t, evals.reshape(-1)])
    res = subprocess.run([str(prims)], input=data.astype(np.int64).tobytes(), capture_output=True, timeout=120,
                         check=True)
    got = np.frombuffer(res.stdout, np.int64)
    want = lut_eval(x, lut)
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"{name}: x={x[bad[0]]}: C {got[bad[0]]} vs Python {want[bad[0]]}"


# ---------------------------------------------------------------------------------------------
# stage kernels (gates, cell) by including the generated model.c
# ---------------------------------------------------------------------------------------------
_STAGES_C = r"""
#include <stdio.h>
#include <string.h>
#include "model.c"

/* reads records of x (I), h (H), c (H int16); writes z (4H int32), gates (3H int32), c' (H int16) of
 * the stage kernels, then h' (H int8), c' (H int16) of tl_lstm_step_s8 and of tl_lstm_step_fast
 * (zeros when the fast step does not apply: no standard table, or a shift below 1) */
int main(void)
{
    static int8_t x[4096], h[4096], h1[4096];
    static int16_t c[4096], c0[4096], c1[4096];
    static int32_t z[4 * 4096], g[3 * 4096];
    static int16_t scratch[3 * 4096];
    const tl_lstm_params_t *p = &@PARAMS@;
    const int32_t I = p->input_size, H = p->hidden_size;
    const int fast = p->table != 0 && p->gate_shift >= 1 && p->cell_shift >= 1;
    while (fread(x, 1u, (size_t)I, stdin) == (size_t)I) {
        int k;
        if (fread(h, 1u, (size_t)H, stdin) != (size_t)H || fread(c, 2u, (size_t)H, stdin) != (size_t)H) {
            return 3;
        }
        memcpy(c0, c, sizeof c[0] * (size_t)H);
        tl_lstm_gates_s8(p, x, h, c, z, g, scratch);
        tl_lstm_cell_s16(p, g, c);
        fwrite(z, 4u, (size_t)(4 * H), stdout);
        fwrite(g, 4u, (size_t)(3 * H), stdout);
        fwrite(c, 2u, (size_t)H, stdout);
        for (k = 0; k < 2; ++k) {
            memcpy(h1, h, (size_t)H);
            memcpy(c1, c0, sizeof c[0] * (size_t)H);
            if (k == 0) {
                tl_lstm_step_s8(p, x, h1, c1, scratch);
            } else if (fast) {
                tl_lstm_step_fast(p, x, h1, c1, scratch);
            } else {
                memset(h1, 0, (size_t)H);
                memset(c1, 0, sizeof c[0] * (size_t)H);
            }
            fwrite(h1, 1u, (size_t)H, stdout);
            fwrite(c1, 2u, (size_t)H, stdout);
        }
    }
    return 0;
}
"""


STAGE_CASES = [
    ("plain", LstmSpec(input_size=5, hidden_size=7), {}),
    ("plain-int8", LstmSpec(input_size=5, hidden_size=7), {"lstm_weight_bits": 8}),
    ("peephole-clip", LstmSpec(input_size=3, hidden_size=6, peepholes=True, clip=0.8, scale=3.0), {}),
    ("peephole-clip-int8", LstmSpec(input_size=6, hidden_size=9, peepholes=True, clip=2.5, scale=3.0),
     {"lstm_weight_bits": 8}),
    ("input_forget-clip", LstmSpec(input_size=4, hidden_size=5, input_forget=True, clip=1.5, scale=2.0), {}),
    ("input_forget-hardsigmoid-softsign", LstmSpec(
        input_size=4, hidden_size=5, input_forget=True, activations=("HardSigmoid", "Softsign", "Tanh"),
        activation_alpha=(0.3,), activation_beta=(0.45,), clip=4.0, peepholes=True), {}),
    ("coarse-gates-P8-table8192", LstmSpec(input_size=5, hidden_size=6, peepholes=True, scale=2.0),
     {"pre_frac": 8, "lut_size": 8192}),
    ("table16", LstmSpec(input_size=5, hidden_size=6, scale=2.0), {"lut_size": 16}),
    ("coarse-cell-headroom4096", LstmSpec(input_size=5, hidden_size=6, clip=3.0), {"cell_headroom": 4096.0}),
    # a small cell: k = 18 > 15, so the cell update shifts i g left (a_ig = 3) instead of f c
    ("fine-cell-k18", LstmSpec(input_size=5, hidden_size=6, scale=0.05, bias=False), {}),
]


@pytest.mark.parametrize("name,spec,opts", STAGE_CASES, ids=[c[0] for c in STAGE_CASES])
def test_stage_kernels_and_steps(tmp_path: Path, name: str, spec: LstmSpec, opts: dict) -> None:
    """Stages and steps on arbitrary x, h, c (int16 cells at their extremes included), every record."""
    from tinylstm.lowering import STEP_FAST, step_choice

    onnx_model = single_lstm_model(spec)
    fm = tinylstm.load_onnx(onnx_model)
    q = quantize(fm, [random_input(onnx_model, 3, 9, seed=1, scale=2.0)], **opts)
    layer = q.nodes[1]
    d = layer.directions[0]
    fast = step_choice(layer)[0] == STEP_FAST
    if name.startswith(("plain", "peephole", "input_forget-clip", "table16", "fine-cell")):
        assert fast, f"{name} should take the fast step"  # the fast step covers these features
    if name == "fine-cell-k18":
        assert d.cell_frac > 15 and d.a_ig > 0 and d.a_fc == 0
    files = dict(runtime_files(), **emit_model(q, "model"))
    params = [ln.split()[3].split("[")[0] for ln in files["model.c"].splitlines()
              if ln.startswith("static const tl_lstm_params_t")][0]
    files["stages.c"] = _STAGES_C.replace("@PARAMS@", params + "[0]")
    write_tree(files, tmp_path / "src")
    exes = []
    # the default build, and the Armv6-M arithmetic (32-bit cell words, 16-bit-half products) in portable C;
    # model.c's public functions are unused in this program: no -Wmissing-prototypes trouble (header declares them)
    for k, flags in enumerate(((), ("-DTL_PORTABLE", "-DTL_NO_LONG_MUL"))):
        exes.append(tmp_path / f"stages{k}")
        compile_host([tmp_path / "src" / "stages.c", *(tmp_path / "src" / s for s in RUNTIME_SOURCES)],
                     exes[-1], include_dirs=(tmp_path / "src",), extra_flags=("-Wno-unused-function", *flags))
    rng = np.random.default_rng(5)
    n, I, H = 400, layer.input_size, layer.hidden_size
    x = rng.integers(-128, 128, (n, I)).astype(np.int8)
    h = rng.integers(-128, 128, (n, H)).astype(np.int8)
    c = rng.integers(-32768, 32768, (n, H)).astype(np.int16)
    x[:40], h[:40], c[:40] = 127, 127, 32767  # extremes
    x[40:80], h[40:80], c[40:80] = -128, -128, -32768
    c[80:120] = rng.integers(-64, 64, (40, H))  # small cells: the tables' fine end
    blob = b"".join(x[i].tobytes() + h[i].tobytes() + c[i].tobytes() for i in range(n))
    x64, h64, c64 = x.astype(np.int64), h.astype(np.int64), c.astype(np.int64)
    z, gates = simulate.lstm_gates(layer, d, x64, h64, c64)
    c_new = simulate.lstm_cell(d, gates, c64)
    h_step, c_step, _, _ = simulate.lstm_step(layer, d, x64, h64, c64)
    assert np.array_equal(c_step, c_new)
    rec = 16 * H + 12 * H + 2 * H + 2 * 3 * H
    for exe in exes:
        out = subprocess.run([str(exe)], input=blob, capture_output=True, check=True, timeout=60).stdout
        assert len(out) == n * rec
        _check_stage_records(out, rec, H, fast, z, gates, c_new, h_step, c_step, exe.name)


def _check_stage_records(out: bytes, rec: int, H: int, fast: bool, z, gates, c_new, h_step, c_step, build: str) -> None:
    for i in range(len(out) // rec):
        r = out[i * rec : (i + 1) * rec]
        cz = np.frombuffer(r, np.int32, 4 * H, 0)
        cg = np.frombuffer(r, np.int32, 3 * H, 16 * H)
        cc = np.frombuffer(r, np.int16, H, 28 * H)
        assert np.array_equal(cz[: 3 * H], z[i, : 3 * H]), f"{build}: z of i, f, g differ in record {i}"
        assert np.array_equal(cz[3 * H :], z[i, 3 * H :]), f"{build}: z_o (before its peephole) differs in record {i}"
        assert np.array_equal(cg, gates[i]), f"{build}: gates differ in record {i}"
        assert np.array_equal(cc, c_new[i]), f"{build}: cell differs in record {i}"
        for k, step in enumerate(("tl_lstm_step_s8", "tl_lstm_step_fast")):
            if k == 1 and not fast:
                continue
            off = 30 * H + k * 3 * H
            sh, sc = np.frombuffer(r, np.int8, H, off), np.frombuffer(r, np.int16, H, off + H)
            assert np.array_equal(sh, h_step[i]), f"{build} {step}: h' differs in record {i}"
            assert np.array_equal(sc, c_step[i]), f"{build} {step}: c' differs in record {i}"


# ---------------------------------------------------------------------------------------------
# the model zoo
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    name: str
    onnx_model: onnx.ModelProto | None
    batch: int  # rows per test batch
    lens: str  # "none" | "const" | "input"
    min_time: int = 1
    fixture: str | None = None  # torch fixture path (inputs from its .npz)
    opts: tuple[tuple[str, object], ...] = ()  # quantize() options


def _zoo() -> list[Entry]:
    z: list[Entry] = []

    def add(name: str, m: onnx.ModelProto, batch: int = 3, lens: str = "none", min_time: int = 1,
            **opts: object) -> None:
        z.append(Entry(name, m, batch, lens, min_time, opts=tuple(sorted(opts.items()))))

    for d in ("forward", "reverse", "bidirectional"):
        nd = 2 if d == "bidirectional" else 1
        add(f"{d}", single_lstm_model(LstmSpec(direction=d)))
        add(f"{d}-peepholes-saturating", single_lstm_model(LstmSpec(direction=d, peepholes=True, scale=3.0)))
        add(f"{d}-no-bias", single_lstm_model(LstmSpec(direction=d, bias=False, hidden_size=7)))
        add(f"{d}-clip-peepholes", single_lstm_model(LstmSpec(direction=d, clip=0.7, peepholes=True, scale=3.0)))
        add(f"{d}-input_forget", single_lstm_model(LstmSpec(direction=d, input_forget=True, scale=2.0)))
        add(f"{d}-lens-const", single_lstm_model(LstmSpec(direction=d, sequence_lens="initializer", lens=(4,)),
                                                 batch=1), batch=1, lens="const", min_time=4)
        add(f"{d}-lens-input", single_lstm_model(LstmSpec(direction=d, sequence_lens="input")), lens="input")
        add(f"{d}-initial-states", single_lstm_model(
            LstmSpec(direction=d, initial_h="initializer", initial_c="initializer", state_scale=0.9), batch=1), batch=1)
        add(f"{d}-zero-states-layout1", single_lstm_model(
            LstmSpec(direction=d, initial_h="zeros", initial_c="zeros", layout=1)))
        add(f"{d}-Y_h", single_lstm_model(LstmSpec(direction=d, outputs=("Y", "Y_h")), graph_outputs=("Y_h",)))
        add(f"{d}-Y_c", single_lstm_model(LstmSpec(direction=d, outputs=("Y", "Y_c")), graph_outputs=("Y_c",)))
        add(f"{d}-Y_c-lens-input", single_lstm_model(
            LstmSpec(direction=d, sequence_lens="input", outputs=("Y", "Y_c")), graph_outputs=("Y_c",)), lens="input")
        add(f"{d}-hardsigmoid-tanh", single_lstm_model(LstmSpec(
            direction=d, activations=("HardSigmoid", "Tanh", "Tanh") * nd, activation_alpha=(0.25,) * nd,
            activation_beta=(0.5,) * nd)))
        add(f"{d}-softsign-scaledtanh-clip", single_lstm_model(LstmSpec(
            direction=d, activations=("Sigmoid", "Softsign", "ScaledTanh") * nd, activation_alpha=(1.5,) * nd,
            activation_beta=(0.7,) * nd, clip=3.0)))
        add(f"{d}-relu-g-clip", single_lstm_model(LstmSpec(
            direction=d, activations=("Sigmoid", "Relu", "Tanh") * nd, clip=2.0)))
    add("forward-elu-g-clip-int32-table", single_lstm_model(LstmSpec(
        activations=("Sigmoid", "Elu", "Tanh"), activation_alpha=(0.8,), clip=2.5, scale=2.0)))
    add("bidirectional-leakyrelu-affine-clip", single_lstm_model(LstmSpec(
        direction="bidirectional", activations=("Sigmoid", "LeakyRelu", "Tanh", "HardSigmoid", "Affine", "Softsign"),
        activation_alpha=(0.1, 0.3, -0.7), activation_beta=(0.45, 0.2), clip=1.5)))
    # the standard table on the general step: gate inputs coarser than the grid, a coarse cell
    add("forward-coarse-gates-P8-table8192-peepholes", single_lstm_model(LstmSpec(peepholes=True, scale=2.0)),
        pre_frac=8, lut_size=8192)
    add("bidirectional-coarse-cell-headroom2048-clip", single_lstm_model(
        LstmSpec(direction="bidirectional", clip=2.0, scale=2.0)), cell_headroom=2048.0)
    add("forward-input_forget-peepholes-clip-int8", single_lstm_model(
        LstmSpec(input_forget=True, peepholes=True, clip=1.0, scale=2.5, hidden_size=9)), lstm_weight_bits=8)
    two = [LstmSpec(input_size=3, hidden_size=5), LstmSpec(input_size=5, hidden_size=4)]
    for kind, acts in (("last_gemm", ()), ("last_gemm", ("Softmax",)), ("first_gemm", ("Relu",)),
                       ("state_matmul", ("LogSoftmax",)), ("per_step", ()), ("per_step", ("Tanh",)),
                       ("per_step", ("Softmax",)), ("last_slice_gemm_t0", ("Sigmoid",)),
                       ("state_flatten_gemm", ())):
        add(f"stack-{kind}-{'-'.join(acts) or 'linear'}", stacked_model(two, head=HeadSpec(kind, 3, activations=acts)))
    bi = [LstmSpec(input_size=4, hidden_size=3, direction="bidirectional"),
          LstmSpec(input_size=6, hidden_size=5, direction="reverse", peepholes=True),
          LstmSpec(input_size=5, hidden_size=4)]
    add("stack-bi-reverse-forward-per_step", stacked_model(bi, head=HeadSpec("per_step", 2)))
    add("stack-bi-reverse-forward-last", stacked_model(bi, head=HeadSpec("last_gemm", 4, activations=("Softmax",))))
    lens2 = [LstmSpec(input_size=3, hidden_size=4, sequence_lens="input"), LstmSpec(input_size=4, hidden_size=3)]
    add("stack-lens-first-layer-only", stacked_model(lens2, head=HeadSpec("last_gemm", 2)), lens="input")
    for f in sorted(glob.glob(str(ROOT / "fixtures" / "torch" / "*_legacy.onnx"))) + sorted(
            glob.glob(str(ROOT / "fixtures" / "torch" / "*_baked.onnx"))):
        if "hn_cat" in f:
            continue  # refused by the importer
        if "gru" in Path(f).name:
            continue  # the GRU fixtures: tests/test_gru_c.py
        z.append(Entry("torch-" + Path(f).stem, None, 0, "none", fixture=f))
    return z


ZOO = _zoo()


@dataclass(frozen=True, eq=False)
class Prepared:
    entry: Entry
    qmodel: tinylstm.qmodel.QuantizedModel
    inputs: tuple[tuple[np.ndarray, np.ndarray | None], ...]  # (x int8 ONNX layout, sequence_lens)


def _prepare(e: Entry) -> Prepared:
    if e.fixture is not None:
        fm = tinylstm.load_onnx(e.fixture)
        data = np.load(e.fixture.replace(".onnx", ".npz"))
        q = quantize(fm, [data["x0"], data["x1"]])
        xs = [q.quantize_input(data["x0"]), q.quantize_input(data["x1"])]
        base = xs[0]
        xs += [np.full_like(base, 127), np.full_like(base, -128)]
        inputs = [(x, None) for x in xs]
    else:
        m = e.onnx_model
        fm = tinylstm.load_onnx(m)
        calib = [random_input(m, e.batch, t, seed=i, scale=1.5) for i, t in enumerate((5, 8, 11))]
        # LSTM weights: 16-bit (the default) for most, 8-bit for every fourth model
        opts = dict({"lstm_weight_bits": 8 if ZOO.index(e) % 4 == 1 else 16}, **dict(e.opts))
        q = quantize(fm, calib, **opts)
        inputs = []
        for k, t in enumerate((1, 4, 9, 33)):
            if t < e.min_time:
                continue
            x = q.quantize_input(random_input(m, e.batch, t, seed=100 + k, scale=1.5))
            if t == 9:  # extremes: every feature at the int8 ends, and alternating
                x = np.where(np.arange(x.size).reshape(x.shape) % 2 == 0, 127, -128).astype(np.int8)
            lens = None
            if e.lens == "input":
                lens = np.array([t, max(t - 3, 0), 0, 1, t][: e.batch], np.int32)
            inputs.append((x, lens))
        x = q.quantize_input(random_input(m, e.batch, 12, seed=7))
        inputs += [(np.full_like(x, 127), None if e.lens != "input" else np.full(e.batch, 12, np.int32)),
                   (np.full_like(x, -128), None if e.lens != "input" else np.full(e.batch, 5, np.int32))]
    return Prepared(e, q, tuple(inputs))


@pytest.fixture(scope="module")
def zoo() -> list[Prepared]:
    return [_prepare(e) for e in ZOO]


CONFIGS = {
    "gcc-O2": ("gcc", "-O2", False),
    "clang-O3": ("clang", "-O3", False),
    "gcc-O0": ("gcc", "-O0", False),
    "clang-asan-ubsan": ("clang", "-O1", True),
    # the portable C kernels (x86 builds otherwise take the SSE2 ones), under the sanitizers too
    "gcc-portable-asan-ubsan": ("gcc", "-O1", True),
    # the Armv6-M arithmetic (16-bit halves, 32-bit cell words, no 64-bit multiply) in portable C
    "gcc-armv6m-arith-asan-ubsan": ("gcc", "-O1", True),
}
EXTRA_FLAGS = {"gcc-portable-asan-ubsan": ("-DTL_PORTABLE",),
               "gcc-armv6m-arith-asan-ubsan": ("-DTL_PORTABLE", "-DTL_NO_LONG_MUL")}


#: the other builds compile every third zoo model (diverse enough, a third of the compile time)
SUBSET = tuple(range(0, len(ZOO), 3))


@pytest.fixture(scope="module")
def builds(zoo, tmp_path_factory):
    cache: dict[str, object] = {}

    def get(config: str):
        if config not in cache:
            cc, opt, san = CONFIGS[config]
            reason = missing_reason(cc)
            if reason:
                pytest.skip(reason)
            models = [p.qmodel for p in zoo] if config == "gcc-O2" else [zoo[i].qmodel for i in SUBSET]
            cache[config] = build_host(models, tmp_path_factory.mktemp(config), compiler=cc, opt=opt, sanitize=san,
                                       max_steps=64, extra_flags=EXTRA_FLAGS.get(config, ()))
        return cache[config]

    return get


def _check_model(exe, i: int, p: Prepared, modes: tuple[str, ...]) -> int:
    """Every input through every mode: output and every LSTM state equal the simulator's."""
    checked = 0
    has_step = exe.plans[i].has_step
    for x, lens in p.inputs:
        y_sim, tr_sim = p.qmodel.run_int(x, sequence_lens=lens, trace=True)
        for mode in modes:
            if mode != "run" and (not has_step or lens is not None):
                continue
            y_c, tr_c = run_c(exe, x, mode, trace=mode != "interleave", model=i, sequence_lens=lens)
            where = f"{p.entry.name} {mode} x{tuple(x.shape)}"
            assert y_c.shape == y_sim.shape, where
            bad = np.argwhere(y_c != y_sim)
            assert bad.size == 0, f"{where}: output {tuple(bad[0])}: C {y_c[tuple(bad[0])]} sim {y_sim[tuple(bad[0])]}"
            if tr_c is not None:
                assert set(tr_c) <= set(tr_sim), where
                for name, dirs in tr_c.items():
                    for d, ct in enumerate(dirs):
                        st = tr_sim[name][d]
                        assert np.array_equal(ct.valid, st.valid), f"{where}: {name}[{d}] processed steps differ"
                        for what in ("h", "c"):
                            a, b = getattr(ct, what), getattr(st, what)
                            bad = np.argwhere(a != b)
                            assert bad.size == 0, (f"{where}: {name}[{d}].{what} at (row, t, unit) "
                                                   f"{tuple(bad[0])}: C {a[tuple(bad[0])]} sim {b[tuple(bad[0])]}")
            checked += 1
    return checked


@pytest.mark.parametrize("entry", ZOO, ids=[e.name for e in ZOO])
def test_zoo_gcc_O2_all_modes(builds, zoo, entry: Entry) -> None:
    exe = builds("gcc-O2")
    i = ZOO.index(entry)
    assert _check_model(exe, i, zoo[i], ("run", "step", "interleave")) > 0


@pytest.mark.parametrize("config", ["clang-O3", "gcc-O0", "clang-asan-ubsan", "gcc-portable-asan-ubsan",
                                    "gcc-armv6m-arith-asan-ubsan"])
def test_zoo_other_builds(builds, zoo, config: str) -> None:
    exe = builds(config)
    n = 0
    for j, i in enumerate(SUBSET):
        n += _check_model(exe, j, zoo[i], ("run", "step"))
    assert n > 100


def test_zoo_covers_the_brief(zoo) -> None:
    """The zoo really contains what it claims (so a refactor cannot silently thin it out)."""
    from tinylstm.codegen.plan import make_plan

    from tinylstm.lowering import STEP_FAST, STEP_GENERAL, step_choice

    plans = [make_plan(p.qmodel, 64) for p in zoo]
    assert sum(pl.streaming for pl in plans) >= 20 and sum(not pl.streaming for pl in plans) >= 20
    assert sum(pl.output_seq for pl in plans) >= 10 and sum(not pl.output_seq for pl in plans) >= 10
    assert sum(pl.lens_input for pl in plans) >= 6
    lstms = [n for p in zoo for n in p.qmodel.lstm_layers]
    assert any(n.clip_q is not None for n in lstms) and any(n.input_forget for n in lstms)
    assert any(d.peep is not None for n in lstms for d in n.directions)
    assert any(n.sequence_lens is not None and not n.sequence_lens_is_input for n in lstms)
    assert any(np.unique(d.initial_c).size > 1 for n in lstms for d in n.directions)
    custom = [d for n in lstms for d in n.directions if not d.standard]
    assert any(d.lut_f.function.startswith("HardSigmoid") for d in custom)
    assert any(not d.lut_g.sym for d in custom)  # a full (non-symmetric) table
    assert any(int(d.lut_g.table.min()) < 0 and not d.lut_g.sym for d in custom)  # int32
    widths = {int(np.abs(d.w.astype(np.int64)).max()) > 127 for n in lstms for d in n.directions}
    assert widths == {True, False}  # 16-bit and 8-bit weight matrices
    # the fast step with each of its features, the general step with each of its reasons
    fast = [n for n in lstms if step_choice(n)[0] == STEP_FAST]
    general = [(n, step_choice(n)[1]) for n in lstms if step_choice(n)[0] == STEP_GENERAL]
    assert any(int(np.abs(d.w.astype(np.int64)).max()) <= 127 for n in fast for d in n.directions)
    assert any(d.peep is not None for n in fast for d in n.directions)
    assert any(n.clip_q is not None for n in fast) and any(n.input_forget for n in fast)
    assert any(n.num_directions == 2 for n in fast)
    assert any("custom" in why for _, why in general)
    assert any(n.directions[0].standard and "gate inputs" in why for n, why in general)
    assert any(n.directions[0].standard and "cell" in why for n, why in general)


def test_long_sequences_and_state_carry(tmp_path: Path) -> None:
    """2000 steps of a saturating model, streaming and buffered (max_steps sized to fit)."""
    specs = [LstmSpec(input_size=4, hidden_size=6, peepholes=True, scale=3.0),
             LstmSpec(input_size=4, hidden_size=6, direction="bidirectional", clip=1.5)]
    qs, xs = [], []
    for k, spec in enumerate(specs):
        m = single_lstm_model(spec)
        q = quantize(tinylstm.load_onnx(m), [random_input(m, 2, 50, seed=k, scale=2.0)])
        qs.append(q)
        xs.append(q.quantize_input(random_input(m, 2, 2000, seed=9, scale=2.0)))
    exe = build_host(qs, tmp_path, max_steps=2000)
    for i, (q, x) in enumerate(zip(qs, xs, strict=True)):
        y_sim = q.run_int(x)
        for mode in ("run", "step") if exe.plans[i].has_step else ("run",):
            y_c, _ = run_c(exe, x, mode, model=i)
            assert np.array_equal(y_c, y_sim), f"model {i} {mode}"


def test_run_beyond_max_steps_fills_zero_point(tmp_path: Path) -> None:
    """A buffered model refuses sequences longer than MAX_STEPS: y = output zero point."""
    m = single_lstm_model(LstmSpec(direction="bidirectional"))
    q = quantize(tinylstm.load_onnx(m), [random_input(m, 2, 6, seed=0)])
    exe = build_host(q, tmp_path, max_steps=5)
    x = q.quantize_input(random_input(m, 1, 5, seed=1))
    assert np.array_equal(run_c(exe, x)[0], q.run_int(x))
    x6 = q.quantize_input(random_input(m, 1, 6, seed=1))
    y, _ = run_c(exe, x6)
    assert (y == q.output_zero_point).all()


def test_sanitizer_build_catches_errors(tmp_path: Path) -> None:
    """The sanitizer flags really trap (so a clean sanitizer run means something)."""
    reason = missing_reason("clang")
    if reason:
        pytest.skip(reason)
    src = tmp_path / "bad.c"
    src.write_text("#include <stdint.h>\n#include <stdlib.h>\nint main(int argc, char **argv)\n{\n"
                   "    int8_t *a = (int8_t *)calloc(4u, 1u);\n    int v;\n    (void)argv;\n"
                   "    if (argc > 1) {\n        v = INT32_MAX - 2 + argc; /* signed overflow with 3 args */\n"
                   "    } else {\n        v = a[argc + 3]; /* heap overflow */\n    }\n    free(a);\n"
                   "    return v;\n}\n")
    exe = tmp_path / "bad"
    compile_host([src], exe, compiler="clang", opt="-O1", sanitize=True)
    res = subprocess.run([str(exe)], capture_output=True, timeout=60)
    assert res.returncode != 0 and b"AddressSanitizer" in res.stderr
    res = subprocess.run([str(exe), "a", "b"], capture_output=True, timeout=60)
    assert res.returncode != 0 and b"runtime error" in res.stderr


def test_strict_flags_are_the_toolchain_ones() -> None:
    assert "-Wconversion" in STRICT_FLAGS and "-Werror" in STRICT_FLAGS and "-std=c99" in STRICT_FLAGS


def test_dataclass_roundtrip_through_tlq_gives_same_c(tmp_path: Path) -> None:
    """A model saved to .tlq and loaded back generates the very same C."""
    m = single_lstm_model(LstmSpec(direction="bidirectional", peepholes=True))
    q = quantize(tinylstm.load_onnx(m), [random_input(m, 2, 6, seed=0)])
    q.save(tmp_path / "m.tlq")
    q2 = tinylstm.qmodel.QuantizedModel.load(tmp_path / "m.tlq")
    assert emit_model(q, "m") == emit_model(q2, "m")
    assert dataclasses.is_dataclass(q2)
    assert os.path.getsize(tmp_path / "m.tlq") > 0


# ---- run_c_steps (public): the output after every step ---------------------------------------
_JV_MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"
JV, JV_CALIB, JV_TEST = (_JV_MODELS / f for f in ("japanese_vowels.onnx", "japanese_vowels_calib.npz",
                                                   "japanese_vowels_test.npz"))
needs_gcc = pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))


@pytest.fixture(scope="module")
def jv():
    fm = tinylstm.load_onnx(JV)
    return fm, tinylstm.quantize(fm, str(JV_CALIB))


@needs_gcc
def test_run_c_steps_returns_the_output_after_every_step(jv, tmp_path):
    from tinylstm.cbuild.host import build_host, run_c, run_c_steps

    _, qm = jv
    d = load_task_file(JV_TEST)
    x = qm.quantize_input(d.x[:3, :9].astype(np.float32))  # (3, 9, 12) batch-first, one length
    exe = build_host(qm, tmp_path / "h")
    y, tr = run_c_steps(exe, x, trace=True)
    assert y.shape == (3, 9, 9) and y.dtype == np.int8
    y_last, tr_c = run_c(exe, x, "step", trace=True)
    assert np.array_equal(y[:, -1], y_last)
    for t in range(9):  # a many-to-one model: after step t, step() wrote run_int of the prefix
        assert np.array_equal(y[:, t], qm.run_int(x[:, : t + 1])), t
    _, sim = qm.run_int(x, trace=True)
    (c_dir,), (s_dir,) = tr["/lstm/LSTM"], sim["/lstm/LSTM"]
    assert np.array_equal(c_dir.h, s_dir.h) and np.array_equal(c_dir.c, s_dir.c)
    assert np.array_equal(c_dir.h, tr_c["/lstm/LSTM"][0].h)
    assert run_c_steps(exe, x)[1] is None


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinylstm"):
            bad += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                and isinstance(node.value, ast.Name) and node.value.id in {"chost", "tinylstm"}:
            bad.append(f"{node.value.id}.{node.attr}")
    return bad


@needs_gcc
def test_stream_long_bench_uses_public_calls_and_still_matches(capsys):
    path = _JV_MODELS.parents[1] / "bench" / "stream_long.py"
    assert _private_imports(path) == []
    spec = importlib.util.spec_from_file_location("stream_long_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    assert bench.main(["--model", "japanese_vowels", "--steps", "400", "--checkpoint", "150"]) == 0
    out = capsys.readouterr().out
    assert "SUMMARY model=japanese_vowels steps=400" in out and "mismatches=0 overflows=0" in out
