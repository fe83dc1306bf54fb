"""The integer GRU's C kernels (issue #18 phase 2b) vs the simulator: exact equality, never a tolerance.

- the block layout and the step choice (tinylstm/lowering/gru.py);
- the stage kernels (tl_gru_gates_s8, tl_gru_candidate_s8, tl_gru_update_s16) and every step
  (tl_gru_step_s8, tl_gru_step_fast[_q15][_lbr0]) against simulate/gru_checked.py on arbitrary states (int16
  states over their whole range, gate values of both signs, saturated update gates) of every GRU
  direction of tests/gru_c_cases.py's hand-picked models, on the host arithmetic and the Armv6-M
  one (-DTL_PORTABLE -DTL_NO_LONG_MUL) under ASan + UBSan;
- the fast step's inline helpers (sigmoid, tanh, the update on 32-bit words, the reset product)
  over whole input ranges, ties included.

Whole models: tests/test_gru_c.py; the Cortex-M cores: tests/test_gru_c_target.py. The reference is
the checked simulator (``simulate.checked.CHECKED``), forced for this module.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from gru_c_cases import SPECIAL, gru_layers, hand_models
from tinylstm.codegen.emit import emit_model
from tinylstm.codegen.runtime_files import RUNTIME_SOURCES, runtime_files
from tinylstm.codegen.writer import write_tree

from tinylstm.cbuild.toolchain import compile_host, missing_reason
from tinylstm.lowering import GRU_FAST_STEPS, GRU_STEP_GENERAL, block_layout, gru_scratch_bytes, gru_step_choice
from tinylstm.simulate import checked, gru_checked

needs_gcc = pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))


@pytest.fixture(scope="module", autouse=True)
def checked_reference():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checked, "CHECKED", True)
        yield


@pytest.fixture(scope="module")
def hand():
    return hand_models()


# ---------------------------------------------------------------------------------------------
# lowering
# ---------------------------------------------------------------------------------------------
def test_block_layout_places_every_weight() -> None:
    H, K = 6, 5
    w = np.arange(1, 3 * H * K + 1).reshape(3 * H, K)
    for wide in (False, True):
        lay = block_layout(w, H, K, wide)
        assert lay.shape == (2, 3, 2, 4, 4)
        quad = [0, 2, 1, 3] if wide else [0, 1, 2, 3]
        for b, g, q, u, i in np.ndindex(*lay.shape):
            j, k = 4 * b + u, 4 * q + quad[i]
            want = w[g * H + j, k] if j < H and k < K else 0  # padding units and inputs are 0
            assert lay[b, g, q, u, i] == want
    assert gru_scratch_bytes(5, 6, True) == 8 * 2 + 8 * 2
    assert gru_scratch_bytes(5, 6, False) == 8 * 2 + 8 * 2 + 8 * 2 + 4 * 6


def test_hand_models_cover_every_c_path(hand) -> None:
    """Each step and each reason of the general step, both linear_before_reset forms on the fast step,
    clip, int8 weights, a_h > 0 on the fast step, a_n > 0 and q_f = 14 on the general step."""
    layers = [(n, gru_step_choice(n)) for _, q, _ in hand for n in gru_layers(q)]
    fast = [n for n, (s, _) in layers if s != GRU_STEP_GENERAL]
    general = [(n, why) for n, (s, why) in layers if s == GRU_STEP_GENERAL]
    assert {n.linear_before_reset for n in fast} == {True, False}
    assert any(n.clip_q is not None and n.linear_before_reset for n in fast)
    assert any(n.clip_q is not None and not n.linear_before_reset for n in fast)
    assert any(int(np.abs(d.r.astype(np.int64)).max()) <= 127 for n in fast for d in n.directions)
    assert any(d.a_h > 0 for n in fast for d in n.directions)
    assert any(n.num_directions == 2 for n in fast) and any(d.reverse for n in fast for d in n.directions)
    assert {s for _, (s, _) in layers} == {GRU_STEP_GENERAL, *GRU_FAST_STEPS.values()}
    reasons = {why.split()[0] for _, why in general}
    assert reasons == {"custom", "gate", "state"}
    assert any(d.a_n > 0 for n, _ in general for d in n.directions)
    assert any(d.gate_q[0] == 14 for n, _ in general for d in n.directions)
    assert {n.linear_before_reset for n, _ in general} == {True, False}
    assert len(SPECIAL) >= 10


# ---------------------------------------------------------------------------------------------
# stage kernels and steps, per layer direction
# ---------------------------------------------------------------------------------------------
_STAGES_C = r"""
#include <stdio.h>
#include <string.h>
@INCLUDES@

typedef void (*step_fn)(const tl_gru_params_t *, const int8_t *, int16_t *, int8_t *, int16_t *);
/* every GRU direction of the included models, the step its layer takes, and the fast step of its
 * linear_before_reset form with clip and any a_h (0 when the layer is not a fast one) */
static const tl_gru_params_t *const g_dirs[] = {@DIRS@};
static const step_fn g_step[] = {@STEP@};
static const step_fn g_fast[] = {@FAST@};

/* reads records: direction (int32), x (I int8), h (H int16), r, z, n (H int32 each); writes the gates
 * stage z (2H), gates (2H), the candidate stage z (H), n (H) (int32), the update stage h' (H int16),
 * then h' (H int16), y (H int8) of tl_gru_step_s8, of the layer's step and of g_fast (zeros when
 * it does not apply) */
int main(void)
{
    static int8_t x[256], y[256];
    static int16_t h[256], h1[256];
    static int32_t r[256], gz[256], n[256], z[512], g[512];
    static int16_t scratch[4096];
    int32_t di;
    while (fread(&di, 4u, 1u, stdin) == 1u) {
        const tl_gru_params_t *p = g_dirs[di];
        const size_t I = (size_t)p->input_size, H = (size_t)p->hidden_size;
        int k;
        if (fread(x, 1u, I, stdin) != I || fread(h, 2u, H, stdin) != H || fread(r, 4u, H, stdin) != H ||
            fread(gz, 4u, H, stdin) != H || fread(n, 4u, H, stdin) != H) {
            return 3;
        }
        tl_gru_gates_s8(p, x, h, z, g, scratch);
        fwrite(z, 4u, 2u * H, stdout);
        fwrite(g, 4u, 2u * H, stdout);
        tl_gru_candidate_s8(p, x, h, r, z, g, scratch);
        fwrite(z, 4u, H, stdout);
        fwrite(g, 4u, H, stdout);
        memcpy(h1, h, 2u * H);
        tl_gru_update_s16(p, gz, n, h1);
        fwrite(h1, 2u, H, stdout);
        for (k = 0; k < 3; ++k) {
            const step_fn f = k == 0 ? tl_gru_step_s8 : (k == 1 ? g_step[di] : g_fast[di]);
            memcpy(h1, h, 2u * H);
            memset(y, 0x55, H);
            if (f != 0) {
                f(p, x, h1, y, scratch);
            } else {
                memset(h1, 0, 2u * H);
                memset(y, 0, H);
            }
            fwrite(h1, 2u, H, stdout);
            fwrite(y, 1u, H, stdout);
        }
    }
    return 0;
}
"""


def _stage_program(models, workdir: Path) -> tuple[list[tuple], dict[str, Path]]:
    """One C program over every GRU direction of ``models``: returns the (layer, direction) list
    in the program's order and its executables (host arithmetic; Armv6-M arithmetic, sanitized)."""
    files = dict(runtime_files())
    dirs, names, steps, fast = [], [], [], []
    for i, q in enumerate(models):
        files.update(emit_model(q, f"m{i}"))
        params = [ln.split()[3].split("[")[0] for ln in files[f"m{i}.c"].splitlines()
                  if ln.startswith("static const tl_gru_params_t")]
        for name, layer in zip(params, gru_layers(q), strict=True):
            for di, d in enumerate(layer.directions):
                dirs.append((layer, d))
                names.append(f"&{name}[{di}]")
                step = gru_step_choice(layer)[0]
                steps.append(step)
                fast.append(GRU_FAST_STEPS[(bool(layer.linear_before_reset), False)] if step != GRU_STEP_GENERAL
                            else "0")
    files["stages.c"] = (_STAGES_C.replace("@INCLUDES@", "\n".join(f'#include "m{i}.c"' for i in range(len(models))))
                         .replace("@DIRS@", ", ".join(names)).replace("@STEP@", ", ".join(steps))
                         .replace("@FAST@", ", ".join(fast)))
    src = workdir / "src"
    write_tree(files, src)
    exes = {}
    for build, flags, san in (("host", (), False), ("armv6m-arith", ("-DTL_PORTABLE", "-DTL_NO_LONG_MUL"), True)):
        exes[build] = workdir / f"stages-{build}"
        compile_host([src / "stages.c", *(src / s for s in RUNTIME_SOURCES)], exes[build], include_dirs=(src,),
                     sanitize=san, extra_flags=("-Wno-unused-function", *flags))
    return dirs, exes


def _records(layer, d, rng: np.random.Generator, n: int):
    """Arbitrary inputs of one direction: x (n, I) int8, h (n, H) int16 over the whole range (extremes,
    small states), gate values r and z in [-2^15, 2^15] (every z = 2^q_f in a quarter of the records:
    a saturated update gate), candidates n in [-2^15, 2^15]."""
    I, H = layer.input_size, layer.hidden_size
    x = rng.integers(-128, 128, (n, I))
    h = rng.integers(-32768, 32768, (n, H))
    x[:8], h[:8] = 127, 32767
    x[8:16], h[8:16] = -128, -32768
    h[16:40] = rng.integers(-64, 65, (24, H))
    r = rng.integers(-32768, 32769, (n, H))
    r[40:80] = rng.integers(0, 32769, (40, H))  # sigmoid's range
    gz = rng.integers(-32768, 32769, (n, H))
    gz[: n // 4] = 1 << d.gate_q[0]
    gz[n // 4 : n // 2] = rng.integers(0, (1 << d.gate_q[0]) + 1, (n // 2 - n // 4, H))
    nn = rng.integers(-32768, 32769, (n, H))
    return x, h, r, gz, nn


@needs_gcc
def test_stage_kernels_and_steps(hand, tmp_path: Path) -> None:
    models = [q for _, q, _ in hand]
    dirs, exes = _stage_program(models, tmp_path)
    rng = np.random.default_rng(3)
    blob, want = [], []
    for di, (layer, d) in enumerate(dirs):
        x, h, r, gz, nn = _records(layer, d, rng, 96)
        for i in range(x.shape[0]):
            blob.append(np.int32(di).tobytes() + x[i].astype(np.int8).tobytes() + h[i].astype(np.int16).tobytes()
                        + r[i].astype(np.int32).tobytes() + gz[i].astype(np.int32).tobytes()
                        + nn[i].astype(np.int32).tobytes())
        tx = checked.input_side(layer, d, x[:, None, :])[:, 0]
        v_h = gru_checked.state_input(d, h)
        z, gates = gru_checked.gru_gates(layer, d, tx, v_h)
        zc, nc = gru_checked.gru_candidate(layer, d, tx, h, v_h, r)
        hu = gru_checked.gru_update(d, gz, nn, h)
        saturated = gz == 1 << d.gate_q[0]
        assert np.array_equal(hu[saturated], h[saturated])  # a saturated update gate keeps the state
        h_step, y_step, _, _ = gru_checked.gru_step(layer, d, x, h)
        fast = gru_step_choice(layer)[0] != GRU_STEP_GENERAL
        want.append((layer, z, gates, zc, nc, hu, h_step, y_step, fast))
    data = b"".join(blob)
    for build, exe in exes.items():
        out = subprocess.run([str(exe)], input=data, capture_output=True, check=True, timeout=60).stdout
        pos = 0
        for di, (layer, z, gates, zc, nc, hu, h_step, y_step, fast) in enumerate(want):
            H = layer.hidden_size
            for i in range(z.shape[0]):
                rec = {}
                for key, dt, count in (("z", np.int32, 2 * H), ("gates", np.int32, 2 * H), ("zc", np.int32, H),
                                       ("nc", np.int32, H), ("hu", np.int16, H), ("h0", np.int16, H),
                                       ("y0", np.int8, H), ("h1", np.int16, H), ("y1", np.int8, H),
                                       ("h2", np.int16, H), ("y2", np.int8, H)):
                    rec[key] = np.frombuffer(out, dt, count, pos)
                    pos += count * np.dtype(dt).itemsize
                where = f"{build} direction {di} ({layer.name}) record {i}"
                fast_ref = (("h2", h_step), ("y2", y_step)) if fast else ()
                for key, ref in (("z", z), ("gates", gates), ("zc", zc), ("nc", nc), ("hu", hu), ("h0", h_step),
                                 ("y0", y_step), ("h1", h_step), ("y1", y_step)) + fast_ref:
                    assert np.array_equal(rec[key], ref[i]), f"{where}: {key} C {rec[key]} sim {ref[i]}"
        assert pos == len(out)


# ---------------------------------------------------------------------------------------------
# the fast step's inline helpers, over whole input ranges
# ---------------------------------------------------------------------------------------------
_FAST_C = r"""
#include <stdio.h>
#include "tl_gru_fast.c" /* its static helpers; the program links every other runtime file */

static uint16_t g_tab[8200];

/* records of 4 int64 (op, a, b, c) -> one int64: 0 sets the table (n = a entries + 1 follow, shift b),
 * 1 tl_std_sigmoid(a), 2 tl_std_tanh(a), 3 tl_gru_std_update(a >> 32, a & 0xffffffff, b, c >> 8, c & 255),
 * 4 tl_gru_reset_prod(a, b), 5 tl_shift_half_up(a, b) */
int main(void)
{
    int64_t rec[4];
    uint32_t n = 0u, mask = 0u;
    int32_t sh = 1;
    while (fread(rec, 8u, 4u, stdin) == 4u) {
        int64_t r = 0;
        switch (rec[0]) {
        case 0: {
            uint32_t j;
            n = (uint32_t)rec[1];
            sh = (int32_t)rec[2];
            mask = ((uint32_t)1 << sh) - 1u;
            for (j = 0; j <= n; ++j) {
                int64_t v;
                if (fread(&v, 8u, 1u, stdin) != 1u) {
                    return 3;
                }
                g_tab[j] = (uint16_t)v;
            }
            continue;
        }
        case 1: r = tl_std_sigmoid((int32_t)rec[1], g_tab, n, sh, mask); break;
        case 2: r = tl_std_tanh((int32_t)rec[1], g_tab, n, sh, mask); break;
        case 3: r = tl_gru_std_update((int32_t)(rec[1] >> 32), (int32_t)(rec[1] & 0xFFFFFFFF), (int32_t)rec[2],
                                      (int32_t)(rec[3] >> 8), (int32_t)(rec[3] & 255)); break;
        case 4: r = tl_gru_reset_prod((int32_t)rec[1], (int32_t)rec[2]); break;
        case 5: r = tl_shift_half_up((int32_t)rec[1], (int32_t)rec[2]); break;
        default: return 2;
        }
        if (fwrite(&r, 8u, 1u, stdout) != 1u) {
            return 4;
        }
    }
    return 0;
}
"""


@needs_gcc
def test_fast_helpers_over_whole_ranges(tmp_path: Path) -> None:
    """tl_std_sigmoid / tl_std_tanh (every residue below the grid, both signs, the saturated ends),
    tl_gru_std_update (a_h = 0 and 1, ties of both parities, saturation), tl_gru_reset_prod (ties,
    the int32 extremes of the product) and tl_shift_half_up against tinylstm/fixedpoint.py, on the
    host arithmetic and the Armv6-M one under the sanitizers."""
    from tinylstm.fixedpoint import round_shift, sat16, shift_half_up, sigmoid_q15, tanh_q15
    from tinylstm.quantize.luts import standard_table

    files = dict(runtime_files(), **{"fast.c": _FAST_C})
    write_tree(files, tmp_path / "src")
    src = tmp_path / "src"
    others = [src / f for f in RUNTIME_SOURCES if f != "tl_gru_fast.c"]
    rng = np.random.default_rng(9)
    recs, want = [], []

    def add(op: int, a, b, c, w) -> None:
        a, b, c = (np.broadcast_to(np.asarray(v, np.int64), np.shape(w)) for v in (a, b, c))
        recs.append(np.stack([np.full(np.shape(w), op, np.int64), a, b, c], axis=-1).reshape(-1))
        want.append(np.asarray(w, np.int64).reshape(-1))

    for size, sh in ((512, 11), (512, 1), (16, 5), (2048, 14)):
        table, frac = standard_table(size)
        recs.append(np.concatenate([[0, size, sh, 0], table.astype(np.int64)]))
        top = (size << sh) + (1 << (sh + 1))
        z = np.concatenate([np.arange(-(1 << (sh + 2)), (1 << (sh + 2)) + 1), rng.integers(-top, top, 20000),
                            [top, -top, 2**31 - 1, -(2**31 - 1)]])
        add(1, z, 0, 0, sigmoid_q15(z, table, sh))
        add(2, z, 0, 0, tanh_q15(z, table, sh))
    for a in (0, 1):
        s = 15 + a
        gz = rng.integers(0, 32769, 30000)
        gz[:5000] = 16384  # z h + (1 - z) n on ties whenever h + n (a = 0) resp. n (a = 1) is odd
        gz[5000:6000] = 32768
        n = rng.integers(-32768, 32769, gz.size)
        h = rng.integers(-32768, 32768, gz.size)
        ref = sat16(round_shift((gz * h << a) + (32768 - gz) * n, s))
        add(3, (gz << 32) | (n & 0xFFFFFFFF), h, (a << 8) | s, ref)
    g = rng.integers(-32768, 32769, 20000)
    u = rng.integers(-(2**31) + 1, 2**31, g.size)
    u[:3000] = rng.integers(-(2**16), 2**16, 3000)
    g[:500], u[:500] = 32768, 2**31 - 1  # the products' extremes (|result| <= |u|: int32)
    g[500:1000], u[500:1000] = -32768, -(2**31) + 1
    u[1000:4000] = (rng.integers(-(2**15), 2**15, 3000) << 1) | 1  # odd: ties for g = 2^14
    g[1000:4000] = 16384
    add(4, g, u, 0, shift_half_up(g * u, 15))
    x = rng.integers(-(2**30), 2**30, 20000)
    sft = rng.integers(0, 16, x.size)
    add(5, x, sft, 0, [int(shift_half_up(v, int(k))) for v, k in zip(x, sft, strict=True)])
    data = np.concatenate(recs).astype(np.int64).tobytes()
    expect = np.concatenate(want)
    for build, flags, san in (("host", (), False), ("armv6m-arith", ("-DTL_PORTABLE", "-DTL_NO_LONG_MUL"), True)):
        exe = tmp_path / f"fast-{build}"
        compile_host([src / "fast.c", *others], exe, include_dirs=(src,), sanitize=san,
                     extra_flags=("-Wno-unused-function", *flags))
        got = np.frombuffer(subprocess.run([str(exe)], input=data, capture_output=True, check=True,
                                           timeout=60).stdout, np.int64)
        bad = np.nonzero(got != expect)[0]
        assert got.size == expect.size
        assert bad.size == 0, f"{build}: record {bad[0]}: C {got[bad[0]]} vs {expect[bad[0]]}"
