"""Generated C on emulated Cortex-M0+, M4 and M55 (QEMU) vs the integer simulator: exact equality.

For each model fixture — a bidirectional many-to-many PyTorch export (buffered ``run()``), a
time-major stacked many-to-many one with a LogSoftmax head (``step()``), a hand-built stack with
peepholes + clip and a Softmax head at 8-bit weights, and the trained JapaneseVowels model on a
slice of its test set — the target's int8 output and every LSTM state (h and c of each layer and
direction, per step, hence also the final state) equal ``run_int(..., trace=True)``, through
``run`` and (causal models) ``step``. Instruction counts are non-zero, repeatable and consistent
with their nesting; footprint figures are non-zero and agree with the generated header; the
validate runners report zero mismatches.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from onnx_builders import HeadSpec, LstmSpec, random_input, stacked_model
from tinylstm.codegen.runtime_files import RUNTIME_SOURCES

import tinylstm
from tinylstm.cbuild import emulated as ctarget
from tinylstm.cbuild.toolchain import ToolchainError, missing_reason
from tinylstm.quantize.quantizer import quantize

_MISSING = missing_reason("arm-none-eabi-gcc", "qemu-system-arm", "gcc")
pytestmark = [pytest.mark.cross, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]

ROOT = Path(__file__).resolve().parent
TORCH = ROOT / "fixtures" / "torch"
MODELS = ROOT.parent / "examples" / "models"
TARGETS = ("cortex-m0plus", "cortex-m4", "cortex-m55")


@dataclass(frozen=True, eq=False)
class Case:
    name: str
    qmodel: tinylstm.qmodel.QuantizedModel
    inputs: tuple[np.ndarray, ...]  # int8 batches in the ONNX input layout (one length each)


def _torch_case(stem: str) -> Case:
    path = TORCH / f"{stem}.onnx"
    fm = tinylstm.load_onnx(path)
    data = np.load(TORCH / f"{stem}.npz")
    q = quantize(fm, [data["x0"], data["x1"]])
    xs = [q.quantize_input(data["x0"]), q.quantize_input(data["x1"])]
    xs += [np.full_like(xs[0], 127), np.full_like(xs[0], -128)]  # saturating extremes
    return Case(stem, q, tuple(xs))


def _hand_built_case() -> Case:
    specs = [LstmSpec(input_size=3, hidden_size=6, peepholes=True, clip=0.7, scale=3.0),
             LstmSpec(input_size=6, hidden_size=5, peepholes=True, clip=1.5)]
    m = stacked_model(specs, head=HeadSpec("last_gemm", 4, activations=("Softmax",)))
    fm = tinylstm.load_onnx(m)
    q = quantize(fm, [random_input(m, 3, t, seed=i, scale=1.5) for i, t in enumerate((5, 8, 11))],
                 lstm_weight_bits=8)
    xs = [q.quantize_input(random_input(m, 3, t, seed=10 + t, scale=2.0)) for t in (1, 7, 20)]
    return Case("peephole-clip-stack-int8", q, tuple(xs))


def _japanese_vowels_case(n: int = 10) -> Case:
    from tinylstm.data.taskfiles import load_task_file
    from tinylstm.quantize.calibration import calibrate

    fm = tinylstm.load_onnx(MODELS / "japanese_vowels.onnx")
    q = quantize(fm, calibrate(fm, MODELS / "japanese_vowels_calib.npz", progress=False))
    test = load_task_file(MODELS / "japanese_vowels_test.npz")
    by_len: dict[int, list[np.ndarray]] = {}
    for i in range(n):
        t = int(test.lengths[i])
        by_len.setdefault(t, []).append(test.x[i, :t])
    xs = [q.quantize_input(fm.input_view.from_canonical(np.stack(v)).astype(np.float32))
          for _, v in sorted(by_len.items())]
    return Case("japanese_vowels", q, tuple(xs))


CASES = ("seq_l2bi_bf_legacy", "step_logsoftmax_l2_tm_legacy", "peephole-clip-stack-int8", "japanese_vowels")


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    out = {}
    for name in CASES:
        if name == "peephole-clip-stack-int8":
            out[name] = _hand_built_case()
        elif name == "japanese_vowels":
            out[name] = _japanese_vowels_case()
        else:
            out[name] = _torch_case(name)
    return out


@pytest.fixture(scope="module")
def untraced(cases, tmp_path_factory):
    """JapaneseVowels built without the trace hook, per target (counts and sizes)."""
    cache: dict[str, ctarget.TargetExe] = {}

    def get(target: str) -> ctarget.TargetExe:
        if target not in cache:
            cache[target] = ctarget.build_target(cases["japanese_vowels"].qmodel, target,
                                                 tmp_path_factory.mktemp(f"jv-{target}"), "-Os")
        return cache[target]

    return get


def _check_equal(where: str, r: ctarget.TargetRun, y_sim: np.ndarray, tr_sim: dict) -> None:
    assert r.y.shape == y_sim.shape and r.y.dtype == np.int8, where
    bad = np.argwhere(r.y != y_sim)
    assert bad.size == 0, f"{where}: output {tuple(bad[0])}: target {r.y[tuple(bad[0])]} sim {y_sim[tuple(bad[0])]}"
    assert r.trace is not None and set(r.trace) == set(tr_sim), where
    for name, dirs in r.trace.items():
        assert len(dirs) == len(tr_sim[name]), where
        for d, ct in enumerate(dirs):
            st = tr_sim[name][d]
            assert np.array_equal(ct.valid, st.valid), f"{where}: {name}[{d}] processed steps differ"
            for what in ("h", "c"):
                a, b = getattr(ct, what), getattr(st, what)
                assert a.shape == b.shape, f"{where}: {name}[{d}].{what} shape {a.shape} vs {b.shape}"
                bad = np.argwhere(a != b)
                assert bad.size == 0, (f"{where}: {name}[{d}].{what} at (row, t, unit) {tuple(bad[0])}: "
                                       f"target {a[tuple(bad[0])]} sim {b[tuple(bad[0])]}")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", CASES)
def test_outputs_and_states_bit_exact(cases, tmp_path: Path, name: str, target: str) -> None:
    case = cases[name]
    exe = ctarget.build_target(case.qmodel, target, tmp_path, "-Os", trace=True)
    modes = ("run", "step") if exe.has_step else ("run",)
    checked = 0
    for x in case.inputs:
        y_sim, tr_sim = case.qmodel.run_int(x, trace=True)
        for mode in modes:
            r = ctarget.run_target(exe, x, mode, trace=True)
            _check_equal(f"{name} on {target} {mode} x{tuple(x.shape)}", r, y_sim, tr_sim)
            checked += 1
    assert checked >= len(case.inputs)


# The other cores and the portable kernels: Armv7-M without DSP (M3: portable C), Armv7E-M at -O2
# (M7) and Armv8-M Mainline with DSP (M33) run the assembly step of tl_kernels_v7em_unit.c (SMLAD
# matmul inlined, SMLAWB / SMLAWT gate sums); -DTL_PORTABLE builds the plain C where the assembly
# would be used. Both cases take tl_lstm_step_fast: JapaneseVowels with int16 weights, the hand-built
# stack with peepholes, clip and int8 weights.
VARIANTS = [("cortex-m3", "-Os", False), ("cortex-m7", "-O2", False), ("cortex-m33", "-Os", False),
            ("cortex-m4", "-O2", True), ("cortex-m0plus", "-Os", True)]


def _body(dis: str, fn: str) -> str:
    """The disassembly of function ``fn`` (empty when it is not in the image)."""
    return dis.split(f"<{fn}>:", 1)[1].split("\n\n", 1)[0] if f"<{fn}>:" in dis else ""


@pytest.mark.parametrize("target,opt,portable", VARIANTS, ids=[f"{t}{o}{'-portable' if p else ''}"
                                                                for t, o, p in VARIANTS])
@pytest.mark.parametrize("name", ["japanese_vowels", "peephole-clip-stack-int8"])
def test_kernel_variants_bit_exact(cases, tmp_path: Path, name: str, target: str, opt: str, portable: bool) -> None:
    case = cases[name]
    exe = ctarget.build_target(case.qmodel, target, tmp_path, opt, trace=True,
                               extra_cflags=("-DTL_PORTABLE",) if portable else ())
    x = case.inputs[0]
    y_sim, tr_sim = case.qmodel.run_int(x, trace=True)
    _check_equal(f"{name} on {target} {opt}", ctarget.run_target(exe, x, "run", trace=True), y_sim, tr_sim)
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(exe.elf)], capture_output=True, text=True,
                         check=True).stdout
    uses_dsp = target in ("cortex-m7", "cortex-m33", "cortex-m4") and not portable
    step = _body(dis, "tl_lstm_step_fast")
    assert step, "both cases take the fast step"
    # the quad kernel of the case's weights (JapaneseVowels: int16, the hand stack: int8)
    kernel = "tl_mac4_w16" if name == "japanese_vowels" else "tl_mac4_w8"
    if uses_dsp:
        # the Armv7E-M assembly step (tl_kernels_v7em_unit.c): its own SMLAD matmul (SXTB16 for int8
        # weights), SMLAWB / SMLAWT gate sums, SMLAD table interpolation, SMMLA for h'; no kernel call
        want = ("smlad", "smlawb", "smlawt", "smull", "smlal", "smmla") + (("sxtb16",) if kernel.endswith("w8") else ())
        assert all(w in step for w in want), f"{target}: the assembly step lacks some of {want}"
        assert "tl_mac4" not in step and not _body(dis, kernel), f"{target}: the assembly step calls no quad kernel"
    else:
        assert _body(dis, kernel) and "smlad" not in _body(dis, kernel) + step, f"{target}: portable C expected"


def test_cases_cover_the_brief(cases) -> None:
    """The fixtures really are what the brief asks for (so a change cannot thin them out)."""
    from tinylstm.codegen.plan import make_plan

    plans = {n: make_plan(c.qmodel) for n, c in cases.items()}
    bi = cases["seq_l2bi_bf_legacy"].qmodel
    assert any(n.num_directions == 2 for n in bi.lstm_layers) and plans["seq_l2bi_bf_legacy"].output_seq
    assert not plans["seq_l2bi_bf_legacy"].has_step
    assert plans["step_logsoftmax_l2_tm_legacy"].has_step and plans["step_logsoftmax_l2_tm_legacy"].output_seq
    hand = cases["peephole-clip-stack-int8"].qmodel.lstm_layers
    assert all(n.clip_q is not None and all(d.peep is not None for d in n.directions) for n in hand)
    assert all(int(np.abs(d.w.astype(np.int64)).max()) <= 127 for n in hand for d in n.directions)
    assert len(cases["japanese_vowels"].inputs) >= 3  # several lengths


@pytest.mark.parametrize("target", TARGETS)
def test_instruction_counts_repeatable_and_nested(cases, untraced, target: str) -> None:
    case = cases["japanese_vowels"]
    exe = untraced(target)
    x = case.inputs[-1]
    a = ctarget.count_steps(exe, x)
    b = ctarget.count_steps(exe, x)
    assert a == b, "two runs of the same binary counted differently"
    assert a.inference > 0 and a.per_step is not None and len(a.per_step) == a.steps > 1
    assert min(a.per_step) > 0
    assert a.macs_per_step == 4 * 32 * (12 + 32) + 32 * 9
    assert 0.5 < a.instructions_per_mac < 100
    # step mode: the inference window holds reset + every step window (+4 per nested pair)
    r = ctarget.run_target(exe, x, "step", count=True)
    assert r.step_instructions is not None and r.inference_instructions is not None
    for row in range(len(r.step_instructions)):
        assert r.inference_instructions[row] > sum(r.step_instructions[row]) + 4 * a.steps
    assert r.total_instructions is not None and r.total_instructions > sum(r.inference_instructions)
    # and the outputs of the untraced build are exact too
    assert np.array_equal(r.y, case.qmodel.run_int(x))


@pytest.mark.parametrize("target", TARGETS)
def test_footprint(cases, untraced, target: str) -> None:
    exe = untraced(target)
    fp = ctarget.target_footprint(exe)
    header = (exe.src_dir / "model.h").read_text()
    ram = int(re.search(r"#define MODEL_RAM_BYTES (\d+)", header).group(1))
    assert fp.state_bytes == ram  # sizeof(model_state_t) on the target == the header's figure
    q = cases["japanese_vowels"].qmodel
    (lstm,) = q.lstm_layers
    # widened x and h (int16, padded to quads) and the new h: TL_LSTM_SCRATCH_BYTES(12, 32)
    assert fp.scratch_bytes == 2 * 4 * 3 + 2 * 4 * 8 + 32 == 120 <= 8 * lstm.hidden_size
    assert fp.stack_complete or set(fp.library_calls) <= {"memset"}
    weight_bytes = sum(d.w.size + d.r.size for n in q.lstm_layers for d in n.directions)
    assert fp.model_rodata > weight_bytes  # weights (>= 1 byte each), tables, row constants
    assert fp.runtime_text > 200 and fp.model_text > 50
    assert fp.stack_path[0] == "model_run" and fp.stack_bytes > 0
    if target == "cortex-m0plus":
        # the runtime does its 64-bit requantization on 32-bit words: no libgcc 64-bit helpers
        assert not {"__aeabi_lmul", "__aeabi_llsl", "__aeabi_lasr"} & set(fp.library_calls)


def test_validate_with_target_runners(cases, tmp_path: Path) -> None:
    from tinylstm.data.taskfiles import load_task_file
    from tinylstm.validate.validation import validate

    case = cases["japanese_vowels"]
    test = load_task_file(MODELS / "japanese_vowels_test.npz")
    seqs = [test.x[i, : int(test.lengths[i])] for i in range(12)]
    runners = ctarget.target_runners(case.qmodel, ["cortex-m4", "cortex-m55:-O2"], tmp_path)
    assert list(runners) == ["cortex-m4 -Os", "cortex-m55 -O2"]
    rep = validate(MODELS / "japanese_vowels.onnx", case.qmodel, seqs, c_runners=runners)
    assert [c.name for c in rep.c] == list(runners)
    for c in rep.c:
        assert c.sequences == 12 and c.mismatched_values == 0, c
    # the report's cost section: footprint and instruction counts per core, as measured directly
    assert [(t["target"], t["opt"]) for t in rep.target_cost] == [("cortex-m4", "-Os"), ("cortex-m55", "-O2")]
    for t, runner in zip(rep.target_cost, runners.values(), strict=True):
        exe = runner.builds[-1]
        fp = ctarget.target_footprint(exe)
        assert (t["runtime_text"], t["model_rodata"], t["state_bytes"], t["stack_bytes"]) == (
            fp.runtime_text, fp.model_rodata, fp.state_bytes, fp.stack_bytes)
        assert t["macs_per_step"] == 4 * 32 * (12 + 32) + 32 * 9
        assert t["instructions_per_step"] > 0 and 0.5 < t["instructions_per_mac"] < 100
        # run() evaluates the Dense head once per sequence, step() once per step: a step costs more
        assert 0 < t["instructions_per_inference"] < t["steps"] * t["instructions_per_step"]
    md = rep.to_markdown()
    assert "## Cost on the emulated cores" in md and "| cortex-m55 -O2 |" in md.split("## Cost")[1]


def test_runner_rebuilds_when_sequences_outgrow_max_steps(cases, tmp_path: Path) -> None:
    case = cases["seq_l2bi_bf_legacy"]
    runner = ctarget.target_runner(case.qmodel, "cortex-m4", workdir=tmp_path, max_steps=4)
    x = case.inputs[0]
    long = np.concatenate([x, x, x], axis=case.qmodel.input_view.axis_of("T"))
    outs = runner([x, long])
    assert np.array_equal(outs[0], case.qmodel.run_int(x))
    assert np.array_equal(outs[1], case.qmodel.run_int(long))


def test_errors(cases, untraced) -> None:
    with pytest.raises(ToolchainError, match="unknown target"):
        ctarget.parse_target_spec("cortex-m99")
    with pytest.raises(ToolchainError, match="optimisation level"):
        ctarget.parse_target_spec("cortex-m4:-O9")
    assert ctarget.parse_target_spec("cortex-m7:O2") == ("cortex-m7", "-O2")
    exe = untraced("cortex-m4")
    with pytest.raises(ValueError, match="trace=True needs"):
        ctarget.run_target(exe, cases["japanese_vowels"].inputs[0], trace=True)


def test_weight_encoding_mismatch_fails_to_link(cases, tmp_path: Path) -> None:
    """On Armv6-M the int16 weights are biased (TL_W16_BIAS); a model compiled with -DTL_PORTABLE
    against a runtime compiled without must not link (it would decode its weights wrongly)."""
    from tinylstm.codegen import generate_c

    src = tmp_path / "src"
    generate_c(cases["japanese_vowels"].qmodel, src, prefix="jv")
    flags = ["-mcpu=cortex-m0plus", "-mthumb", "-Os", "-std=c99", "-ffunction-sections", "-fdata-sections"]
    link = ["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "--specs=nosys.specs", "-nostartfiles",
            "-Wl,-e,jv_run", "-Wl,--gc-sections"]

    def cc(name: str, *extra: str) -> str:
        out = str(tmp_path / (name + "".join(extra).replace("-", "_") + ".o"))
        subprocess.run(["arm-none-eabi-gcc", *flags, *extra, "-c", str(src / f"{name}.c"), "-o", out], check=True)
        return out

    runtime = [cc(Path(s).stem) for s in RUNTIME_SOURCES]
    ok = subprocess.run([*link, cc("jv"), *runtime, "-o", str(tmp_path / "ok.elf")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*link, cc("jv", "-DTL_PORTABLE"), *runtime, "-o", str(tmp_path / "bad.elf")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "tl_w16_encoding_plain" in bad.stderr, bad.stderr
