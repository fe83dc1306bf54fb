"""The integer GRU in generated C (issue #18 phase 2b), whole models vs the simulator: exact equality.

Hand-picked models (tests/gru_c_cases.py: GRU only, GRU/LSTM stacks, bidirectional, reverse with
lengths, both linear_before_reset forms, clip, custom activations, int8 and int16 weights, update
rounding ties), the PyTorch GRU fixtures and random ONNX GRU stacks: the output and every GRU state
(int16) and output (int8) per step equal ``run_int(..., trace=True)`` through run, step and
interleaved instances, on gcc -O2, clang -O3, clang ASan + UBSan, the portable kernels and the
Armv6-M arithmetic under sanitizers; the trained GRU examples on their whole test sets.

The kernels on their own: tests/test_gru_c_kernels.py; the Cortex-M cores: tests/test_gru_c_target.py.
The reference is the checked simulator (``simulate.checked.CHECKED``), forced for this module.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest
from gru_c_cases import gru_layers, hand_inputs, hand_models, make_gru_case, random_gru_recipe
from test_c_fuzz import RngPicker, Tally, check_cases

import tinylstm
from tinylstm.cbuild.host import build_host, run_c
from tinylstm.cbuild.toolchain import missing_reason
from tinylstm.data.taskfiles import load_task_file
from tinylstm.quantize.quantizer import quantize
from tinylstm.simulate import checked

ROOT = Path(__file__).resolve().parent
MODELS = ROOT.parent / "examples" / "models"
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
# whole models
# ---------------------------------------------------------------------------------------------
def _torch_fixtures() -> list[tuple[str, tinylstm.qmodel.QuantizedModel, list]]:
    out = []
    for f in sorted(glob.glob(str(ROOT / "fixtures" / "torch" / "*gru*_legacy.onnx"))) + sorted(
            glob.glob(str(ROOT / "fixtures" / "torch" / "*gru*_baked.onnx"))):
        fm = tinylstm.load_onnx(f)
        data = np.load(f.replace(".onnx", ".npz"))
        q = quantize(fm, [data["x0"], data["x1"]])
        xs = [q.quantize_input(data["x0"]), q.quantize_input(data["x1"])]
        xs += [np.full_like(xs[0], 127), np.full_like(xs[0], -128)]
        out.append((Path(f).stem, q, [(x, None) for x in xs]))
    return out


@pytest.fixture(scope="module")
def zoo(hand):
    """Hand-picked models, the PyTorch GRU fixtures and random ONNX GRU / LSTM stacks."""
    entries = [(name, q, hand_inputs(q, fm, 100 + i)) for i, (name, q, fm) in enumerate(hand)]
    entries += _torch_fixtures()
    pick = RngPicker(np.random.default_rng(18))
    while sum(name.startswith("random") for name, _, _ in entries) < 8:
        c = make_gru_case(random_gru_recipe(pick))
        if c is not None:
            entries.append((f"random{len(entries)}", c.qmodel, list(c.inputs)))
    return entries


def _check(exe, i: int, name: str, q, inputs, modes: tuple[str, ...]) -> int:
    n = 0
    for x, lens in inputs:
        y_sim, tr_sim = q.run_int(x, sequence_lens=lens, trace=True)
        for mode in modes:
            if mode != "run" and (not exe.plans[i].has_step or lens is not None):
                continue
            y_c, tr_c = run_c(exe, x, mode, trace=mode != "interleave", model=i, sequence_lens=lens)
            where = f"{name} {mode} x{tuple(x.shape)}"
            bad = np.argwhere(y_c != y_sim)
            assert y_c.shape == y_sim.shape and bad.size == 0, f"{where}: output {tuple(bad[0]) if bad.size else ''}"
            if tr_c is not None:
                assert set(tr_c) == set(tr_sim), where
                for layer, dirs in tr_c.items():
                    for d, ct in enumerate(dirs):
                        st = tr_sim[layer][d]
                        assert np.array_equal(ct.valid, st.valid), f"{where}: {layer}[{d}] processed steps"
                        for what in ("h", "c"):  # a GRU's int8 output and int16 state
                            a, b = getattr(ct, what), getattr(st, what)
                            bad = np.argwhere(a != b)
                            assert bad.size == 0, (f"{where}: {layer}[{d}].{what} at {tuple(bad[0])}: "
                                                   f"C {a[tuple(bad[0])]} sim {b[tuple(bad[0])]}")
            n += 1
    return n


BUILDS = {
    "gcc-O2": ("gcc", "-O2", False, ()),
    "clang-O3": ("clang", "-O3", False, ()),
    "clang-asan-ubsan": ("clang", "-O1", True, ()),
    "gcc-portable-asan-ubsan": ("gcc", "-O1", True, ("-DTL_PORTABLE",)),
    "gcc-armv6m-arith-asan-ubsan": ("gcc", "-O1", True, ("-DTL_PORTABLE", "-DTL_NO_LONG_MUL")),
}


@pytest.mark.parametrize("build", list(BUILDS))
def test_models_bit_exact(zoo, tmp_path: Path, build: str) -> None:
    cc, opt, san, flags = BUILDS[build]
    reason = missing_reason(cc)
    if reason:
        pytest.skip(reason)
    exe = build_host([q for _, q, _ in zoo], tmp_path, compiler=cc, opt=opt, sanitize=san, max_steps=64,
                     extra_flags=flags)
    modes = ("run", "step", "interleave") if build == "gcc-O2" else ("run", "step")
    n = sum(_check(exe, i, name, q, inputs, modes) for i, (name, q, inputs) in enumerate(zoo))
    assert n > 150


def test_zoo_covers_the_brief(zoo) -> None:
    from tinylstm.codegen.plan import make_plan

    plans = [make_plan(q, 64) for _, q, _ in zoo]
    grus = [n for _, q, _ in zoo for n in gru_layers(q)]
    assert sum(p.streaming for p in plans) >= 5 and sum(not p.streaming for p in plans) >= 5
    assert sum(p.has_step for p in plans) >= 5 and any(p.lens_input for p in plans)
    assert any(q.lstm_layers for _, q, _ in zoo)  # mixed GRU / LSTM stacks
    assert any(n.sequence_lens_is_input and any(d.reverse for d in n.directions) for n in grus)
    assert any(np.unique(d.initial_h).size > 1 for n in grus for d in n.directions)
    assert {n.linear_before_reset for n in grus} == {True, False}
    widths = {int(np.abs(d.w.astype(np.int64)).max()) > 127 for n in grus for d in n.directions}
    assert widths == {True, False}
    assert sum(name.startswith("gru") or name.startswith("lstm_gru") for name, _, _ in zoo) >= 5  # torch


def test_random_stacks_through_the_fuzz_checker(tmp_path: Path) -> None:
    """The generator bench/fuzz_target.py --cell gru uses, through test_c_fuzz's checker on the host."""
    pick = RngPicker(np.random.default_rng(7))
    cases = []
    while len(cases) < 6:
        c = make_gru_case(random_gru_recipe(pick))
        if c is not None:
            cases.append(c)
    tally = Tally()
    exe = build_host([c.qmodel for c in cases], tmp_path, max_steps=64)
    assert check_cases(exe, cases, tally) == [] and tally.steps > 0


# ---------------------------------------------------------------------------------------------
# the trained examples
# ---------------------------------------------------------------------------------------------
@needs_gcc
def test_trained_examples_c_equals_simulator(tmp_path: Path) -> None:
    from tinylstm.quantize.calibration import calibrate

    cases = []
    for name in ("adding_gru_T100", "japanese_vowels_gru"):
        fm = tinylstm.load_onnx(MODELS / f"{name}.onnx")
        q = quantize(fm, calibrate(fm, MODELS / f"{name}_calib.npz", progress=False))
        test = load_task_file(MODELS / f"{name}_test.npz")
        cases.append((name, fm, q, test))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checked, "CHECKED", False)  # the fast simulator (equal to the checked one: its own tests)
        exe = build_host([q for _, _, q, _ in cases], tmp_path, max_steps=128)
        for i, (name, fm, q, test) in enumerate(cases):
            lens = test.lengths if test.lengths is not None else np.full(len(test.x), test.x.shape[1])
            checked_rows = 0
            for t in np.unique(lens):
                rows = np.nonzero(lens == t)[0]
                x = q.quantize_input(fm.input_view.from_canonical(test.x[rows, :t]).astype(np.float32))
                y_c, _ = run_c(exe, x, "run", model=i)
                assert np.array_equal(y_c, q.run_int(x)), f"{name}: {len(rows)} sequences of {t} steps"
                checked_rows += len(rows)
            assert checked_rows == len(test.x) >= 370
