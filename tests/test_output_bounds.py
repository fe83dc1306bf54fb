"""The overflow proof for the two output requantizations whose result is not bounded by its
inputs' formats alone (docs/quantization.md §11.8, §11.9): Y_c (the int16 cell as an int8
output) and LogSoftmax's ``127 + D − L``. A calibrated output range far below the cell range (or
the log-softmax input range) would make those int32 results overflow; the quantizer raises the
output scale just enough, and ``check_model`` refuses a model file whose factors could overflow.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from onnx_builders import HeadSpec, LstmSpec, random_input, single_lstm_model, stacked_model

import tinylstm
from tinylstm import fixedpoint
from tinylstm.cbuild import host as chost
from tinylstm.cbuild.toolchain import missing_reason
from tinylstm.errors import ModelFormatError
from tinylstm.fixedpoint import INT32_MAX
from tinylstm.qmodel import QLstmState, QSoftmax, check_model, log_softmax_bound, state_c_bound
from tinylstm.quantize.calibration import calibrate
from tinylstm.quantize.params import int8_params, int8_params_min_scale
from tinylstm.quantize.quantizer import quantize

NEED_GCC = pytest.mark.skipif(bool(missing_reason("gcc")), reason=missing_reason("gcc") or "")


def _shrunk(fm, x: np.ndarray, k: int, lo: float, hi: float):
    """Calibration of ``x`` with node ``k``'s output range replaced by [lo, hi]."""
    cal = calibrate(fm, [x])
    r = cal.ranges[(k, "output")]
    tiny = dataclasses.replace(r, lo=lo, hi=hi, min=lo, max=hi)
    return dataclasses.replace(cal, ranges={**cal.ranges, (k, "output"): tiny})


def _yc_model():
    m = single_lstm_model(LstmSpec(input_size=3, hidden_size=4, outputs=("Y_c",)))
    fm = tinylstm.load_onnx(m)
    x = random_input(m, 3, 6, seed=1)
    k = len(fm.nodes) - 1
    return m, fm, x, k, _shrunk(fm, x, k, -1e-7, 1e-7)


def test_int8_params_min_scale() -> None:
    assert int8_params_min_scale(-1.0, 3.0, 1e-3) == int8_params(-1.0, 3.0)  # already coarser
    s, zp = int8_params_min_scale(-1e-7, 1e-7, 1e-3)
    assert s == 1e-3 and zp == round(-128 + 1e-7 / 1e-3)


def test_state_c_scale_raised_when_the_calibrated_range_is_tiny() -> None:
    _, fm, _, k, cal = _yc_model()
    q = quantize(fm, cal)
    node = q.nodes[-1]
    assert isinstance(node, QLstmState) and node.which == "c"
    (d,) = q.lstm_layers[0].directions
    # at the calibrated scale, a cell at its int16 limit would overflow the int32 requantization
    s_cal = int8_params(-1e-7, 1e-7)[0]
    assert 32768 * 2.0**-d.cell_frac / s_cal > INT32_MAX
    assert node.scale > s_cal
    assert state_c_bound(node.mult, node.shift, node.zero_point) <= INT32_MAX
    check_model(q)


def test_state_c_worst_cells_fit_int32() -> None:
    """Cells at both int16 limits through the raised scale: the exact (int64) requantization stays
    within int32 and saturates to the int8 limits."""
    _, fm, _, _, cal = _yc_model()
    q = quantize(fm, cal)
    node = q.nodes[-1]
    c = np.array([-32768, 32767], np.int64)
    for m, s in zip(node.mult, node.shift, strict=True):
        v = fixedpoint.requant(c, m, s) + node.zero_point
        assert np.abs(v).max() <= INT32_MAX
        assert list(fixedpoint.sat8(v)) == [-128, 127]


@NEED_GCC
def test_state_c_raised_scale_c_equals_simulator(tmp_path) -> None:
    m, fm, _, _, cal = _yc_model()
    q = quantize(fm, cal)
    x = q.quantize_input(random_input(m, 4, 9, seed=5) * 40.0)  # large inputs: saturated gates, big cells
    exe = chost.build_host(q, tmp_path)
    y, _ = chost.run_c(exe, x)
    assert np.array_equal(y, q.run_int(x))


def test_check_model_refuses_an_overflowing_state_c() -> None:
    _, fm, _, _, cal = _yc_model()
    q = quantize(fm, cal)
    node = q.nodes[-1]
    bad = dataclasses.replace(node, mult=(2**30 + 1,), shift=(10,))  # factor 2^20: 2^35 at c = 2^15
    assert state_c_bound(bad.mult, bad.shift, bad.zero_point) > INT32_MAX
    with pytest.raises(ModelFormatError, match=r"§11\.9"):
        check_model(dataclasses.replace(q, nodes=q.nodes[:-1] + (bad,)))


def _log_softmax_model():
    m = stacked_model([LstmSpec(input_size=3, hidden_size=4)],
                      head=HeadSpec("last_gemm", 3, activations=("LogSoftmax",)))
    fm = tinylstm.load_onnx(m)
    return m, fm, random_input(m, 3, 6, seed=2)


def test_log_softmax_scale_raised_when_the_calibrated_range_is_tiny() -> None:
    _, fm, x = _log_softmax_model()
    k = len(fm.nodes) - 1
    q = quantize(fm, _shrunk(fm, x, k, -1e-6, 0.0))
    node = q.nodes[-1]
    assert isinstance(node, QSoftmax) and node.log
    s_cal, zp = int8_params(-1e-6 * 1.05, 0.0)  # the calibrated scale (range margin 0.05)
    assert zp == 127 and 2.0**20 * np.log(2.0) / (2.0**16 * s_cal) > INT32_MAX  # L would overflow
    assert node.scale >= 16 * np.log(2.0) / 2.0**29
    assert log_softmax_bound(node.l_mult, node.l_shift, node.d_mult, node.d_shift) <= INT32_MAX
    check_model(q)
    # and an ordinary calibration keeps its own scale (the floor is far below it)
    q2 = quantize(fm, [x])
    lo, _ = calibrate(fm, [x]).range(k)
    assert q2.nodes[-1].scale == pytest.approx(-min(lo, 0.0) * (1 + 0.05) / 255, rel=0.2)


def test_check_model_refuses_an_overflowing_log_softmax() -> None:
    _, fm, x = _log_softmax_model()
    q = quantize(fm, [x])
    bad = dataclasses.replace(q.nodes[-1], l_mult=2**30 + 1, l_shift=12)  # L up to 2^20 * 2^18
    with pytest.raises(ModelFormatError, match=r"§11\.8"):
        check_model(dataclasses.replace(q, nodes=q.nodes[:-1] + (bad,)))
