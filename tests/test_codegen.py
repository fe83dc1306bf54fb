"""The C emitter's contract besides bit-exactness (tests/test_c_bitexact.py does that):

prefix validation, hostile model text cannot change the code, deterministic output, atomic
writes, the generated build files (CMake, make fragment, plain cc) and the example, the public
symbol set, RAM_BYTES / FLASH_BYTES, and clear refusals of what C cannot run.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx_builders import HeadSpec, LstmSpec, random_input, single_lstm_model, stacked_model
from tinylstm.codegen import generate_c, generate_files
from tinylstm.codegen import writer as writer_mod
from tinylstm.codegen.emit import emit_model, footprint, model_hash
from tinylstm.codegen.names import PrefixError
from tinylstm.codegen.runtime_files import RUNTIME_SOURCES

import tinylstm
from tinylstm.cbuild.host import build_host, run_c
from tinylstm.cbuild.toolchain import STRICT_FLAGS, missing_reason
from tinylstm.errors import OutputPathError, TinyLstmError, UnsupportedModelError
from tinylstm.quantize.quantizer import quantize

NEED_GCC = pytest.mark.skipif(missing_reason("gcc") is not None, reason=str(missing_reason("gcc")))


def _model(spec: LstmSpec | None = None, head: HeadSpec | None = None, seed: int = 0):
    if head is None:
        m = single_lstm_model(spec or LstmSpec(input_size=3, hidden_size=4))
    else:
        m = stacked_model([spec or LstmSpec(input_size=3, hidden_size=4)], head=head)
    return quantize(tinylstm.load_onnx(m), [random_input(m, 2, 6, seed=seed)]), m


@pytest.fixture(scope="module")
def small():
    return _model(head=HeadSpec("last_gemm", 3, activations=("Softmax",)))


@pytest.fixture(scope="module")
def bidir():
    return _model(LstmSpec(input_size=3, hidden_size=4, direction="bidirectional"), HeadSpec("per_step", 2))


def _cc(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------------------------------------
# prefix
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["int", "while", "static", "main", "NULL", "1abc", "a-b", "", "a b", "tl_x",
                                    "_x", "__x", "tl", "TL", "caf\u00e9", "x" * 41, "a;b", "a\nb", "a/*b"])
def test_bad_prefix_refused_before_anything_is_written(small, tmp_path: Path, prefix: str) -> None:
    q, _ = small
    with pytest.raises(PrefixError) as e:
        generate_c(q, tmp_path / "out", prefix)
    assert isinstance(e.value, TinyLstmError)
    assert not (tmp_path / "out").exists()


@NEED_GCC
@pytest.mark.parametrize("prefix", ["kws_v2", "M", "seq", "vec", "table0", "n1"])
def test_good_prefix_compiles(small, tmp_path: Path, prefix: str) -> None:
    """Prefixes that look like the generated code's internal names still compile (internal
    names carry the prefix too)."""
    q, _ = small
    generate_c(q, tmp_path, prefix)
    res = _cc(["gcc", *STRICT_FLAGS, "-c", f"{prefix}.c", "-o", "m.o"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------------------------------------
# hostile model text
# ---------------------------------------------------------------------------------------------
HOSTILE = [
    'x */ #include "evil.h" /*',
    "a\n#define int float\nb",
    "q\"uote's\\\\ end \\",
    "??/ trigraph ??= and ??'",
    "",
    "\u540d\u524d \u2028 unicode\u0000nul",
    "n" * 300,
    "model_reset",
    "tl_lstm_step_s8",
    "// line comment\r\n#pragma once",
]


@NEED_GCC
def test_hostile_names_cannot_change_the_code(tmp_path: Path) -> None:
    q, _ = _model(LstmSpec(input_size=3, hidden_size=4, direction="bidirectional"),
                  HeadSpec("last_gemm", 3, activations=("LogSoftmax",)))
    nodes = []
    for k, n in enumerate(q.nodes):
        nodes.append(dataclasses.replace(n, name=HOSTILE[k % len(HOSTILE)]))
    nodes[-1] = dataclasses.replace(nodes[-1], name=HOSTILE[0])  # duplicate names too
    hostile = dataclasses.replace(q, nodes=tuple(nodes), source=HOSTILE[1] + HOSTILE[0],
                                  input_name=HOSTILE[2], output_name=HOSTILE[3])
    files = generate_files(hostile, "model")
    for name, text in files.items():
        for h in HOSTILE + [HOSTILE[1] + HOSTILE[0]]:
            if len(h) > 3 and any(ch in h for ch in "\n\r*\"\\?\u540d"):
                assert h not in text, f"raw model text {h!r} reached {name}"
        assert text.isascii(), name
        for line in text.splitlines():
            assert not re.match(r"\s*#\s*(include\s+\"evil|define\s+int|pragma)", line), f"{name}: {line!r}"
    exe = build_host(hostile, tmp_path / "h", max_steps=7)  # strict flags: warnings are errors
    x = q.quantize_input(random_input(single_lstm_model(LstmSpec(input_size=3)), 2, 7, seed=3))
    y, _ = run_c(exe, x)
    assert np.array_equal(y, q.run_int(x))


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------
def test_output_is_deterministic(small, tmp_path: Path) -> None:
    q, _ = small
    a = generate_files(q, "model")
    b = generate_files(q, "model")
    assert a == b
    # another interpreter with another hash seed writes the same bytes
    q.save(tmp_path / "m.tlq")
    code = ("import sys; from tinylstm.qmodel import QuantizedModel; from tinylstm.codegen import generate_c; "
            "generate_c(QuantizedModel.load(sys.argv[1]), sys.argv[2], 'model')")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.tlq"), str(tmp_path / "gen")], check=True, env=env,
                   timeout=120)
    for name, text in a.items():
        assert (tmp_path / "gen" / name).read_bytes() == text.encode(), name
    banner = a["model.c"].splitlines()[1]
    assert tinylstm.__version__ in banner and model_hash(q) in banner
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", a["model.c"] + a["model.h"])  # no timestamps


def test_hash_changes_with_one_weight(small) -> None:
    q, _ = small
    lstm = q.nodes[1]
    d = lstm.directions[0]
    w = d.w.copy()
    w[0, 0] = np.int8(-w[0, 0] if w[0, 0] != 0 else 1)
    q2 = dataclasses.replace(q, nodes=(q.nodes[0], dataclasses.replace(
        lstm, directions=(dataclasses.replace(d, w=w),)), *q.nodes[2:]))
    assert model_hash(q) != model_hash(q2)
    assert emit_model(q, "m")["m.c"] != emit_model(q2, "m")["m.c"]


# ---------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------
def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name]


def test_failure_while_writing_leaves_nothing(small, tmp_path: Path, monkeypatch) -> None:
    q, _ = small
    calls = {"n": 0}
    real = os.fsync

    def flaky(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(writer_mod.os, "fsync", flaky)
    with pytest.raises(OutputPathError, match="No space left"):
        generate_c(q, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_failure_while_replacing_restores_previous_files(small, tmp_path: Path, monkeypatch) -> None:
    q, _ = small
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.c").write_text("old model\n")
    (out / "model.h").write_text("old header\n")
    (out / "user_main.c").write_text("the user's own file\n")
    calls = {"n": 0}
    real = os.replace

    def flaky(a, b) -> None:
        calls["n"] += 1
        if calls["n"] == 7:
            raise OSError(5, "Input/output error")
        real(a, b)

    monkeypatch.setattr(writer_mod.os, "replace", flaky)
    with pytest.raises(OutputPathError):
        generate_c(q, out)
    assert sorted(p.name for p in out.iterdir()) == ["model.c", "model.h", "user_main.c"]
    assert (out / "model.c").read_text() == "old model\n"
    assert (out / "model.h").read_text() == "old header\n"
    assert _leftovers(tmp_path) == []
    monkeypatch.setattr(writer_mod.os, "replace", real)
    paths = generate_c(q, out)  # and a successful regeneration replaces them, keeping the user's file
    assert all(p.exists() for p in paths) and (out / "user_main.c").exists()
    assert "generated by tinylstm" in (out / "model.c").read_text()


def test_unwritable_destination(small, tmp_path: Path) -> None:
    q, _ = small
    with pytest.raises(OutputPathError):
        generate_c(q, tmp_path / "missing" / "deeper" / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError):
        generate_c(q, tmp_path / "file")


# ---------------------------------------------------------------------------------------------
# build files, example, API surface, sizes
# ---------------------------------------------------------------------------------------------
def test_generated_file_set(small, bidir, tmp_path: Path) -> None:
    q, _ = small
    paths = generate_c(q, tmp_path / "a", "kws")
    names = sorted(p.name for p in paths)
    assert names == sorted(["kws.h", "kws.c", "kws_example.c", "kws.mk", "CMakeLists.txt", "tl_fixedpoint.h",
                            "tl_lstm.h", "tl_lstm_internal.h", "tl_lstm_step.c", "tl_lstm_fast.c", "tl_lstm_stages.c",
                            "tl_kernels_v7em.c", "tl_kernels_v7em_unit.c", "tl_kernels_v7em_unit.h", "tl_kernels_v6m.c",
                            "tl_kernels_v6m_unit.c", "tl_kernels_sse2.c", "tl_kernels_portable.c",
                            "tl_lstm_mve.h", "tl_lstm_mve.c", "tl_kernels_mve.c",
                            "tl_gru.h", "tl_gru_internal.h", "tl_gru_step.c", "tl_gru_fast.c", "tl_gru_stages.c",
                            "tl_gru_v7em.c", "tl_heads.h", "tl_heads.c"])
    assert all(p.exists() for p in paths)
    h = (tmp_path / "a" / "kws.h").read_text()
    for macro in ("INPUT_SIZE", "OUTPUT_SIZE", "INPUT_SCALE", "INPUT_ZERO_POINT", "OUTPUT_SCALE",
                  "OUTPUT_ZERO_POINT", "FLASH_BYTES", "RAM_BYTES"):
        assert re.search(rf"#define KWS_{macro} ", h), macro
    assert "void kws_step(kws_state_t *s, const int8_t *x, int8_t *y);" in h
    assert "void kws_run(kws_state_t *s, const int8_t *x, int32_t steps, int8_t *y);" in h
    assert "KWS_MAX_STEPS" not in h  # streaming models need no sequence buffer
    qb, _ = bidir
    hb = generate_files(qb, "bi", max_steps=77)["bi.h"]
    assert "void bi_step(" not in hb and "#define BI_HAS_STEP 0" in hb
    assert "#define BI_MAX_STEPS 77" in hb and "BI_MAX_STEPS" in hb.split("typedef")[1]
    c = _runtime_clean(generate_files(q, "kws")["kws.c"])
    assert not re.search(r"\b(float|double|malloc|printf|math\.h|stdio\.h)\b", c)


def _runtime_clean(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def test_runtime_has_no_float_libm_stdio_malloc() -> None:
    from tinylstm.codegen.emit import runtime_files

    for name, text in runtime_files().items():
        code = _runtime_clean(text)
        assert not re.search(r"\b(float|double|malloc|free|printf|stdio|math\.h|stdlib)\b", code), name


@NEED_GCC
def test_example_builds_with_plain_cc_make_and_cmake(small, bidir, tmp_path: Path) -> None:
    for label, (q, _) in (("small", small), ("bidir", bidir)):
        d = tmp_path / label
        generate_c(q, d, "net")
        res = _cc(["gcc", *STRICT_FLAGS, "-O2", "net_example.c", "net.c", *RUNTIME_SOURCES, "-o", "ex"], d)
        assert res.returncode == 0, res.stderr
        run = subprocess.run([str(d / "ex")], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and "y[0] =" in run.stdout, run.stdout + run.stderr
        if label == "small":
            assert "step() agrees with run()" in run.stdout
    d = tmp_path / "small"
    if shutil.which("make"):
        (tmp_path / "Makefile").write_text(
            "include small/net.mk\n"
            "app: small/net_example.c $(NET_SRCS) $(TL_RUNTIME_SRCS)\n"
            "\t$(CC) $(NET_CFLAGS) -Wall -Wextra -Werror -O2 $^ -o $@\n")
        res = _cc(["make", "-s", "app"], tmp_path)
        assert res.returncode == 0, res.stderr + res.stdout
        assert subprocess.run([str(tmp_path / "app")], capture_output=True, timeout=60).returncode == 0
    if shutil.which("cmake"):
        b = tmp_path / "build"
        res = _cc(["cmake", "-S", str(d), "-B", str(b), "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror"])
        assert res.returncode == 0, res.stderr
        res = _cc(["cmake", "--build", str(b)])
        assert res.returncode == 0, res.stderr + res.stdout
        assert subprocess.run([str(b / "net_example")], capture_output=True, timeout=60).returncode == 0


@NEED_GCC
def test_only_the_api_is_public_and_header_stands_alone(small, bidir, tmp_path: Path) -> None:
    if shutil.which("nm") is None:
        pytest.skip("nm not found")
    for label, (q, _), want in (("small", small, {"net_reset", "net_step", "net_run"}),
                                ("bidir", bidir, {"net_reset", "net_run"})):
        d = tmp_path / label
        generate_c(q, d, "net")
        res = _cc(["gcc", *STRICT_FLAGS, "-O2", "-c", "net.c", "-o", "net.o"], d)
        assert res.returncode == 0, res.stderr
        syms = _cc(["nm", "-g", "--defined-only", "net.o"], d).stdout.split()
        assert set(syms[2::3]) == want
        (d / "only_header.c").write_text('#include "net.h"\n#include "net.h"\nint main(void)\n{\n'
                                         "    static net_state_t s;\n    net_reset(&s);\n"
                                         "    return (int)(sizeof s > NET_RAM_BYTES);\n}\n")
        res = _cc(["gcc", *STRICT_FLAGS, "-c", "only_header.c", "-o", "h.o"], d)
        assert res.returncode == 0, res.stderr


@NEED_GCC
def test_ram_bytes_is_sizeof_state(small, bidir, tmp_path: Path) -> None:
    for label, (q, _) in (("small", small), ("bidir", bidir)):
        d = tmp_path / label
        generate_c(q, d, "net", max_steps=50)
        (d / "size.c").write_text('#include <stdio.h>\n#include "net.h"\nint main(void)\n{\n'
                                  '    printf("%lu %lu\\n", (unsigned long)sizeof(net_state_t), '
                                  "(unsigned long)NET_RAM_BYTES);\n    return 0;\n}\n")
        res = _cc(["gcc", *STRICT_FLAGS, "size.c", "-o", "size"], d)
        assert res.returncode == 0, res.stderr
        a, b = subprocess.run([str(d / "size")], capture_output=True, text=True).stdout.split()
        assert a == b
        assert footprint(q, "net", max_steps=50)["ram_bytes"] == int(a)
        if label == "bidir":
            assert int(a) > 50 * 2 * 4  # the workspace holds (steps, 2H)


def test_flash_bytes_matches_arm_rodata(small, bidir, tmp_path: Path) -> None:
    reason = missing_reason("arm-none-eabi-gcc")
    if reason:
        pytest.skip(reason)
    # custom activation tables (tl_lut_t arrays, per-slot tables) beside the standard table's models
    custom = _model(LstmSpec(input_size=3, hidden_size=4, direction="bidirectional",
                             activations=("HardSigmoid", "Tanh", "Softsign") * 2, clip=2.0), HeadSpec("per_step", 2))
    assert not custom[0].lstm_layers[0].directions[0].standard
    for label, (q, _) in (("small", small), ("bidir", bidir), ("custom", custom)):
        d = tmp_path / label
        generate_c(q, d, "net")
        res = _cc(["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-Os", "-c", "net.c", "-o", "net.o"],
                  d)
        assert res.returncode == 0, res.stderr
        out = _cc(["arm-none-eabi-size", "-A", "-d", "net.o"], d).stdout
        ro = sum(int(m.group(1)) for m in re.finditer(r"^\.rodata\S*\s+(\d+)", out, flags=re.M))
        flash = int(re.search(r"#define NET_FLASH_BYTES (\d+)", (d / "net.h").read_text()).group(1))
        assert ro <= flash <= ro + 16, (ro, flash)  # alignment padding only


# ---------------------------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------------------------
def test_refuses_simulator_only_ablation() -> None:
    m = single_lstm_model(LstmSpec(input_size=3, hidden_size=4))
    q = quantize(tinylstm.load_onnx(m), [random_input(m, 2, 6, seed=0)], lut_interp=False)
    with pytest.raises(UnsupportedModelError, match="lut_interp=False") as e:
        generate_files(q, "m")
    assert e.value.node == "lstm_1"


def test_refuses_per_row_initial_states() -> None:
    spec = LstmSpec(input_size=3, hidden_size=4, initial_h="initializer", initial_c="initializer")
    m = single_lstm_model(spec, batch=2)
    # the quantizer refuses them already, naming the node and field and the two ways out
    with pytest.raises(UnsupportedModelError, match="differs between the 2 rows.*--batch-row K") as e:
        quantize(tinylstm.load_onnx(m), [random_input(m, 2, 6, seed=0)])
    assert (e.value.node, e.value.field) == ("lstm_1", "initial_h")
    # the emitter still refuses a .tlq holding per-row states (not one quantize writes)
    q = quantize(tinylstm.load_onnx(m, batch_row=1), [random_input(m, 2, 6, seed=0)])
    lstm = q.lstm_layers[0]
    d = dataclasses.replace(lstm.directions[0], initial_h=np.repeat(lstm.directions[0].initial_h, 2, axis=0))
    k = q.nodes.index(lstm)
    q2 = dataclasses.replace(q, nodes=q.nodes[:k] + (dataclasses.replace(lstm, directions=(d,)),) + q.nodes[k + 1:])
    with pytest.raises(UnsupportedModelError, match="batch 1") as e:
        generate_files(q2, "m")
    assert e.value.node == "lstm_1"


def test_max_steps_validated(bidir) -> None:
    q, _ = bidir
    with pytest.raises(UnsupportedModelError, match="max_steps"):
        generate_files(q, "m", max_steps=0)


# ---------------------------------------------------------------------------------------------
# step(): an output that is only a copy of the LSTM's h is copied once
# ---------------------------------------------------------------------------------------------
def _state_model(output: str):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    H, inputs = 5, 3
    inits = [numpy_helper.from_array(rng.uniform(-1, 1, s).astype(np.float32), n)
             for n, s in (("W", (1, 4 * H, inputs)), ("R", (1, 4 * H, H)), ("B", (1, 8 * H)))]
    outs = ["", "Y_h", "Y_c"] if output == "Y_c" else ["", "Y_h"]
    g = helper.make_graph([helper.make_node("LSTM", ["x", "W", "R", "B"], outs, hidden_size=H)], "state",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, inputs])],
                          [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 1, H])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    return quantize(tinylstm.load_onnx(m), [random_input(m, 1, 8, seed=1)]), m


@NEED_GCC
@pytest.mark.parametrize("output", ["Y_h", "Y_c"])
def test_step_copies_y_h_once(output: str, tmp_path: Path) -> None:
    q, m = _state_model(output)
    c = emit_model(q, "m")["m.c"]
    step = c[c.index("void m_step("):c.index("void m_run(")]
    if output == "Y_h":  # straight from the state: no vector pass, one copy
        assert step.count("tl_copy_s8(") == 1 and "m_vec_eval(" not in step and "_h[0], 5);" in step
    else:  # the cell is requantized into the output's buffer first
        assert "m_vec_eval(" in step
    exe = build_host(q, tmp_path)
    x = np.random.default_rng(2).integers(-128, 128, (9, 1, 3)).astype(np.int8)
    y_sim = q.run_int(x)
    for mode in ("run", "step"):
        y_c, _ = run_c(exe, x, mode)
        assert np.array_equal(y_c, y_sim), mode
