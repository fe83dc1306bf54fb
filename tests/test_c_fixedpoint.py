"""The C fixed-point helpers of integer spec v2 against tinylstm/fixedpoint.py: exact equality.

tl_mul16, tl_lut_u16, tl_sigmoid_q15, tl_tanh_q15 (the standard table, spec §8.1), tl_requant
(round half up, spec §2) and the steps' inlined hidden requantization tl_requant_hot, compiled
three ways on the host: the default build (x86: 64-bit products), the Armv6-M arithmetic
(-DTL_NO_LONG_MUL -DTL_PORTABLE: 16-bit halves, no 64-bit multiply) under ASan + UBSan, and clang.
The sigmoid and tanh are checked on every input up to past saturation where that is at most 2^22
values (and on the grid points, their neighbours, the half points and random inputs beyond), the
cell's tanh on every int16 cell, for every table size class and every shift the quantizer or the
checker can produce.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from tinylstm.codegen.runtime_files import RUNTIME_SOURCES, runtime_files
from tinylstm.codegen.writer import write_tree

from tinylstm.cbuild.toolchain import compile_host, missing_reason
from tinylstm.fixedpoint import lut_u16, mul16, requant, sigmoid_q15, tanh_q15
from tinylstm.quantize.luts import standard_table

pytestmark = pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))

_PRIMS_C = r"""
#include <stdio.h>
#include "tl_lstm_internal.h"

static uint16_t g_table[8193];
static int32_t g_n;

/* records of four int64 (op, a, b, c); ops 16 and 17 sweep z = a..b and write int32 results */
int main(void)
{
    int64_t rec[4];
    while (fread(rec, sizeof rec[0], 4u, stdin) == 4u) {
        int64_t r = 0;
        switch (rec[0]) {
        case 10: r = tl_mul16((int32_t)rec[1], (int32_t)rec[2]); break;
        case 11: {
            int32_t j;
            g_n = (int32_t)rec[1];
            for (j = 0; j <= g_n; ++j) {
                int64_t v;
                if (fread(&v, sizeof v, 1u, stdin) != 1u) {
                    return 3;
                }
                g_table[j] = (uint16_t)v;
            }
            continue;
        }
        case 12: r = tl_lut_u16(g_table, g_n, (uint32_t)rec[1], (int32_t)rec[2]); break;
        case 13: r = tl_sigmoid_q15((int32_t)rec[1], g_table, g_n, (int32_t)rec[2]); break;
        case 14: r = tl_tanh_q15((int32_t)rec[1], g_table, g_n, (int32_t)rec[2]); break;
        case 15: r = tl_requant((int32_t)rec[1], (int32_t)rec[2], (int32_t)rec[3]); break;
        case 16:
        case 17: {
            int64_t z;
            for (z = rec[1]; z <= rec[2]; ++z) {
                const int32_t v = rec[0] == 16 ? tl_sigmoid_q15((int32_t)z, g_table, g_n, (int32_t)rec[3])
                                               : tl_tanh_q15((int32_t)z, g_table, g_n, (int32_t)rec[3]);
                if (fwrite(&v, sizeof v, 1u, stdout) != 1u) {
                    return 4;
                }
            }
            continue;
        }
        case 18: r = tl_requant_hot((int32_t)rec[1], (int32_t)rec[2], (int32_t)rec[3]); break;
        default: return 2;
        }
        if (fwrite(&r, sizeof r, 1u, stdout) != 1u) {
            return 4;
        }
    }
    return 0;
}
"""

BUILDS = {
    "gcc-O2": ("gcc", "-O2", False, ()),
    "armv6m-arith-asan-ubsan": ("gcc", "-O1", True, ("-DTL_NO_LONG_MUL", "-DTL_PORTABLE")),
    "clang-O2": ("clang", "-O2", False, ()),
}
#: the largest full sweep of one configuration (both signs)
FULL = 1 << 22


@pytest.fixture(scope="module", params=list(BUILDS))
def prims(request, tmp_path_factory) -> Path:
    cc, opt, san, flags = BUILDS[request.param]
    reason = missing_reason(cc)
    if reason:
        pytest.skip(reason)
    d = tmp_path_factory.mktemp(request.param)
    write_tree(dict(runtime_files(), **{"prims.c": _PRIMS_C}), d / "src")
    exe = d / "prims"
    compile_host([d / "src" / "prims.c", *(d / "src" / s for s in RUNTIME_SOURCES)], exe, compiler=cc,
                 include_dirs=(d / "src",), opt=opt, sanitize=san, extra_flags=flags + ("-Wno-unused-function",))
    return exe


def _run(exe: Path, data: np.ndarray, out_dtype=np.int64) -> np.ndarray:
    res = subprocess.run([str(exe)], input=np.ascontiguousarray(data, np.int64).tobytes(), capture_output=True,
                         timeout=600, check=True)
    return np.frombuffer(res.stdout, out_dtype)


def _recs(op: int, a, b=0, c=0) -> np.ndarray:
    a = np.asarray(a, np.int64).reshape(-1)
    return np.stack([np.full_like(a, op), a, np.broadcast_to(b, a.shape), np.broadcast_to(c, a.shape)], 1)


def _edges32() -> np.ndarray:
    v = [0, 1, -1, 2, -2, 3, -3, 2**31 - 1, -(2**31) + 1, -(2**31)]
    for k in range(1, 31):
        v += [2**k, 2**k - 1, 2**k + 1, -(2**k), -(2**k) + 1, -(2**k) - 1]
    return np.unique(np.clip(np.array(v, np.int64), -(2**31), 2**31 - 1))


def _first_bad(got: np.ndarray, want: np.ndarray, x: np.ndarray, what: str) -> None:
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"{what}: input {x[bad[0]]}: C {got[bad[0]]}, Python {want[bad[0]]} ({bad.size} differ)"


def test_mul16(prims: Path) -> None:
    """floor(a m / 2^16) for every int32 a class (edges, random) and m in [0, 2^15)."""
    rng = np.random.default_rng(0)
    ms = np.unique(np.r_[0, 1, 2, 3, 255, 256, 2**14 - 1, 2**14, 2**15 - 2, 2**15 - 1, rng.integers(0, 2**15, 40)])
    e = _edges32()
    a = np.r_[np.repeat(e, ms.size), rng.integers(-(2**31), 2**31, 300_000)]
    m = np.r_[np.tile(ms, e.size), rng.integers(0, 2**15, 300_000)]
    got = _run(prims, _recs(10, a, m))
    _first_bad(got, mul16(a, m), a, "tl_mul16")


def test_requant_rounds_half_up(prims: Path) -> None:
    """tl_requant and the steps' tl_requant_hot: ((acc mult) + 2^(shift-1)) >> shift on every shift,
    with many exact ties (multipliers with trailing zeros)."""
    rng = np.random.default_rng(1)
    e = _edges32()
    e = e[e > -(2**31)]
    recs, want = [], []
    for mult in (2**30, 2**30 + 2**20, 2**31 - 1, int(rng.integers(2**30, 2**31))):
        for shift in range(0, 63):
            acc = np.r_[e, rng.integers(-(2**31) + 1, 2**31, 200), rng.integers(-(2**12), 2**12, 200) << 8]
            w = requant(acc, mult, shift)
            fits = (w >= -(2**31)) & (w <= 2**31 - 1)  # only results an int32 holds (spec sec. 11)
            for op in (15, 18):
                recs.append(_recs(op, acc[fits], mult, shift))
                want.append(w[fits])
    r = np.concatenate(recs)
    _first_bad(_run(prims, r), np.concatenate(want), r[:, 1:], "tl_requant / tl_requant_hot")
    ties = r[(r[:, 3] > 0) & (((r[:, 1] * r[:, 2]) & ((np.int64(1) << r[:, 3]) - 1)) == (np.int64(1) << (r[:, 3] - 1)))]
    assert ties.shape[0] > 500


def _load_table(size: int) -> tuple[np.ndarray, int, np.ndarray]:
    table, frac = standard_table(size)
    return table, frac, np.r_[[11, size, 0, 0], table.astype(np.int64)]


def _grid_inputs(n: int, shift: int, rng: np.random.Generator, count: int = 1 << 17) -> np.ndarray:
    """Grid points, their neighbours and half points up to past the table's end, extremes and random
    inputs: for ranges too large to sweep."""
    sh = max(shift, 0)
    j = np.arange(0, 2 * n + 3, dtype=np.int64) << sh
    half = (1 << (sh - 1)) if sh else 0
    near = np.concatenate([j + d for d in (-2, -1, 0, 1, 2, half - 1, half, half + 1)])
    x = np.r_[near, -near, rng.integers(-(2 * n + 3) << sh, (2 * n + 3) << sh, count), _edges32()]
    return np.clip(x, -(2**31) + 1, 2**31 - 1)  # |z| < 2^31 (spec sec. 11.3)


@pytest.mark.parametrize("size", [16, 512, 8192])
def test_sigmoid_and_tanh_of_the_gates(prims: Path, size: int) -> None:
    """tl_sigmoid_q15 and tl_tanh_q15 at every gate shift P - frac the quantizer (P in [4, frac + 14]) or
    the checker (up to 24) allows: every input up to saturation where that is at most 2^22 values."""
    table, frac, head = _load_table(size)
    rng = np.random.default_rng(size)
    for shift in [s for s in sorted({4 - frac, -1, 0, 1, 2, 3, 5, 8, 11, 14, 16, 24 - frac}) if s >= 4 - frac]:
        if shift > 0 and (int(np.abs(np.diff(table.astype(np.int64))).max()) * ((1 << shift) - 1) > 2**31 - 1):
            continue  # the checker refuses such a table and P (spec sec. 11.4)
        lim = (size << max(shift, 0)) + 64  # every input up to past the end of the grid
        if 2 * lim + 1 <= FULL:
            z = np.arange(-lim, lim + 1, dtype=np.int64)
            for op, fn in ((16, sigmoid_q15), (17, tanh_q15)):
                got = _run(prims, np.r_[head, [op, -lim, lim, shift]], np.int32)
                _first_bad(got, fn(z, table, shift), z, f"{fn.__name__} n={size} shift={shift}")
        z = _grid_inputs(size, shift, rng)
        for op, fn in ((13, sigmoid_q15), (14, tanh_q15)):
            got = _run(prims, np.r_[head, _recs(op, z, shift).reshape(-1)])
            _first_bad(got, fn(z, table, shift), z, f"{fn.__name__} n={size} shift={shift} (grid, random)")
    # sigma(-z) = 2^15 - sigma(z) and tanh(-z) = -tanh(z) exactly; saturated gates are exactly 1.0
    z = np.arange(0, (size << 11) + 8, 7, dtype=np.int64)
    assert np.array_equal(sigmoid_q15(z, table, 11) + sigmoid_q15(-z, table, 11), np.full(z.shape, 2**15))
    assert sigmoid_q15(np.array([size << 11, 2**31 - 1]), table, 11).tolist() == [2**15, 2**15]


@pytest.mark.parametrize("size", [16, 512, 8192])
def test_tanh_of_every_cell(prims: Path, size: int) -> None:
    """The cell's tanh (shift k - frac, k in [0, 23]) on every int16 cell value."""
    table, frac, head = _load_table(size)
    c = np.arange(-32768, 32768, dtype=np.int64)
    blob = [head] + [np.array([17, -32768, 32767, k - frac], np.int64) for k in range(0, 24)]
    got = _run(prims, np.concatenate(blob), np.int32).reshape(24, -1)
    for k in range(0, 24):
        _first_bad(got[k], tanh_q15(c, table, k - frac), c, f"tanh_q15 cell n={size} k={k}")


@pytest.mark.parametrize("size", [16, 512])
def test_lut_u16(prims: Path, size: int) -> None:
    """The unrounded interpolation, where it fits int32 (shift <= 15)."""
    table, frac, head = _load_table(size)
    rng = np.random.default_rng(7)
    recs, want = [], []
    for shift in range(-frac - 4, 16):
        u = np.abs(_grid_inputs(size, shift, rng, 4096))
        recs.append(_recs(12, u, shift))
        want.append(lut_u16(table, u, shift))
    r = np.concatenate(recs)
    _first_bad(_run(prims, np.r_[head, r.reshape(-1)]), np.concatenate(want), r[:, 1:3], "tl_lut_u16")
