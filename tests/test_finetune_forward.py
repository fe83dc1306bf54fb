"""The fine-tuning forward (tinylstm/finetune): the torch integer forward equals the simulator bit
for bit, the fused recurrence has the op-by-op version's gradients, and fine-tuned weights go back
into the ONNX graph they came from."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from onnx_builders import HeadSpec, LstmSpec, stacked_model  # noqa: E402

from tinylstm.errors import UnsupportedModelError  # noqa: E402
from tinylstm.finetune import forward  # noqa: E402
from tinylstm.finetune.onnx_write import updated_model  # noqa: E402
from tinylstm.finetune.weights import check_supported, read_weights  # noqa: E402
from tinylstm.onnx_import import load_onnx  # noqa: E402
from tinylstm.quantize import quantize  # noqa: E402
from tinylstm.simulate import run_canonical_int  # noqa: E402

torch.set_num_threads(1)

MODELS = {
    # bidirectional with clip, then a coupled-gate (input_forget) layer; last step -> Gemm -> Softmax
    "bidir_clip_softmax": ([LstmSpec(3, 4, "bidirectional", clip=2.5), LstmSpec(8, 5, input_forget=True)],
                           HeadSpec("last_gemm", 3, activations=("Softmax",))),
    # reverse layer, Y_h -> MatMul + Add -> LogSoftmax
    "reverse_state": ([LstmSpec(3, 6, "reverse")], HeadSpec("state_matmul", 4, activations=("LogSoftmax",))),
    # many-to-many: every step through MatMul + Add and Tanh (an int8 table)
    "per_step_tanh": ([LstmSpec(3, 5)], HeadSpec("per_step", 2, activations=("Tanh",))),
    # Gemm with transB = 0 on the first step
    "first_gemm_t0": ([LstmSpec(3, 4, scale=1.5)], HeadSpec("first_gemm", 2, trans_b=0)),
}


def _model(name: str):
    specs, head = MODELS[name]
    proto = stacked_model(specs, head=head, seed=3)
    return proto, load_onnx(proto)


def _batch(n: int, steps: int, feats: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lens = rng.integers(max(2, steps // 3), steps + 1, size=n)
    lens[0] = steps
    x = (rng.standard_normal((n, steps, feats)) * 1.5).astype(np.float32)
    x[np.arange(steps)[None, :] >= lens[:, None]] = 0.0
    return x, lens


def _torch_weights(fm, grad: bool = False):
    return {k: torch.tensor(v, requires_grad=grad) for k, v in read_weights(fm).items()}


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_torch_forward_is_the_simulator(name: str, bits: int) -> None:
    """Every int8 output of the torch forward equals the simulator's, on sequences of mixed
    lengths run as one padded batch (each row at its own length)."""
    _, fm = _model(name)
    x, lens = _batch(12, 9, fm.input_features, seed=1)
    calib = [x[i, : lens[i]] for i in range(len(x))]
    qm = quantize(fm, calib, lstm_weight_bits=bits)
    xq = qm.quantize_input(x)
    with torch.no_grad():
        got = forward.run(qm, _torch_weights(fm), torch.as_tensor(xq, dtype=torch.float64), torch.as_tensor(lens))[-1]
    got = got.numpy()
    for i in range(len(x)):
        want = run_canonical_int(qm, xq[i : i + 1, : lens[i]].astype(np.int64))[0][0]
        row = got[i, : lens[i]] if fm.many_to_many else got[i]
        assert np.array_equal(row, want), f"sequence {i} (length {lens[i]})"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fused_recurrence_has_the_same_gradients(name: str) -> None:
    _, fm = _model(name)
    x, lens = _batch(6, 8, fm.input_features, seed=2)
    qm = quantize(fm, [x[i, : lens[i]] for i in range(len(x))], lstm_weight_bits=8)
    xq = torch.as_tensor(qm.quantize_input(x), dtype=torch.float64)
    grads, outs = [], []
    for fused in (True, False):
        w = _torch_weights(fm, grad=True)
        out = forward.run(qm, w, xq, torch.as_tensor(lens), fused=fused)[-1]
        probe = torch.as_tensor(np.random.default_rng(0).standard_normal(tuple(out.shape)))
        (out * probe).sum().backward()
        outs.append(out.detach())
        grads.append({k: v.grad for k, v in w.items()})
    assert torch.equal(outs[0], outs[1])
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], rtol=1e-12, atol=1e-9), k
    assert any(float(g.abs().max()) > 0 for k, g in grads[0].items() if "lstm" in k[0]), "no gradient reached the LSTM"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_new_weights_go_back_into_the_graph(name: str) -> None:
    """The written graph imports to exactly the given weights (updated_model checks it too)."""
    proto, fm = _model(name)
    rng = np.random.default_rng(4)
    w = {k: (v + rng.standard_normal(v.shape).astype(np.float32) * 0.01).astype(np.float32)
         for k, v in read_weights(fm).items()}
    again = read_weights(load_onnx(updated_model(proto, fm, w)))
    assert again.keys() == w.keys()
    for k in w:
        assert np.array_equal(again[k], w[k]), k
    assert [n.op_type for n in updated_model(proto, fm, w).graph.node] == [n.op_type for n in proto.graph.node]


def test_unsupported_layers_are_refused() -> None:
    fm = load_onnx(stacked_model([LstmSpec(3, 4, peepholes=True)], head=HeadSpec("last_gemm", 2)))
    with pytest.raises(UnsupportedModelError, match="peepholes"):
        check_supported(fm)
    fm = load_onnx(stacked_model([LstmSpec(3, 4, activations=("HardSigmoid", "Tanh", "Tanh"))],
                                 head=HeadSpec("last_gemm", 2)))
    with pytest.raises(UnsupportedModelError, match="default activations"):
        check_supported(fm)


def test_scaled_gemm_is_refused_not_written_wrong() -> None:
    """Gemm alpha != 1 folds into the imported weight: finetune cannot write it back exactly."""
    proto = stacked_model([LstmSpec(3, 4)], head=HeadSpec("last_gemm", 2, alpha=0.5))
    fm = load_onnx(proto)
    w = read_weights(fm)
    w[("head", "weight")] = w[("head", "weight")] * 1.5
    with pytest.raises(UnsupportedModelError, match="cannot write the weight"):
        updated_model(proto, fm, w)


def test_missing_bias_tensors_are_added() -> None:
    """An LSTM without B and a Gemm without C get bias initializers when their biases change."""
    proto = stacked_model([LstmSpec(3, 4, bias=False)], head=HeadSpec("last_gemm", 2), seed=1)
    for n in proto.graph.node:
        if n.op_type == "Gemm":
            del n.input[2]
    fm = load_onnx(proto)
    w = {k: v + np.float32(0.01) for k, v in read_weights(fm).items()}
    out = updated_model(proto, fm, w)
    again = read_weights(load_onnx(out))
    assert all(np.array_equal(again[k], w[k]) for k in w)
    assert [len(n.input) for n in out.graph.node if n.op_type in ("LSTM", "Gemm")] == [4, 3]
