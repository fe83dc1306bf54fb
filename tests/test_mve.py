"""The Helium (Armv8.1-M MVE) kernels for Cortex-M55 (issue #17): the layout, the choice of step, the
generated C, and on QEMU mps3-an547 the stage and step kernels and whole models against the checked
simulator, exactly.

Host: ``generate_c(..., target="cortex-m55")`` lowers the standard-table LSTM layers to the Helium
layout (``tinylstm/lowering/mve.py``: weights ``[block][gate][chunk][unit][8]``, one
``tl_lstm_unit_t`` per block and gate) and ``tl_lstm_step_mve``; layers with peepholes, clip, coupled
gates or custom tables keep the portable layout and step, and say why; the default output is the
portable C, unchanged. A Helium model refuses to compile without MVE (#error) and to link against a
runtime without the Helium kernels (``tl_lstm_layout_mve``).

QEMU (cortex-m55): ``tl_lstm_stages_mve`` (z, i, f, g, c') and ``tl_lstm_step_mve`` (h', c') on
arbitrary states with the int16 extremes, for int16 / int8 / mixed weights, both cell forms (k <= 15
and k > 15), a 16-segment table, odd sizes (predicated tail blocks); whole models through run() and
step() with every LSTM state traced (mixed Helium / portable layers, bidirectional, Dense heads on
the Helium dot product); the worst-case models of test_worst_case.py that take the Helium step; the
disassembly holds VMLADAV.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx_builders import HeadSpec, LstmSpec, random_input, single_lstm_model, stacked_model
from tinylstm.codegen.emit import emit_model, generate_files
from tinylstm.codegen.runtime_files import RUNTIME_SOURCES, runtime_files
from tinylstm.codegen.writer import write_tree

import tinylstm
from tinylstm.cbuild import crossbuild, qemu
from tinylstm.cbuild import emulated as ctarget
from tinylstm.cbuild.cores import TARGETS
from tinylstm.cbuild.toolchain import STRICT_FLAGS, ToolchainError, compile_host, missing_reason
from tinylstm.cli import main as cli_main
from tinylstm.errors import UnsupportedModelError
from tinylstm.lowering import STEP_MVE, kernels_for, lower_lstm, unit_constants
from tinylstm.lowering.mve import TARGET_KERNELS, mve_layout, mve_scratch_bytes, mve_unit_constants
from tinylstm.quantize.quantizer import quantize
from tinylstm.simulate import checked as simulate

_ARM = missing_reason("arm-none-eabi-gcc", "qemu-system-arm", "gcc")
#: the QEMU tests
cross = pytest.mark.skipif(_ARM is not None, reason=_ARM or "")


@pytest.fixture(scope="module", autouse=True)
def checked_reference():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(simulate, "CHECKED", True)
        yield


def _q(spec: LstmSpec, seed: int = 3, **opts):
    m = single_lstm_model(spec)
    return quantize(tinylstm.load_onnx(m), [random_input(m, 4, 9, seed=seed, scale=2.0)], **opts)


# ---- host: choices, layout, generated text -----------------------------------------------------------
def test_kernels_per_target() -> None:
    assert set(TARGET_KERNELS) == set(TARGETS)  # every core the builders know, and no other
    assert kernels_for(None) == "portable" and kernels_for("cortex-m55") == "mve"
    assert {kernels_for(t) for t in TARGETS if t != "cortex-m55"} == {"portable"}
    with pytest.raises(UnsupportedModelError, match="cortex-m99.*cortex-m55"):
        kernels_for("cortex-m99")


def test_layout_and_block_constants() -> None:
    """W[g H + 4 b + u, 8 c + k] sits at [b, g, c, u, k]; padding is zero; the block constants are the
    unit constants transposed, padding units 0, 0, 4."""
    q = _q(LstmSpec(input_size=11, hidden_size=6))
    d = q.lstm_layers[0].directions[0]
    H, inputs = 6, 11
    lay = mve_layout(d.w, H, inputs)
    assert lay.shape == (2, 4, 2, 4, 8)
    w = np.asarray(d.w, np.int64)
    for b, g, c, u, k in np.ndindex(lay.shape):
        j, i = 4 * b + u, 8 * c + k
        assert lay[b, g, c, u, k] == (w[g * H + j, i] if j < H and i < inputs else 0)
    mu, pu = mve_unit_constants(d, H), unit_constants(d, H)
    assert mu.shape == (8, 4, 3)
    for b, g, u in np.ndindex(2, 4, 4):
        want = pu[4 * b + u, g] if 4 * b + u < H else [0, 0, 4]
        assert list(mu[4 * b + g, u]) == list(want)


@pytest.mark.parametrize("spec,why", [
    (LstmSpec(input_size=3, hidden_size=5, peepholes=True), "peepholes"),
    (LstmSpec(input_size=3, hidden_size=5, clip=1.0), "clip"),
    (LstmSpec(input_size=3, hidden_size=5, input_forget=True), "coupled"),
    (LstmSpec(input_size=3, hidden_size=5, activations=("HardSigmoid", "Tanh", "Tanh")), "custom"),
])
def test_other_layers_keep_the_portable_step(spec: LstmSpec, why: str) -> None:
    layer = _q(spec).lstm_layers[0]
    low = lower_lstm(layer, "mve")
    assert low.step != STEP_MVE and why in low.why and low.directions[0].layout == "quad"
    assert low.step == lower_lstm(layer).step


def test_generated_text(tmp_path: Path) -> None:
    q = _q(LstmSpec(input_size=5, hidden_size=7, direction="bidirectional"))
    low = lower_lstm(q.lstm_layers[0], "cortex-m55")
    assert low.step == STEP_MVE and low.scratch_bytes == mve_scratch_bytes(5, 7) == 32
    plain, helium = emit_model(q, "m")["m.c"], emit_model(q, "m", target="cortex-m55")["m.c"]
    assert "tl_lstm_mve" not in plain and "tl_lstm_step_mve(" not in plain  # the default stays portable
    assert emit_model(q, "m", target="cortex-m4")["m.c"] == plain
    assert helium.count("tl_lstm_step_mve(&") == 2 and helium.count("&tl_lstm_layout_mve") == 2
    assert '#include "tl_lstm_mve.h"' in helium and "#error" in helium and "TL_KERNEL_MVE" in helium
    assert "static const tl_lstm_unit_t m_n1_lstm_1_d0_units[8]" in helium  # H padded to 8
    # the runtime's size macro agrees with the lowering
    files = dict(runtime_files())
    files["size.c"] = ('#include "tl_lstm_mve.h"\n'
                      + "".join(f"typedef char s{i}[TL_LSTM_MVE_SCRATCH_BYTES({a}, {b}) == {mve_scratch_bytes(a, b)}"
                                f" ? 1 : -1];\n" for i, (a, b) in enumerate([(1, 1), (5, 7), (16, 64), (17, 9)])))
    write_tree(files, tmp_path)
    compile_host([tmp_path / "size.c"], tmp_path / "size.o", extra_flags=("-c",))


def test_helium_model_refuses_to_compile_for_the_host(tmp_path: Path) -> None:
    q = _q(LstmSpec(input_size=4, hidden_size=4))
    write_tree(generate_files(q, "m", target="cortex-m55"), tmp_path)
    with pytest.raises(ToolchainError, match="generated for the Helium"):
        compile_host([tmp_path / "m.c"], tmp_path / "m.o", include_dirs=(tmp_path,), extra_flags=("-c",))


def test_cli_generate_for(tmp_path: Path, capsys) -> None:
    q = _q(LstmSpec(input_size=4, hidden_size=4, peepholes=True))
    q.save(tmp_path / "m.tlq")
    out = tmp_path / "out"
    assert cli_main(["generate", str(tmp_path / "m.tlq"), "-o", str(out), "--for", "cortex-m55"]) == 0
    assert "keeps the portable layout and step on cortex-m55 (peepholes)" in capsys.readouterr().out
    assert (out / "tl_lstm_mve.c").is_file() and "tl_lstm_step_fast(" in (out / "model.c").read_text()
    assert cli_main(["generate", str(tmp_path / "m.tlq"), "-o", str(tmp_path / "bad"), "--for", "m99"]) == 2
    assert "unknown generation target 'm99'" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    # generate's --target is the same option (the spelling); both give the same files
    q2 = _q(LstmSpec(input_size=4, hidden_size=4))
    q2.save(tmp_path / "h.tlq")
    for flag in ("--for", "--target"):
        assert cli_main(["generate", str(tmp_path / "h.tlq"), "-o", str(tmp_path / flag[2:]), flag, "cortex-m55"]) == 0
    assert "tl_lstm_step_mve(" in (tmp_path / "target" / "model.c").read_text()
    assert (tmp_path / "target" / "model.c").read_text() == (tmp_path / "for" / "model.c").read_text()


# ---- QEMU: stage and step kernels --------------------------------------------------------------------
_STAGES_C = r"""
#include <stdio.h>
#include <string.h>
#include "tl_lstm_mve.h"
@INCLUDES@
static const tl_lstm_params_t *const params[] = {@PARAMS@};

/* records: int32 model, x (I), h (H), c (H int16) -> z (4H), gates (3H), c' (H) of the stages, then
 * h', c' of the step */
int main(int argc, char **argv)
{
    static int8_t x[512], h[512], h1[512];
    static int16_t c[512], c0[512], scratch[1024];
    static int32_t z[2048], g[1536];
    int32_t which;
    FILE *in, *out;
    if (argc < 3 || (in = fopen(argv[1], "rb")) == NULL || (out = fopen(argv[2], "wb")) == NULL) {
        return 2;
    }
    while (fread(&which, 4u, 1u, in) == 1u) {
        const tl_lstm_params_t *p = params[which];
        const size_t I = (size_t)p->input_size, H = (size_t)p->hidden_size;
        if (fread(x, 1u, I, in) != I || fread(h, 1u, H, in) != H || fread(c, 2u, H, in) != H) {
            return 3;
        }
        memcpy(c0, c, 2u * H);
        tl_lstm_stages_mve(p, x, h, c, z, g, scratch);
        fwrite(z, 4u, 4u * H, out);
        fwrite(g, 4u, 3u * H, out);
        fwrite(c, 2u, H, out);
        memcpy(h1, h, H);
        tl_lstm_step_mve(p, x, h1, c0, scratch);
        fwrite(h1, 1u, H, out);
        fwrite(c0, 2u, H, out);
    }
    fclose(out);
    return 0;
}
"""

STAGE_CASES = [
    ("int16", LstmSpec(input_size=5, hidden_size=7), {}),
    ("int8-16x64", LstmSpec(input_size=16, hidden_size=64), {"lstm_weight_bits": 8}),
    ("W8-R16", LstmSpec(input_size=9, hidden_size=12), {"lstm_weight_bits": {"lstm_1/W": 8}}),
    ("fine-cell-k18", LstmSpec(input_size=5, hidden_size=6, scale=0.05, bias=False), {}),
    ("table16-P10", LstmSpec(input_size=3, hidden_size=9, scale=2.0), {"lut_size": 16, "pre_frac": 10}),
    ("tiny", LstmSpec(input_size=1, hidden_size=1), {}),
    ("wide-inputs", LstmSpec(input_size=40, hidden_size=5, scale=3.0), {"lstm_weight_bits": 8}),
]


@pytest.mark.cross
@cross
def test_stages_and_step_on_m55(tmp_path: Path) -> None:
    """Every case in one program: 60 records each (the int8 / int16 extremes included)."""
    models = []
    for k, (name, spec, opts) in enumerate(STAGE_CASES):
        q = _q(spec, seed=k, **opts)
        layer = q.lstm_layers[0]
        assert lower_lstm(layer, "mve").step == STEP_MVE, name
        d = layer.directions[0]
        if name == "fine-cell-k18":
            assert d.a_ig > 0 and d.a_fc == 0
        if name == "W8-R16":
            assert d.w.dtype == np.int8 and np.abs(d.r).max() > 127
        models.append((name, q, layer, d))
    files = dict(runtime_files())
    params = []
    for k, (_, q, _, _) in enumerate(models):
        text = emit_model(q, f"m{k}", target="cortex-m55")
        files.update(text)
        params.append("&" + next(ln.split()[3].split("[")[0] for ln in text[f"m{k}.c"].splitlines()
                                 if ln.startswith("static const tl_lstm_params_t")) + "[0]")
    files["stages.c"] = (_STAGES_C.replace("@INCLUDES@", "".join(f'#include "m{k}.c"\n' for k in range(len(models))))
                         .replace("@PARAMS@", ", ".join(params)))
    src = tmp_path / "src"
    write_tree(files, src)
    b = crossbuild.build("cortex-m55", [src / "stages.c", *(src / s for s in RUNTIME_SOURCES)], tmp_path / "st.elf",
                         include_dirs=[src], opt="-O2", extra_cflags=(*STRICT_FLAGS, "-Wno-unused-function"))
    rng = np.random.default_rng(7)
    blob, want = [], []
    for k, (_, _, layer, d) in enumerate(models):
        n, I, H = 60, layer.input_size, layer.hidden_size
        x = rng.integers(-128, 128, (n, I))
        h = rng.integers(-128, 128, (n, H))
        c = rng.integers(-32768, 32768, (n, H))
        x[:6], h[:6], c[:6] = 127, 127, 32767
        x[6:12], h[6:12], c[6:12] = -128, -128, -32768
        c[12:24] = rng.integers(-64, 64, (12, H))
        z, gates = simulate.lstm_gates(layer, d, x, h, c)
        c_new = simulate.lstm_cell(d, gates, c)
        h_step, c_step, _, _ = simulate.lstm_step(layer, d, x, h, c)
        for i in range(n):
            blob.append(np.int32(k).tobytes() + x[i].astype(np.int8).tobytes() + h[i].astype(np.int8).tobytes()
                        + c[i].astype(np.int16).tobytes())
            want.append((k, z[i], gates[i], c_new[i], h_step[i], c_step[i]))
    (tmp_path / "in.bin").write_bytes(b"".join(blob))
    qemu.run("cortex-m55", b.elf, ["in.bin", "out.bin"], cwd=tmp_path, timeout=120, check=True)
    out, pos = (tmp_path / "out.bin").read_bytes(), 0
    for i, (k, z, g, cn, hs, cs) in enumerate(want):
        H = z.shape[0] // 4
        got = {}
        for key, dt, cnt in (("z", np.int32, 4 * H), ("g", np.int32, 3 * H), ("c", np.int16, H),
                             ("h1", np.int8, H), ("c1", np.int16, H)):
            got[key] = np.frombuffer(out, dt, cnt, pos)
            pos += cnt * np.dtype(dt).itemsize
        case = f"{models[k][0]} record {i}"
        assert np.array_equal(got["z"], z), f"{case}: z"
        assert np.array_equal(got["g"], g), f"{case}: gates"
        assert np.array_equal(got["c"], cn), f"{case}: cell (stages)"
        assert np.array_equal(got["h1"], hs) and np.array_equal(got["c1"], cs), f"{case}: step"
    assert pos == len(out)


# ---- QEMU: whole models, worst cases, disassembly, link check ------------------------------------------
def _same(exe, q, x, mode: str) -> bool:
    y, tr = q.run_int(x, trace=True)
    r = ctarget.run_target(exe, x, mode, trace=True)
    return np.array_equal(r.y, y) and all(
        np.array_equal(getattr(ct, f), getattr(tr[name][d], f))
        for name, dirs in (r.trace or {}).items() for d, ct in enumerate(dirs) for f in ("valid", "h", "c"))


@pytest.mark.parametrize("name,specs,head,opts", [
    ("stack-mixed-dense", [LstmSpec(input_size=6, hidden_size=13),
                           LstmSpec(input_size=13, hidden_size=9, activations=("HardSigmoid", "Tanh", "Tanh"))],
     HeadSpec("last_gemm", out_features=37), {}),
    ("bidirectional-int8-softmax", [LstmSpec(input_size=7, hidden_size=10, direction="bidirectional")],
     HeadSpec("last_gemm", out_features=5, activations=("Softmax",)), {"lstm_weight_bits": 8}),
    ("many-to-many", [LstmSpec(input_size=4, hidden_size=20, scale=2.5)], HeadSpec("per_step", out_features=3), {}),
])
@pytest.mark.cross
@cross
def test_models_on_m55(tmp_path: Path, name: str, specs, head, opts) -> None:
    m = stacked_model(specs, head=head)
    q = quantize(tinylstm.load_onnx(m), [random_input(m, 4, 9, seed=1, scale=2.0)], **opts)
    steps = [lower_lstm(n, "mve").step for n in q.lstm_layers]
    assert STEP_MVE in steps
    exe = ctarget.build_target(q, "cortex-m55", tmp_path, "-Os", trace=True, max_steps=12)
    assert exe.kernels == "mve"
    for seed in range(2):
        x = q.quantize_input(random_input(m, 3, 12, seed=10 + seed, scale=3.0))
        for mode in ("run", "step") if exe.has_step else ("run",):
            assert _same(exe, q, x, mode), f"{name} {mode}"


@pytest.mark.cross
@cross
def test_worst_cases_on_m55(tmp_path: Path) -> None:
    """The worst-case models whose layers take the Helium step (every weight at +-max in int16 and
    int8, cells driven to both int16 limits, input fan-in 257) and the gate sum at its int32 bound
    without peepholes, three adversarial inputs each, run() with every state."""
    import test_worst_case as wc

    rng = np.random.default_rng(5)
    _, q = wc._build("bias", [LstmSpec(input_size=3, hidden_size=4)], HeadSpec("last_gemm", 2),
                     lstm=wc._extreme_lstm(rng, 0.05, 0.05, 3000.0))
    d = q.lstm_layers[0].directions[0]
    assert int(np.abs(d.bias.astype(np.int64)).max()) > 2**30
    todo = [wc._case("bias_at_gate_sum_limit_no_peepholes", q)]
    # the weights of 66311 inputs (int8) or 257 units (int16) do not fit the an547's 512 KB of code memory
    todo += [c for c in wc.cases() if "int8_limit" not in c.name and "recurrent_257" not in c.name]
    todo = [c for c in todo if all(lower_lstm(n, "mve").step == STEP_MVE for n in c.qmodel.lstm_layers)]
    assert {"weights_int16_at_max", "weights_int8_at_max", "cell_to_max", "cell_to_min",
            "fanin_input_257_int16"} <= {c.name for c in todo}
    problems = []
    for c in todo:
        exe = ctarget.build_target(c.qmodel, "cortex-m55", tmp_path / c.name, "-O2", trace=True, max_steps=wc.T_ADV)
        problems += [f"{c.name} input {i}" for i, x in enumerate(c.inputs[:3]) if not _same(exe, c.qmodel, x, "run")]
    assert not problems, problems


@pytest.mark.cross
@cross
def test_disassembly_and_layout_checks(tmp_path: Path) -> None:
    """The step's loop holds VMLADAV (objdump names VMLADAVA without exchange "vmlava"); a Helium
    model compiled for M4 stops at its #error; a Helium model beside a runtime built with TL_PORTABLE
    fails to link."""
    q = _q(LstmSpec(input_size=8, hidden_size=8))
    exe = ctarget.build_target(q, "cortex-m55", tmp_path / "ok", "-Os")
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "-m", "armv8.1-m.main", str(exe.elf)], capture_output=True,
                         text=True, check=True).stdout
    body = dis.split("<tl_mve_units>:")[1].split("\n\n")[0]
    assert body.count("vmlav") + body.count("vmladav") >= 16 and "vldrh.u32" in body  # + the gather loads
    src = tmp_path / "gen"
    main = ('#include "m.h"\nint main(void)\n{\n    static m_state_t s;\n    static int8_t x[8], y[64];\n'
            "    m_reset(&s);\n    m_step(&s, x, y);\n    return y[0];\n}\n")
    write_tree(dict(generate_files(q, "m", target="cortex-m55"), **{"main.c": main}), src)
    model = [src / "main.c", src / "m.c"]
    runtime = [src / s for s in RUNTIME_SOURCES]
    with pytest.raises(ToolchainError, match="generated for the Helium"):
        crossbuild.build("cortex-m4", model + runtime, tmp_path / "m4.elf", include_dirs=[src])
    # the model with the Helium kernels, the runtime without them (TL_PORTABLE): undefined symbols
    m55 = TARGETS["cortex-m55"]
    objs = []
    for f in [*model, *runtime, crossbuild.target_dir() / "tl_startup.c"]:
        objs.append(tmp_path / f"{f.stem}.o")
        flags = ["-DTL_PORTABLE"] if f in runtime else []
        subprocess.run(["arm-none-eabi-gcc", *m55.cpu_flags, "-Os", "-ffunction-sections", *flags, "-I", str(src),
                        "-I", str(crossbuild.target_dir()), "-c", str(f), "-o", str(objs[-1])],
                       check=True, capture_output=True)
    link = subprocess.run(["arm-none-eabi-gcc", *m55.cpu_flags, *crossbuild.LINK_FLAGS, "-L",
                           str(crossbuild.target_dir()), "-T", m55.linker_script, *map(str, objs), "-o",
                           str(tmp_path / "mixed.elf")], capture_output=True, text=True)
    assert link.returncode != 0 and "undefined reference to `tl_lstm_layout_mve'" in link.stderr


def test_dataclass_fields_stay_compatible() -> None:
    """TargetExe / TargetCost gained a kernels field with a default: positional construction still works."""
    assert [f.name for f in dataclasses.fields(ctarget.TargetCost)][-1] == "kernels"
    assert [f.name for f in dataclasses.fields(ctarget.TargetExe)][-1] == "kernels"
