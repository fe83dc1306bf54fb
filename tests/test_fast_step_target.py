"""tl_lstm_step_fast on emulated Armv7E-M cores (M4, M55: the assembly step of
codegen/runtime/tl_kernels_v7em_unit.c) against the checked simulator's ``lstm_step`` on arbitrary
states, exact equality of h' and c'.

Every feature of the fast step, one layer each: int16 and int8 weights, input and hidden sizes that
are not multiples of 4 and quad counts of every residue mod 4 (the matmul loop's entry), H < 8 (the
h pass's input in the step's frame), peepholes and clip, the coupled input/forget gate, a 16-entry
table, a coarse cell (its tanh clamped to the table's end), a fine cell (k > 15: the other cell
form) and h requantizations outside the short form's range (shift < 33 and shift > 54: the general
requantization). Records: random x, h, c over their whole int8 / int16 ranges, both extremes, small
cells (the table's fine end), with x and h at odd addresses every other record.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from onnx_builders import LstmSpec, random_input, single_lstm_model
from tinylstm.codegen.emit import emit_model
from tinylstm.codegen.runtime_files import RUNTIME_SOURCES, runtime_files
from tinylstm.codegen.writer import write_tree

import tinylstm
from tinylstm.cbuild import crossbuild, qemu
from tinylstm.cbuild.toolchain import STRICT_FLAGS, missing_reason
from tinylstm.lowering import STEP_FAST, step_choice
from tinylstm.quantize.quantizer import quantize
from tinylstm.simulate import checked as simulate

_MISSING = missing_reason("arm-none-eabi-gcc", "qemu-system-arm")
pytestmark = [pytest.mark.cross, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]

_HARNESS_C = r"""
#include <stdio.h>
#include "model.c"

/* records of x (I), h (H), c (H int16) from argv[1]; h', c' of tl_lstm_step_fast to argv[2]; x and h
 * at odd addresses every other record */
static int8_t xs[600], hs[600];
static int16_t cs[600];
static int32_t scratch[2048]; /* 4-byte aligned */

int main(int argc, char **argv)
{
    const tl_lstm_params_t *p = &@PARAMS@;
    const size_t I = (size_t)p->input_size, H = (size_t)p->hidden_size;
    FILE *in, *out;
    unsigned k = 0;
    if (argc != 3 || (in = fopen(argv[1], "rb")) == NULL || (out = fopen(argv[2], "wb")) == NULL) {
        return 2;
    }
    for (;; ++k) {
        int8_t *x = xs + (k & 1u), *h = hs + 3u * (k & 1u);
        if (fread(x, 1u, I, in) != I) {
            break;
        }
        if (fread(h, 1u, H, in) != H || fread(cs, 2u, H, in) != H) {
            return 3;
        }
        tl_lstm_step_fast(p, x, h, cs, (int16_t *)(void *)scratch);
        fwrite(h, 1u, H, out);
        fwrite(cs, 2u, H, out);
    }
    fclose(out);
    return 0;
}
"""


def _with_h_shift(q, shift: int, mult: int):
    """The model with its LSTM's hidden requantization replaced (spec sec. 2: any valid pair)."""
    layer = q.nodes[1]
    dirs = tuple(dataclasses.replace(d, h_mult=mult, h_shift=shift) for d in layer.directions)
    nodes = list(q.nodes)
    nodes[1] = dataclasses.replace(layer, directions=dirs)
    return dataclasses.replace(q, nodes=tuple(nodes))


# (name, spec, quantize options, h requantization override (shift, mult) or None)
CASES = [
    ("plain", LstmSpec(input_size=5, hidden_size=7), {}, None),
    ("plain-int8", LstmSpec(input_size=5, hidden_size=7), {"lstm_weight_bits": 8}, None),
    ("quads-1-2", LstmSpec(input_size=13, hidden_size=21, scale=1.0), {}, None),
    ("quads-3-0-int8", LstmSpec(input_size=9, hidden_size=16, scale=1.0), {"lstm_weight_bits": 8}, None),
    ("wide", LstmSpec(input_size=16, hidden_size=40), {}, None),
    ("peephole-clip", LstmSpec(input_size=3, hidden_size=6, peepholes=True, clip=0.8, scale=3.0), {}, None),
    ("peephole-clip-int8", LstmSpec(input_size=6, hidden_size=9, peepholes=True, clip=2.5, scale=3.0),
     {"lstm_weight_bits": 8}, None),
    ("peephole", LstmSpec(input_size=4, hidden_size=10, peepholes=True, scale=2.0), {}, None),
    ("input_forget-clip", LstmSpec(input_size=4, hidden_size=5, input_forget=True, clip=1.5, scale=2.0), {},
     None),
    ("input_forget-peephole-clip-int8", LstmSpec(input_size=7, hidden_size=9, input_forget=True, peepholes=True,
                                                 clip=1.0, scale=2.5), {"lstm_weight_bits": 8}, None),
    ("table16", LstmSpec(input_size=5, hidden_size=6, scale=2.0), {"lut_size": 16}, None),
    ("coarse-cell-headroom64", LstmSpec(input_size=5, hidden_size=6, clip=3.0), {"cell_headroom": 64.0}, None),
    ("fine-cell-k18", LstmSpec(input_size=5, hidden_size=6, scale=0.05, bias=False), {}, None),
    ("h-shift-30", LstmSpec(input_size=4, hidden_size=9), {}, (30, 2**30 + 12345)),
    ("h-shift-58", LstmSpec(input_size=4, hidden_size=9), {}, (58, 2**31 - 7)),
]
#: Armv7E-M (M4) and Armv8.1-M (M55, the same code on another core model)
TARGETS = ("cortex-m4", "cortex-m55")


def _params(q, tmp: Path) -> tuple[Path, int, int]:
    files = dict(runtime_files(), **emit_model(q, "model"))
    name = [ln.split()[3].split("[")[0] for ln in files["model.c"].splitlines()
            if ln.startswith("static const tl_lstm_params_t")][0]
    files["harness.c"] = _HARNESS_C.replace("@PARAMS@", name + "[0]")
    write_tree(files, tmp / "src")
    layer = q.nodes[1]
    return tmp / "src", layer.input_size, layer.hidden_size


def _records(I: int, H: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (n, I)).astype(np.int8)
    h = rng.integers(-128, 128, (n, H)).astype(np.int8)
    c = rng.integers(-32768, 32768, (n, H)).astype(np.int16)
    x[:20], h[:20], c[:20] = 127, 127, 32767
    x[20:40], h[20:40], c[20:40] = -128, -128, -32768
    c[40:80] = rng.integers(-64, 64, (40, H))
    return x, h, c


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name,spec,opts,hreq", CASES, ids=[c[0] for c in CASES])
def test_fast_step_on_target(tmp_path: Path, target: str, name: str, spec: LstmSpec, opts: dict, hreq) -> None:
    onnx_model = single_lstm_model(spec)
    fm = tinylstm.load_onnx(onnx_model)
    q = quantize(fm, [random_input(onnx_model, 3, 9, seed=1, scale=2.0)], **opts)
    if hreq is not None:
        q = _with_h_shift(q, *hreq)
    layer = q.nodes[1]
    assert step_choice(layer)[0] == STEP_FAST, f"{name} should take the fast step"
    d = layer.directions[0]
    if name == "fine-cell-k18":
        assert d.cell_frac > 15 and d.a_ig > 0
    if name == "coarse-cell-headroom64":
        assert (layer.table.size - 1) << (d.cell_frac - layer.table_frac) <= 2**16  # the clamp is reached
    src, I, H = _params(q, tmp_path)
    b = crossbuild.build(target, [src / "harness.c", *(src / s for s in RUNTIME_SOURCES)], tmp_path / "h.elf",
                         include_dirs=[src], opt="-Os", extra_cflags=[*STRICT_FLAGS, "-Wno-unused-function"])
    n = 240
    x, h, c = _records(I, H, n, seed=len(name))
    (tmp_path / "in.bin").write_bytes(b"".join(x[i].tobytes() + h[i].tobytes() + c[i].tobytes() for i in range(n)))
    qemu.run(target, b.elf, ["in.bin", "out.bin"], cwd=tmp_path, timeout=60, check=True)
    out = (tmp_path / "out.bin").read_bytes()
    assert len(out) == n * 3 * H
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(simulate, "CHECKED", True)
        h_sim, c_sim, _, _ = simulate.lstm_step(layer, d, x.astype(np.int64), h.astype(np.int64),
                                                c.astype(np.int64))
    for i in range(n):
        r = out[i * 3 * H : (i + 1) * 3 * H]
        ht, ct = np.frombuffer(r, np.int8, H, 0), np.frombuffer(r, np.int16, H, H)
        assert np.array_equal(ht, h_sim[i]), f"{target} {name}: h' differs in record {i}: {ht} vs {h_sim[i]}"
        assert np.array_equal(ct, c_sim[i]), f"{target} {name}: c' differs in record {i}: {ct} vs {c_sim[i]}"
