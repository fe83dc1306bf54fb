"""The generated GRU C on emulated Cortex-M0+, M4 and M55 (QEMU) vs the integer simulator: exact equality
of the output and every GRU state (int16) and output (int8) per step, through run and (causal models)
step; the Armv7E-M block loop (tl_gru_blocks_v7em) on M4, M7, M33 and M55 and its absence elsewhere;
instruction counts, footprint and the validate report of a GRU build (the Armv7E-M block loop links
only the quad kernel its weights take); FLASH_BYTES of GRU models against the ARM object's .rodata.

Cases: the update's rounding ties through the assembly block loop and the C loop (a_h = 1), the C
fast step without linear_before_reset (int8 weights, clip), a bidirectional GRU stack (buffered run),
a GRU after an LSTM (int8 weights, step), the general step (custom tables, clip), a PyTorch export
and the trained JapaneseVowels GRU on a slice of its test set.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from gru_c_cases import hand_inputs, hand_models

import tinylstm
from tinylstm.cbuild import emulated as ctarget
from tinylstm.cbuild.toolchain import missing_reason
from tinylstm.quantize.quantizer import quantize

_MISSING = missing_reason("arm-none-eabi-gcc", "qemu-system-arm", "gcc")
pytestmark = [pytest.mark.cross, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]

ROOT = Path(__file__).resolve().parent
MODELS = ROOT.parent / "examples" / "models"
TARGETS = ("cortex-m0plus", "cortex-m4", "cortex-m55")
HAND = ("ties-fast-lbr1-H9", "ties-fast-lbr0-H6", "ties-fast-lbr1-state-q14", "fast-lbr0-int8-clip", "gru_gru_softmax",
        "lstm_gru_seq-int8",
        "general-hardsigmoid-softsign-clip")
CASES = (*HAND, "gru_last_l2bi_tm_legacy", "japanese_vowels_gru")


@pytest.fixture(scope="module")
def cases() -> dict[str, tuple]:
    out = {}
    for i, (name, q, fm) in enumerate(hand_models()):
        if name in HAND:
            out[name] = (q, [x for x, lens in hand_inputs(q, fm, 50 + i) if lens is None][:4])
    path = ROOT / "fixtures" / "torch" / "gru_last_l2bi_tm_legacy.onnx"
    data = np.load(str(path).replace(".onnx", ".npz"))
    q = quantize(tinylstm.load_onnx(path), [data["x0"], data["x1"]])
    x0 = q.quantize_input(data["x0"])
    out["gru_last_l2bi_tm_legacy"] = (q, [x0, np.full_like(x0, 127)])
    out["japanese_vowels_gru"] = _japanese_vowels_gru()
    return out


def _japanese_vowels_gru(n: int = 8) -> tuple:
    from tinylstm.data.taskfiles import load_task_file
    from tinylstm.quantize.calibration import calibrate

    fm = tinylstm.load_onnx(MODELS / "japanese_vowels_gru.onnx")
    q = quantize(fm, calibrate(fm, MODELS / "japanese_vowels_gru_calib.npz", progress=False))
    test = load_task_file(MODELS / "japanese_vowels_gru_test.npz")
    by_len: dict[int, list[np.ndarray]] = {}
    for i in range(n):
        by_len.setdefault(int(test.lengths[i]), []).append(test.x[i, : int(test.lengths[i])])
    return q, [q.quantize_input(fm.input_view.from_canonical(np.stack(v)).astype(np.float32))
               for _, v in sorted(by_len.items())]


def _check(where: str, r: ctarget.TargetRun, y_sim: np.ndarray, tr_sim: dict) -> None:
    bad = np.argwhere(r.y != y_sim)
    assert r.y.shape == y_sim.shape and bad.size == 0, f"{where}: output {tuple(bad[0]) if bad.size else r.y.shape}"
    assert r.trace is not None and set(r.trace) == set(tr_sim), where
    for name, dirs in r.trace.items():
        for d, ct in enumerate(dirs):
            st = tr_sim[name][d]
            assert np.array_equal(ct.valid, st.valid), f"{where}: {name}[{d}] processed steps"
            for what in ("h", "c"):
                a, b = getattr(ct, what), getattr(st, what)
                bad = np.argwhere(a != b)
                assert bad.size == 0, (f"{where}: {name}[{d}].{what} at {tuple(bad[0])}: target "
                                       f"{a[tuple(bad[0])]} sim {b[tuple(bad[0])]}")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", CASES)
def test_outputs_and_states_bit_exact(cases, tmp_path: Path, name: str, target: str) -> None:
    q, xs = cases[name]
    exe = ctarget.build_target(q, target, tmp_path, "-Os", trace=True,
                               max_steps=max(q.input_view.to_canonical(x).shape[1] for x in xs))
    n = 0
    for x in xs:
        y_sim, tr_sim = q.run_int(x, trace=True)
        for mode in ("run", "step") if exe.has_step else ("run",):
            _check(f"{name} on {target} {mode} x{tuple(x.shape)}", ctarget.run_target(exe, x, mode, trace=True),
                   y_sim, tr_sim)
            n += 1
    assert n >= len(xs)


def _body(dis: str, fn: str) -> str:
    return dis.split(f"<{fn}>:", 1)[1].split("\n\n", 1)[0] if f"<{fn}>:" in dis else ""


# Armv7-M without DSP (M3: the C loop), Armv7E-M at -O2 (M7), Armv8-M Mainline with DSP (M33), and
# -DTL_PORTABLE where the assembly would run.
VARIANTS = [("cortex-m3", "-Os", False), ("cortex-m7", "-O2", False), ("cortex-m33", "-Os", False),
            ("cortex-m4", "-O2", True)]


@pytest.mark.parametrize("target,opt,portable", VARIANTS,
                         ids=[f"{t}{o}{'-portable' if p else ''}" for t, o, p in VARIANTS])
def test_block_loop_variants_bit_exact(cases, tmp_path: Path, target: str, opt: str, portable: bool) -> None:
    q, xs = cases["ties-fast-lbr1-H9"]
    exe = ctarget.build_target(q, target, tmp_path, opt, trace=True,
                               extra_cflags=("-DTL_PORTABLE",) if portable else ())
    for x in xs[:2]:
        y_sim, tr_sim = q.run_int(x, trace=True)
        _check(f"{target} {opt}", ctarget.run_target(exe, x, "run", trace=True), y_sim, tr_sim)
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(exe.elf)], capture_output=True, text=True,
                         check=True).stdout
    dsp = target in ("cortex-m7", "cortex-m33") and not portable
    assert bool(_body(dis, "tl_gru_blocks_v7em")) == dsp, f"{target}: block loop expected: {dsp}"
    assert _body(dis, "tl_gru_step_fast_q15")


@pytest.mark.parametrize("target", TARGETS)
def test_counts_footprint_and_validate_report(cases, tmp_path: Path, target: str) -> None:
    """Instruction counts and footprint of the trained GRU classifier; validate's cost section."""
    from tinylstm.data.taskfiles import load_task_file
    from tinylstm.validate.validation import validate

    q, xs = cases["japanese_vowels_gru"]
    runners = ctarget.target_runners(q, [target], tmp_path)
    test = load_task_file(MODELS / "japanese_vowels_gru_test.npz")
    seqs = [test.x[i, : int(test.lengths[i])] for i in range(6)]
    rep = validate(MODELS / "japanese_vowels_gru.onnx", q, seqs, c_runners=runners)
    assert [c.mismatched_values for c in rep.c] == [0]
    (cost,) = rep.target_cost
    macs = 3 * 32 * (12 + 32) + 32 * 9  # GRU(12 -> 32) and its Dense head
    assert cost["macs_per_step"] == macs and cost["instructions_per_step"] > 0
    assert 0.5 < cost["instructions_per_mac"] < (8 if target == "cortex-m0plus" else 3)
    exe = next(iter(runners.values())).builds[-1]
    fp = ctarget.target_footprint(exe)
    header = (exe.src_dir / "model.h").read_text()
    assert f"#define MODEL_RAM_BYTES {fp.state_bytes}" in header
    assert fp.runtime_text > 500 and fp.model_rodata > sum(d.w.size + d.r.size for n in q.nodes
                                                           if type(n).__name__ == "QGru" for d in n.directions)
    assert fp.stack_complete or set(fp.library_calls) <= {"memset"}
    if target == "cortex-m0plus":  # no 64-bit library helpers on Armv6-M
        assert not {"__aeabi_lmul", "__aeabi_llsl", "__aeabi_lasr"} & set(fp.library_calls)
    else:  # int16 weights through the block loop: the params name tl_mac4_w16, and tl_mac4_w8 is not linked
        dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(exe.elf)], capture_output=True, text=True,
                             check=True).stdout
        assert _body(dis, "tl_gru_blocks_v7em") and _body(dis, "tl_mac4_w16") and not _body(dis, "tl_mac4_w8")
    assert "## Cost on the emulated cores" in rep.to_markdown()


def test_flash_bytes_match_arm_rodata(cases, tmp_path: Path) -> None:
    """``<P>_FLASH_BYTES`` of GRU models (tl_gru_params_t, tl_gru_unit_t, custom tables) equals the ARM
    object's .rodata up to alignment padding."""
    import re

    from tinylstm.codegen import generate_c

    for name in ("ties-fast-lbr0-H6", "fast-lbr0-int8-clip", "general-hardsigmoid-softsign-clip", "lstm_gru_seq-int8"):
        d = tmp_path / name
        generate_c(cases[name][0], d, "net")
        subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-Os", "-c", "net.c", "-o",
                        "net.o"], cwd=d, check=True, capture_output=True, timeout=300)
        out = subprocess.run(["arm-none-eabi-size", "-A", "-d", "net.o"], cwd=d, check=True, capture_output=True,
                             text=True, timeout=60).stdout
        ro = sum(int(m.group(1)) for m in re.finditer(r"^\.rodata\S*\s+(\d+)", out, flags=re.M))
        flash = int(re.search(r"#define NET_FLASH_BYTES (\d+)", (d / "net.h").read_text()).group(1))
        assert ro <= flash <= ro + 16, (name, ro, flash)  # alignment padding only
