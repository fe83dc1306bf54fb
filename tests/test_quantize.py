"""Calibration, the quantizer's float -> int decisions, the overflow proof and the .tlq format."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
from test_simulate import data_for, make_model, quantized, rand_direction, seq_view, vec_view

import tinylstm
from tinylstm.errors import DataError, ModelFormatError, QuantizationError
from tinylstm.ir import (
    SIGMOID,
    TANH,
    Activation,
    FloatModel,
    InputNode,
    LstmNode,
    SelectStepNode,
)
from tinylstm.qmodel import QDense, QuantizedModel
from tinylstm.qmodel.bounds import gate_sum_bound
from tinylstm.quantize.calibration import calibrate
from tinylstm.quantize.lstm import S_MIN
from tinylstm.quantize.luts import standard_table
from tinylstm.quantize.quantizer import cell_frac, int8_params, quantize, quantize_rows


def test_int8_params() -> None:
    s, zp = int8_params(-1.0, 3.0)
    assert s == pytest.approx(4.0 / 255) and zp == round(-128 + 1.0 / s)
    assert int8_params(0.5, 2.0)[1] == -128  # widened to hold 0: 0.0 is exact
    s, zp = int8_params(-2.0, 0.0)
    assert zp == 127
    assert int8_params(0.0, 0.0) == (1.0 / 128.0, 0)
    for lo, hi in [(-1.3, 0.2), (-0.01, 5.0), (-3.0, 3.0)]:
        s, zp = int8_params(lo, hi)
        # the range is covered up to the zero point's rounding (one LSB at one end)
        assert -128 <= zp <= 127 and s * (127 - zp) >= hi - s and s * (-128 - zp) <= lo + s


def test_lstm_weight_width() -> None:
    m = make_model("last_dense")
    x, _ = data_for(m, 0)
    q8 = quantize(m, x, lstm_weight_bits=8)
    d8 = q8.nodes[1].directions[0]
    assert d8.w.dtype == np.int8 and d8.r.dtype == np.int8 and np.abs(d8.r).max() == 127
    d16 = quantize(m, x).nodes[1].directions[0]
    assert d16.r.dtype == np.int16 and np.abs(d16.r).max() == 32767
    assert q8.nodes[-1].weight.dtype == np.int8  # heads stay int8
    with pytest.raises(QuantizationError, match="lstm_weight_bits"):
        quantize(m, x, lstm_weight_bits=12)


def test_weight_width_lowered_for_huge_fan_in() -> None:
    # fan-in 2000 with int16 weights could overflow int32: the matrix drops to fewer bits
    from tinylstm.quantize.lstm import _lstm_matrix

    w = np.random.default_rng(0).normal(size=(8, 2000))
    wq, s = _lstm_matrix(w, 16, "t")
    # widened inputs |x - zp| <= 255 (§5): the widest width whose row sums 255 sum |w| fit int32
    assert wq.dtype == np.int16 and np.abs(wq).max() == 2**14 - 1
    assert (255 * np.abs(wq.astype(np.int64)).sum(1)).max() < 2**31
    assert (255 * np.abs(quantize_rows(w, 16)[0].astype(np.int64)).sum(1)).max() >= 2**31
    assert np.allclose(wq * s[:, None], w, atol=s.max())
    with pytest.raises(QuantizationError, match="fan-in"):
        _lstm_matrix(np.ones((2, 200_000)), 16, "t")


def test_quantize_rows_symmetric_per_row() -> None:
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [3.0, 1.5, -3.0]])
    wq, s = quantize_rows(w)
    assert wq.dtype == np.int8 and wq.min() >= -127
    assert wq[0].tolist() == [64, -127, 32] and wq[1].tolist() == [0, 0, 0] and wq[2].tolist() == [127, 64, -127]
    assert s[1] == 1.0


def test_cell_frac_power_of_two_with_headroom() -> None:
    assert cell_frac(7.9, 1.0) == 12  # range [-8, 8): Q3.12
    assert cell_frac(8.0, 1.0) == 12
    assert cell_frac(8.1, 1.0) == 11
    assert cell_frac(7.9, 1.5) == 11
    assert cell_frac(0.0, 1.0) == 15
    assert cell_frac(1e-9, 1.0) == 23


# ---------------------------------------------------------------------------------------
# calibration
# ---------------------------------------------------------------------------------------
def test_observers_order_and_content() -> None:
    m = make_model("last_dense")
    x, _ = data_for(m, 1, batch=64)
    x[0, 0, 0] = 25.0  # one outlier
    mm = calibrate(m, x, observer="minmax")
    pc = calibrate(m, x, observer="percentile", percentile=99.0)
    ms = calibrate(m, x, observer="mse")
    assert mm.range(0)[1] == pytest.approx(25.0)
    assert pc.range(0)[1] < 5.0 and ms.range(0)[1] <= 25.0
    assert pc.get(0, "output").max == pytest.approx(25.0)  # exact extremes are kept
    assert mm.absmax(1, "c0") == pc.absmax(1, "c0")  # the cell keeps the exact max
    for gate in "ifgo":
        assert (1, f"pre0.{gate}") in mm.ranges
    assert mm.sequences == 64 and mm.steps == 64 * 12


def test_mse_observer_lowers_the_error() -> None:
    from tinylstm.quantize.calibration import _mse_range

    x = np.random.default_rng(0).laplace(0, 1, 200_000)
    lo, hi = _mse_range(x.astype(np.float32), float(x.min()), float(x.max()))

    def mse(lo: float, hi: float) -> float:
        s, zp = int8_params(lo, hi)
        q = np.clip(np.rint(x / s) + zp, -128, 127)
        return float(np.mean((s * (q - zp) - x) ** 2))

    assert x.min() < lo < 0 < hi < x.max()
    assert mse(lo, hi) < 0.8 * mse(x.min(), x.max())  # measured 0.75 (optimal clip ~ 10 b for 8 bits)


def test_calibration_data_forms(tmp_path) -> None:
    m = make_model("last_dense")
    x, _ = data_for(m, 2, batch=8)
    lens = np.array([12, 3, 5, 12, 7, 1, 2, 9])
    ref = calibrate(m, [x[i, :n] for i, n in enumerate(lens)])  # single sequences, no batch axis
    assert ref.sequences == 8 and ref.steps == int(lens.sum())
    np.savez(tmp_path / "c.npz", x=x, lengths=lens)
    assert calibrate(m, tmp_path / "c.npz").ranges[(1, "c0")] == ref.ranges[(1, "c0")]
    assert calibrate(m, x, sequence_lens=lens).ranges[(1, "c0")] == ref.ranges[(1, "c0")]
    np.save(tmp_path / "c.npy", x)
    assert calibrate(m, str(tmp_path / "c.npy")).steps == 96
    seen = []
    calibrate(m, x, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (8, 8)
    with pytest.raises(DataError, match="no such file"):
        calibrate(m, tmp_path / "missing.npz")
    with pytest.raises(DataError, match="observer"):
        calibrate(m, x, observer="kl")
    with pytest.raises(DataError, match=r"calibration data: the array has shape \(2, 5, 7\), not the model's input"):
        calibrate(m, np.zeros((2, 5, 7), np.float32))
    np.savez(tmp_path / "two.npz", a=x, b=x)
    with pytest.raises(DataError, match="'x'"):
        calibrate(m, tmp_path / "two.npz")


def test_quantize_accepts_raw_data() -> None:
    m = make_model("last_dense")
    x, _ = data_for(m, 3)
    q1 = quantize(m, x)
    q2 = quantize(m, calibrate(m, x))
    xi = q1.quantize_input(x)
    assert np.array_equal(q1.run_int(xi), q2.run_int(xi))
    assert dict(q1.options)["observer"] == "minmax"


# ---------------------------------------------------------------------------------------
# structure and refusals
# ---------------------------------------------------------------------------------------
def test_dense_relu_fused() -> None:
    m, q = quantized("relu_logsoftmax")
    assert len(q.nodes) == len(m.nodes) - 1
    d = [n for n in q.nodes if isinstance(n, QDense)][0]
    assert d.fused == "relu" and d.act_min == max(-128, d.zero_point)
    assert q.nodes[-2].src == 3  # fc2 reads the fused node


def _one_layer(acts=(SIGMOID, TANH, TANH), clip=None, gain=1.5, I=3, H=4) -> FloatModel:
    rng = np.random.default_rng(0)
    d = rand_direction(rng, I, H, acts=acts, gain=gain)
    nodes = (InputNode("x", I), LstmNode("enc", 0, I, H, (d,), clip=clip), SelectStepNode("s", 1, -1, H))
    return FloatModel(nodes, "x", "y", seq_view(I), vec_view(H))


def test_unbounded_cell_activation_refused() -> None:
    m = _one_layer(acts=(SIGMOID, TANH, Activation("Relu")))
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype(np.float32)
    with pytest.raises(QuantizationError, match=r"node 'enc'.*Relu.*no float fallback"):
        quantize(m, x)


def test_slow_gate_activation_needs_clip() -> None:
    m = _one_layer(acts=(SIGMOID, Activation("Softsign"), TANH), gain=40.0)
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype(np.float32)
    with pytest.raises(QuantizationError, match=r"node 'enc'.*Softsign.*clip"):
        quantize(m, x)
    q = quantize(replace(m, nodes=(m.nodes[0], replace(m.nodes[1], clip=5.0), m.nodes[2])), x)
    assert q.nodes[1].directions[0].lut_g.domain == 8.0


def test_relu_gate_with_clip_is_tabulated() -> None:
    m = _one_layer(acts=(SIGMOID, Activation("Relu"), TANH), clip=3.0)
    x = np.random.default_rng(0).normal(size=(16, 6, 3)).astype(np.float32)
    q = quantize(m, x)
    lut = q.nodes[1].directions[0].lut_g
    assert lut.q == 13 and lut.sym == 0
    assert np.abs(q.run(x) - m.run(x)).max() <= 4 * q.output_scale


def test_pre_frac_lowered_when_the_bound_needs_it() -> None:
    # a huge input range: worst-case pre-activations ~2^16, beyond int32 at P = 16
    m = _one_layer(gain=60.0)
    x = np.random.default_rng(0).normal(0, 300.0, (8, 6, 3)).astype(np.float32)
    q = quantize(m, x)
    layer = q.nodes[1]
    d = layer.directions[0]
    # P comes down until every row keeps S_MIN bits below Q(P) in t (§6): the 16-bit multipliers
    # of an input this coarse would otherwise leave fewer
    assert layer.pre_frac < 16 and d.shift.min() >= S_MIN
    tb = gate_sum_bound(d.w, d.r, d.pre_x, d.pre_h, d.mult_x, d.mult_h, d.bias)
    assert tb.max() < 2**31
    qf = quantize(m, x, pre_frac=12)  # a lower request is honoured as it is
    assert qf.nodes[1].pre_frac == min(12, layer.pre_frac)
    q.run_int(q.quantize_input(x))  # the simulator's range checks pass


def test_zero_weight_rows_do_not_limit_the_shift() -> None:
    # a hand-built constant-error-carousel unit: R all zero, zero W rows beside a large bias (§6)
    m = _one_layer(H=1, I=2)
    d = m.nodes[1].directions[0]
    w = np.array([[0.0, 30.0], [0.0, 0.0], [0.05, 0.0], [0.0, 0.0]])
    d = replace(d, w=w, r=np.zeros((4, 1)), b=np.array([-15.0, 20.0, 0.0, 20.0]))
    m = replace(m, nodes=(m.nodes[0], replace(m.nodes[1], directions=(d,)), m.nodes[2]))
    x = np.random.default_rng(0).uniform(0, 1, (16, 20, 2)).astype(np.float32)
    q = quantize(m, x)
    qd = q.nodes[1].directions[0]
    assert q.nodes[1].pre_frac == 16
    assert (qd.mult_h == 0).all() and qd.mult_x[1] == 0 and qd.mult_x[3] == 0
    assert (qd.shift >= S_MIN).all() and qd.shift[1] < 30  # lowered for the bias 20 only
    assert qd.bias[1] >> qd.shift[1] == 20 * 2**16  # the bias exactly in Q(16)
    _, tr = q.run_int(q.quantize_input(x), trace=True)
    assert (tr["enc"][0].gates[..., 1] == 2**15).all()  # f = 1.0 exactly: the carousel keeps c


def test_small_table_limits_the_cell_format() -> None:
    # a 16-segment standard table read by the cell's tanh at shift k - frac: its steps are large,
    # so k stays <= frac + 17 (§11.4) where the tiny cells would ask for 23
    m = _one_layer()
    d = m.nodes[1].directions[0]
    g = slice(8, 12)  # the g rows (H = 4): a tiny cell input, so |c| < 2^-8
    w, r, bias = d.w.copy(), d.r.copy(), d.b.copy()
    w[g] *= 1e-4
    r[g] *= 1e-4
    bias[g] = 1e-4
    m = replace(m, nodes=(m.nodes[0], replace(m.nodes[1], directions=(replace(d, w=w, r=r, b=bias),)), m.nodes[2]))
    x = np.random.default_rng(0).normal(size=(8, 6, 3)).astype(np.float32)
    assert quantize(m, x).nodes[1].directions[0].cell_frac == 23
    q = quantize(m, x, lut_size=16)
    d = q.nodes[1].directions[0]
    assert q.nodes[1].table_frac == 0 and d.cell_frac == 17
    q.run_int(q.quantize_input(x))
    bad = replace(q, nodes=(q.nodes[0], replace(q.nodes[1], directions=(replace(d, cell_frac=18, s_c=d.s_c - 1,
                                                                                     a_ig=d.a_ig + 1),)),
                            q.nodes[2]))
    from tinylstm.qmodel.check import check_model

    check_model(q)
    with pytest.raises(ModelFormatError, match="cell_frac 18"):
        check_model(bad)


def test_impossible_model_refused() -> None:
    m = _one_layer(gain=1e6)
    x = np.random.default_rng(0).normal(0, 1e5, (4, 6, 3)).astype(np.float32)
    with pytest.raises(QuantizationError, match="node 'enc'"):
        quantize(m, x)


def test_options_validated() -> None:
    m = make_model("last_dense")
    x, _ = data_for(m, 0)
    with pytest.raises(QuantizationError, match="lut_size"):
        quantize(m, x, lut_size=300)
    with pytest.raises(QuantizationError, match="pre_frac"):
        quantize(m, x, pre_frac=4)
    with pytest.raises(QuantizationError, match="cell_headroom"):
        quantize(m, x, cell_headroom=0.5)


def test_default_tables() -> None:
    # sigmoid / tanh / tanh: the one standard table of the model, no per-direction table (§8.1)
    _, q = quantized("last_dense")
    layer = q.nodes[1]
    d = layer.directions[0]
    table, frac = standard_table()
    assert d.standard and d.lut_f is None and d.lut_g is None and d.lut_h is None
    assert np.array_equal(layer.table, table) and layer.table_frac == frac == 5 and table.size == 513
    assert d.gate_q == (15, 15, 15)
    # other activations get their own tables (§8.2), with the v1 domains
    q2 = quantize(_one_layer(acts=(Activation("HardSigmoid", 0.2, 0.5), TANH, TANH)),
                  np.random.default_rng(0).normal(size=(8, 6, 3)).astype(np.float32))
    d2 = q2.nodes[1].directions[0]
    assert not d2.standard and d2.lut_f is not None and d2.lut_g.n == 512 and d2.lut_g.domain == 8.0
    assert q2.nodes[1].table is None


def test_default_formats() -> None:
    m, q = quantized("bidir_peep_clip_yh")
    layer = q.nodes[1]
    assert layer.pre_frac == 16 and layer.clip_q == round(2.5 * 2**16)
    for d in layer.directions:
        assert d.w.dtype == np.int16 and d.w.min() >= -32767 and d.peep.dtype == np.int16
        assert d.standard and d.gate_q == (15, 15, 15)
        # 16-bit gate multipliers with 15 significant bits on the larger side of each row (§6)
        mm = np.maximum(d.mult_x, d.mult_h)
        assert ((mm >= 2**14) & (mm < 2**15)).all() and (d.mult_x >= 0).all() and (d.mult_h >= 0).all()
        assert ((d.shift >= S_MIN) & (d.shift <= 30)).all()
        assert 0 <= d.pre_x <= 7 and 0 <= d.pre_h <= 7


# ---------------------------------------------------------------------------------------
# .tlq files
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["bidir_stacked_tanh_gather", "reverse_lens_init_yc", "relu_logsoftmax"])
def test_save_load_roundtrip(tmp_path, shape: str) -> None:
    m, q = quantized(shape)
    path = tmp_path / "m.tlq"
    q.save(path)
    q2 = QuantizedModel.load(path)
    x, lens = data_for(m, 7)
    xi = q.quantize_input(x)
    assert np.array_equal(q.run_int(xi, sequence_lens=lens), q2.run_int(xi, sequence_lens=lens))
    assert q2.input_view == q.input_view and q2.output_scale == q.output_scale
    with np.load(path, allow_pickle=False) as z:  # loads without pickle
        header = json.loads(z["header"].tobytes())
    assert header["format"] == "tinylstm-qmodel" and header["version"] == 2


def _rewrite_header(path, out, mutate) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    tree = json.loads(arrays["header"].tobytes())
    mutate(tree)
    arrays["header"] = np.frombuffer(json.dumps(tree).encode(), np.uint8)
    np.savez(out, **arrays)


def test_load_refuses_bad_files(tmp_path) -> None:
    _, q = quantized("last_dense")
    good = tmp_path / "good.tlq"
    q.save(good)
    _rewrite_header(good, tmp_path / "v3.npz", lambda t: t.update(version=3))
    with pytest.raises(ModelFormatError, match="version 3"):
        QuantizedModel.load(tmp_path / "v3.npz")
    # a version 1 file (integer spec v1) is refused with what to do
    _rewrite_header(good, tmp_path / "v1.npz", lambda t: t.update(version=1))
    with pytest.raises(ModelFormatError, match="version 1.*quantize"):
        QuantizedModel.load(tmp_path / "v1.npz")
    _rewrite_header(good, tmp_path / "fmt.npz", lambda t: t.update(format="other"))
    with pytest.raises(ModelFormatError, match="not a tinylstm"):
        QuantizedModel.load(tmp_path / "fmt.npz")
    _rewrite_header(good, tmp_path / "cls.npz", lambda t: t["model"].update({"$type": "os.system"}))
    with pytest.raises(ModelFormatError, match="unknown object type"):
        QuantizedModel.load(tmp_path / "cls.npz")
    (tmp_path / "junk.tlq").write_bytes(b"not a zip")
    with pytest.raises(ModelFormatError):
        QuantizedModel.load(tmp_path / "junk.tlq")
    with pytest.raises(ModelFormatError, match="no such file"):
        QuantizedModel.load(tmp_path / "nope.tlq")
    # a pickled object array inside is refused, not unpickled
    with zipfile.ZipFile(good) as zf:
        names = zf.namelist()
    assert all(n.endswith(".npy") for n in names)
    arrays = dict(np.load(good, allow_pickle=False))
    arrays["a0"] = np.array([object()], dtype=object)
    np.savez(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(ModelFormatError):
        QuantizedModel.load(tmp_path / "pickled.npz")


def test_quantize_takes_a_dataset_like_every_other_data_form(tmp_path) -> None:
    """One Dataset type: what load_dataset returns, calibrate and quantize take as it is, and it
    gives the same integer model as the file it came from."""
    from tinylstm.data import load_dataset

    root = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "models"
    fm = tinylstm.load_onnx(root / "japanese_vowels.onnx")
    path = root / "japanese_vowels_calib.npz"
    ds = load_dataset(path, fm, what="calibration data")
    a, b = quantize(fm, ds), quantize(fm, str(path))
    x = ds.groups()[0][1][:2].astype(np.float32)
    np.testing.assert_array_equal(a.run_int(a.quantize_input(x)), b.run_int(b.quantize_input(x)))
    assert calibrate(fm, ds).steps == calibrate(fm, str(path)).steps == sum(len(s) for s in ds.sequences)
