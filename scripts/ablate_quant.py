"""Ablation of the integer design on a trained model: table size, interpolation, gate domain and
format, pre-activation fraction bits, cell headroom, observer.

    .venv/bin/python scripts/ablate_quant.py examples/models/adding_T100.onnx \\
        [--calib X_calib.npz] [--test X_test.npz] [--variants base,lut256,...] [--n 2560]
    .venv/bin/python scripts/ablate_quant.py --synthetic 400     # hand-built adder, T = 400

Defaults: ``<model>_calib.npz`` and ``<model>_test.npz`` beside the model. Prints one markdown
row per variant: errors on the test set with the task's own criterion (tinylstm.data.tasks.score),
next to the float model's, and the max error of the gate tables in LSB of Q0.15.

Variants that are not quantize() options are built by replacing the standard table (spec §8.1)
of the integer model with per-slot tables (§8.2: ``gate8``: the sigmoid table clamped at |x| = 8
like TFLite Micro; ``gateq8``: 8-bit gates whose maximum is 255/256 like an int8 sigmoid), so the
simulator runs exactly what is described. ``nointerp*`` (``lut_interp=False``) also uses
per-slot tables, read at the nearest entry. The gate-arithmetic candidates weighed for spec
version 2 are in docs/quantization.md §15.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinylstm  # noqa: E402
from tinylstm.data import tasks  # noqa: E402
from tinylstm.data.taskfiles import load_task_file  # noqa: E402
from tinylstm.fixedpoint import Lut, sigmoid_q15  # noqa: E402
from tinylstm.ir import Activation  # noqa: E402
from tinylstm.qmodel import QLstm, QuantizedModel  # noqa: E402
from tinylstm.quantize.calibration import calibrate  # noqa: E402
from tinylstm.quantize.luts import build_lut, lut_error  # noqa: E402
from tinylstm.quantize.quantizer import quantize  # noqa: E402

#: name -> (quantize() options, table rewrite or None)
VARIANTS: dict[str, dict] = {
    "base": {},
    "lut256": {"lut_size": 256},
    "lut1024": {"lut_size": 1024},
    "lut2048": {"lut_size": 2048},
    "nointerp512": {"lut_interp": False},
    "nointerp2048": {"lut_interp": False, "lut_size": 2048},
    "P8": {"pre_frac": 8},
    "P10": {"pre_frac": 10},
    "P12": {"pre_frac": 12},
    "P14": {"pre_frac": 14},
    "headroom2": {"cell_headroom": 2.0},
    "w8": {"lstm_weight_bits": 8},
    "margin0": {"range_margin": 0.0},
    "margin10": {"range_margin": 0.1},
    "percentile": {"observer": "percentile"},
    "mse": {"observer": "mse"},
    "gate8": {"_rewrite": "gate8"},
    "gateq8": {"_rewrite": "gateq8"},
}


def _gate8(lut: Lut, act: Activation) -> Lut:
    """The same table, its domain cut at |x| = 8 (TFLite Micro's sigmoid range)."""
    return build_lut(act, lut.in_frac, limit=8.0, size=lut.n // 2 if lut.sym else lut.n // 4)


def _gateq8(lut: Lut, act: Activation) -> Lut:
    """8-bit gates: q = 8 and the top value clamped to 255 (an int8/uint8 sigmoid's maximum)."""
    base = build_lut(act, lut.in_frac, size=lut.n if lut.sym else lut.n // 2)
    t = np.rint(base.table.astype(np.float64) / 2 ** (base.q - 8))
    t = np.minimum(t, 255 if act.name == "Sigmoid" else 256).astype(np.int32)
    return dataclasses.replace(base, table=t, q=8)


def synthetic_adder(T: int):
    """A hand-built one-unit LSTM for the adding problem that relies on the constant error
    carousel: forget gate sigma(20) (1 - 2e-9), input gate open only on marker 1, g = tanh(0.05 v),
    h = tanh(c), y = 0.5 + 5 h. In float it is exact up to tanh's curvature (~1e-4) except when
    the first pair is marked (it then adds X1 instead of ignoring it: ~10% of sequences wrong).
    Returns (model, calibration data, test data) with the paper's 2560 test sequences."""
    from tinylstm.ir import (
        SIGMOID,
        TANH,
        Atom,
        DenseNode,
        FloatModel,
        InputNode,
        LstmDirection,
        LstmNode,
        SelectStepNode,
        View,
    )

    K = 30.0
    w = np.array([[0.0, K], [0.0, 0.0], [0.05, 0.0], [0.0, 0.0]], np.float32)  # rows i, f, g, o
    b = np.array([-K / 2, 20.0, 0.0, 20.0], np.float32)
    d = LstmDirection(w, np.zeros((4, 1), np.float32), b, None, np.zeros((1, 1), np.float32),
                      np.zeros((1, 1), np.float32), False, (SIGMOID, TANH, TANH))
    nodes = (InputNode("x", 2), LstmNode("adder", 0, 2, 1, (d,)), SelectStepNode("last", 1, -1, 1),
             DenseNode("out", 2, np.array([[5.0]], np.float32), np.array([0.5], np.float32)))
    seq = View((Atom("B", None), Atom("T", None), Atom("F", 2)), ((0,), (1,), (2,)))
    vec = View((Atom("B", None), Atom("F", 1)), ((0,), (1,)))
    fm = FloatModel(nodes, "x", "y", seq, vec)
    calib = tasks.generate("adding", 256, 7000 + T, T)
    test = tasks.generate("adding", 2560, 8000 + T, T)
    calib_list = [calib.x[i, : calib.lengths[i]] for i in range(calib.n)]
    return fm, calib_list, test


def rewrite(q: QuantizedModel, fm, how: str) -> QuantizedModel:
    nodes = list(q.nodes)
    fl = {n.name: n for n in fm.nodes}
    for k, n in enumerate(nodes):
        if not isinstance(n, QLstm):
            continue
        dirs = []
        for d, fd in zip(n.directions, fl[n.name].directions, strict=True):
            f_act, g_act, h_act = fd.activations
            # per-slot tables with the standard table's grid (512 segments per half)
            lut_g = d.lut_g or build_lut(g_act, n.pre_frac, size=512)
            lut_h = d.lut_h or build_lut(h_act, d.cell_frac, limit=2.0 ** (15 - d.cell_frac), size=512)
            base_f = d.lut_f or build_lut(f_act, n.pre_frac, size=512)
            lf = _gate8(base_f, f_act) if how == "gate8" else _gateq8(base_f, f_act)
            m = max(d.cell_frac, lut_g.q)
            hm, hs = tinylstm.fixedpoint.quantize_multiplier(2.0 ** -(lf.q + lut_h.q) / n.scale)
            dirs.append(dataclasses.replace(d, lut_f=lf, lut_g=lut_g, lut_h=lut_h, a_fc=m - d.cell_frac,
                                            a_ig=m - lut_g.q, s_c=lf.q + m - d.cell_frac, h_mult=hm, h_shift=hs))
        table = n.table if any(d.standard for d in dirs) else None
        nodes[k] = dataclasses.replace(n, directions=tuple(dirs), table=table)
    return dataclasses.replace(q, nodes=tuple(nodes))


def gate_error(q: QuantizedModel, fm) -> float:
    """Max error of the f-slot (sigmoid) function over every Q(P) input, in LSB of Q(15)."""
    fl = {n.name: n for n in fm.nodes}
    worst = 0.0
    for n in q.lstm_layers:
        for d, fd in zip(n.directions, fl[n.name].directions, strict=True):
            if d.standard:
                p = n.pre_frac
                z = np.arange(-17 * 2**p, 17 * 2**p + 1, dtype=np.int64)
                got = sigmoid_q15(z, n.table, p - n.table_frac)
                err = float(np.abs(got - 2**15 / (1 + np.exp(-z * 2.0**-p))).max())
            else:
                err = lut_error(d.lut_f, fd.activations[0]) * 2.0 ** (15 - d.lut_f.q)
            worst = max(worst, err)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, nargs="?")
    ap.add_argument("--synthetic", type=int, metavar="T", help="hand-built adder on the adding problem, T")
    ap.add_argument("--calib", type=Path)
    ap.add_argument("--test", type=Path)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--n", type=int, default=None, help="use the first n test sequences")
    args = ap.parse_args()
    if args.synthetic:
        fm, calib_path, test = synthetic_adder(args.synthetic)
        label = f"synthetic adder, T={args.synthetic}"
    else:
        stem = args.model.with_suffix("")
        calib_path = args.calib or Path(f"{stem}_calib.npz")
        test_path = args.test or Path(f"{stem}_test.npz")
        fm = tinylstm.load_onnx(args.model)
        test = load_task_file(test_path)
        label = args.model.name
    if args.n:
        test = test.subset(np.arange(min(args.n, test.n)))
    t0 = time.time()
    float_pred = tasks.predict_by_length(fm.run, test)
    float_score = tasks.score(float_pred, test)
    print(f"model {label}: {test.n} test sequences; float {float_score} ({time.time() - t0:.0f} s)")
    cal_cache: dict[str, object] = {}
    print("\n| variant | P | table | interp | gate table max err (LSB Q0.15) | wrong | float wrong "
          "| mean abs err | max abs(int - float) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        opts = dict(VARIANTS[name])
        how = opts.pop("_rewrite", None)
        obs = opts.pop("observer", "minmax")
        if obs not in cal_cache:
            cal_cache[obs] = calibrate(fm, calib_path, observer=obs, progress=False)
        q = quantize(fm, cal_cache[obs], **opts)
        if how:
            q = rewrite(q, fm, how)
        t = time.time()
        pred = tasks.predict_by_length(q.run, test)
        s = tasks.score(pred, test)
        layer = q.lstm_layers[0]
        d = layer.directions[0]
        err = gate_error(q, fm)
        table = f"standard {len(layer.table)}" if d.standard else str(d.lut_f.n + 1)
        interp = "yes" if d.standard or d.lut_f.interp else "no"
        print(f"| {name} | {layer.pre_frac} | {table} | {interp} | "
              f"{err:.2f} | {s.wrong} | {float_score.wrong} | {s.mean_abs_error:.5f} | "
              f"{float(np.abs(pred - float_pred).max()):.4f} |"
              f"  <!-- {time.time() - t:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
