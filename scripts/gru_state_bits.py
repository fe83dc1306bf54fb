"""int8 or int16 GRU state? The measurement behind docs/quantization.md §16.1.

    .venv/bin/python scripts/gru_state_bits.py [examples/models/adding_gru_T100.onnx ...]

For each trained GRU model (default: the shipped ``adding_gru_T100`` and ``japanese_vowels_gru``)
prints one markdown row per variant, scored on its test set with the task's own criterion
(tinylstm.data.tasks.score):

- ``float``: the float model (tinylstm's reference, ≡ onnxruntime);
- ``float, state int16`` / ``float, state int8``: the float model with its hidden state rounded
  after every step to the int16 grid of the integer GRU (``Q(k)``, §16) or to an int8 grid (the
  LSTM's hidden-state format: the calibrated range with the 5 % margin, §4) — the state's
  precision alone, everything else in float;
- ``integer (int16 state)``: the integer model as specified (§16);
- ``integer, state via int8``: the same integer model whose state is replaced after every step by
  its own int8 output mapped back to ``Q(k)``, i.e. an integer GRU that keeps only 256 state levels
  (the checked kernels with the update patched; measurement only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tinylstm  # noqa: E402
from tinylstm.data import tasks  # noqa: E402
from tinylstm.data.taskfiles import load_task_file  # noqa: E402
from tinylstm.ir import DenseNode, GruNode, SelectStepNode  # noqa: E402
from tinylstm.ir.reference import apply_activation  # noqa: E402
from tinylstm.quantize.calibration import calibrate  # noqa: E402
from tinylstm.quantize.params import head_range, int8_params  # noqa: E402
from tinylstm.quantize.quantizer import quantize  # noqa: E402
from tinylstm.simulate import checked, gru_checked  # noqa: E402

MODELS = ROOT / "examples" / "models"
DEFAULT = ("adding_gru_T100", "japanese_vowels_gru")


def float_runner(fm, round_state):
    """x (B, T, I) -> the model's output, its single forward GRU's state passed through
    ``round_state`` after every step (the model: GRU -> last step -> Dense)."""
    gru, sel, dense = fm.nodes[1:4]
    assert isinstance(gru, GruNode) and isinstance(sel, SelectStepNode) and isinstance(dense, DenseNode)
    d = gru.directions[0]
    H = gru.hidden_size
    f_act, g_act = d.activations

    def run(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        h = np.broadcast_to(d.initial_h.astype(np.float64), (x.shape[0], H)).copy()
        xw = x @ d.w.T + d.b
        for t in range(x.shape[1]):
            pre = xw[:, t].copy()
            pre[:, : 2 * H] += h @ d.r[: 2 * H].T
            z = apply_activation(f_act, pre[:, :H])
            r = apply_activation(f_act, pre[:, H : 2 * H])
            acc = h @ d.r[2 * H :].T + d.rb_h if gru.linear_before_reset else (r * h) @ d.r[2 * H :].T
            n = apply_activation(g_act, pre[:, 2 * H :] + (r * acc if gru.linear_before_reset else acc))
            h = round_state((1 - z) * n + z * h)
        return h @ dense.weight.T.astype(np.float64) + dense.bias

    return run


def int8_state(h16: np.ndarray, layer, d) -> np.ndarray:
    """The int16 state replaced by its own int8 output mapped back to Q(k)."""
    y = gru_checked.gru_output(layer, d, h16)
    return np.clip(np.rint((y - layer.zero_point) * layer.scale * 2.0**d.state_frac), -32768, 32767).astype(np.int64)


def rows(folder: Path, name: str, n: int | None) -> list[tuple[str, tasks.TaskScore]]:
    fm = tinylstm.load_onnx(folder / f"{name}.onnx")
    cal = calibrate(fm, folder / f"{name}_calib.npz", progress=False)
    test = load_task_file(folder / f"{name}_test.npz")
    if n is not None:
        test = test.subset(np.arange(min(n, test.n)))
    qm = quantize(fm, cal)
    layer = qm.nodes[1]
    k = layer.directions[0].state_frac
    s8, zp8 = int8_params(*head_range(*cal.range(1, "output"), 0.05))

    def q16(h):
        return np.clip(np.rint(h * 2.0**k), -32768, 32767) / 2.0**k

    def q8(h):
        return s8 * (np.clip(np.rint(h / s8) + zp8, -128, 127) - zp8)

    def score(run) -> tasks.TaskScore:
        return tasks.score(tasks.predict_by_length(run, test), test)

    out = [("float", score(fm.run)), ("float, state int16", score(float_runner(fm, q16))),
           ("float, state int8", score(float_runner(fm, q8))), ("integer (int16 state)", score(qm.run))]
    update = gru_checked.gru_update
    checked.CHECKED = True
    gru_checked.gru_update = lambda d, z, nn, h: int8_state(update(d, z, nn, h), layer, d)
    try:
        out.append(("integer, state via int8", score(qm.run)))
    finally:
        gru_checked.gru_update = update
        checked.CHECKED = False
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=list(DEFAULT), help="model names in examples/models")
    ap.add_argument("--n", type=int, default=None, help="first N test sequences only")
    ap.add_argument("--dir", type=Path, default=MODELS, help="folder of the models (default: examples/models)")
    args = ap.parse_args()
    print("| model | variant | wrong | mean abs error |")
    print("|---|---|---|---|")
    for name in args.models:
        name = Path(name).stem
        for variant, s in rows(args.dir, name, args.n):
            print(f"| {name} | {variant} | {s.wrong} / {s.n} | {s.mean_abs_error:.4f} |", flush=True)


if __name__ == "__main__":
    main()
