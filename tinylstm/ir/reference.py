"""Float reference run of the IR in numpy (float64 inside, float32 out).

``run_float`` must match onnxruntime within 1e-5 on every model the importer accepts.
``observe`` lets calibration see every internal tensor without a second implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from .nodes import (
    Activation,
    ActivationNode,
    DenseNode,
    FeatureGatherNode,
    GruDirection,
    GruNode,
    InputNode,
    LstmDirection,
    LstmNode,
    LstmStateNode,
    SelectStepNode,
)
from .view import SEQ

if TYPE_CHECKING:
    from .model import FloatModel

#: observe(node_index, tensor_name, array). Tensor names: "input", "output" (any node);
#: for LSTM nodes per step and direction d: "pre{d}" (B, 4H) gate pre-activations after
#: clip, "gates{d}" (B, 4H) after activation, "c{d}" (B, H), "h{d}" (B, H); for GRU nodes
#: "pre{d}" (B, 3H) z, r, h pre-activations after clip, "gates{d}" (B, 3H) after activation,
#: "rh{d}" (B, H) the candidate's recurrent matrix product (``R_h h + rb_h`` when
#: linear_before_reset, else ``R_h (r * h)``),
#: "h{d}" (B, H); rows whose step is past their sequence length are not reported.
Observer = Callable[[int, str, np.ndarray], None]


def apply_activation(act: Activation, x: np.ndarray) -> np.ndarray:
    """ONNX's definition of each activation, on float64."""
    n, a, b = act.name, act.alpha, act.beta
    if n == "Sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * x))
    if n == "Tanh":
        return np.tanh(x)
    if n == "Relu":
        return np.maximum(x, 0.0)
    if n == "Affine":
        return a * x + b
    if n == "LeakyRelu":
        return np.where(x >= 0, x, a * x)
    if n == "ThresholdedRelu":
        return np.where(x > a, x, 0.0)
    if n == "ScaledTanh":
        return a * np.tanh(b * x)
    if n == "HardSigmoid":
        return np.clip(a * x + b, 0.0, 1.0)
    if n == "Elu":
        return np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0.0)))
    if n == "Softsign":
        return x / (1.0 + np.abs(x))
    if n == "Softplus":
        return np.logaddexp(0.0, x)
    if n == "Softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if n == "LogSoftmax":
        z = x - x.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    raise ValueError(f"unknown activation {n}")


def _per_batch(a: np.ndarray, batch: int, what: str) -> np.ndarray:
    """(N0, H) -> (batch, H): N0 == 1 broadcasts, otherwise N0 must equal the batch."""
    if a.shape[0] == 1:
        return np.broadcast_to(a, (batch,) + a.shape[1:]).astype(np.float64)
    if a.shape[0] != batch:
        raise DataError(f"{what} is fixed for batch {a.shape[0]}; got batch {batch}")
    return a.astype(np.float64)


def lstm_direction(
    node: LstmNode,
    d: int,
    x: np.ndarray,
    lens: np.ndarray,
    observe: Callable[[str, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One direction over a whole batch. x: (B, T, I) float64, lens: (B,) int.

    Returns y (B, T, H) (zero past each length), h_last (B, H), c_last (B, H).
    """
    dr: LstmDirection = node.directions[d]
    bsz, steps, _ = x.shape
    hsz = node.hidden_size
    h = _per_batch(dr.initial_h, bsz, f"LSTM '{node.name}' initial_h").copy()
    c = _per_batch(dr.initial_c, bsz, f"LSTM '{node.name}' initial_c").copy()
    w = dr.w.astype(np.float64)
    r = dr.r.astype(np.float64)
    bias = dr.b.astype(np.float64)
    p = dr.p.astype(np.float64) if dr.p is not None else None
    f_act, g_act, h_act = dr.activations
    y = np.zeros((bsz, steps, hsz))
    xw = x @ w.T  # (B, T, 4H)
    for s in range(steps):
        active = s < lens  # (B,)
        if not active.any():
            continue
        if dr.reverse:
            # reverse walks each sequence from its own last valid step down to 0
            t_idx = np.where(active, lens - 1 - s, 0)
        else:
            t_idx = np.full(bsz, s)
        rows = np.arange(bsz)
        pre = xw[rows, t_idx] + h @ r.T + bias
        if p is not None:
            pre[:, 0:hsz] += p[0] * c
            pre[:, hsz : 2 * hsz] += p[1] * c
        if node.clip is not None:
            pre[:, : 3 * hsz] = np.clip(pre[:, : 3 * hsz], -node.clip, node.clip)
        gi = apply_activation(f_act, pre[:, 0:hsz])
        if node.input_forget:
            gf = 1.0 - gi
        else:
            gf = apply_activation(f_act, pre[:, hsz : 2 * hsz])
        gg = apply_activation(g_act, pre[:, 2 * hsz : 3 * hsz])
        c_new = gf * c + gi * gg
        if p is not None:
            # the output gate's peephole sees the *new* cell
            pre[:, 3 * hsz :] += p[2] * c_new
        if node.clip is not None:
            pre[:, 3 * hsz :] = np.clip(pre[:, 3 * hsz :], -node.clip, node.clip)
        pre_o = pre[:, 3 * hsz :]
        go = apply_activation(f_act, pre_o)
        h_new = go * apply_activation(h_act, c_new)
        m = active[:, None]
        c = np.where(m, c_new, c)
        h = np.where(m, h_new, h)
        y[rows[active], t_idx[active]] = h_new[active]
        if observe is not None:
            gates = np.concatenate([gi, gf, gg, go], axis=1)
            observe(f"pre{d}", pre[active])
            observe(f"gates{d}", gates[active])
            observe(f"c{d}", c_new[active])
            observe(f"h{d}", h_new[active])
    # onnxruntime: a row of length 0 reports zero final states, not its initial state
    empty = (lens == 0)[:, None]
    if empty.any():
        h = np.where(empty, 0.0, h)
        c = np.where(empty, 0.0, c)
    return y, h, c


def lstm_forward(
    node: LstmNode,
    x: np.ndarray,
    lens: np.ndarray,
    observe: Callable[[str, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All directions: y (B, T, D*H), h_last (B, D*H), c_last (B, D*H)."""
    ys, hs, cs = [], [], []
    for d in range(node.num_directions):
        y, h, c = lstm_direction(node, d, x, lens, observe)
        ys.append(y)
        hs.append(h)
        cs.append(c)
    return np.concatenate(ys, axis=2), np.concatenate(hs, axis=1), np.concatenate(cs, axis=1)


def gru_direction(
    node: GruNode,
    d: int,
    x: np.ndarray,
    lens: np.ndarray,
    observe: Callable[[str, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One GRU direction over a whole batch (equations in :class:`~.nodes.GruDirection`).
    x: (B, T, I) float64, lens: (B,) int. Returns y (B, T, H) (zero past each length) and
    h_last (B, H)."""
    dr: GruDirection = node.directions[d]
    bsz, steps, _ = x.shape
    hsz = node.hidden_size
    h = _per_batch(dr.initial_h, bsz, f"GRU '{node.name}' initial_h").copy()
    r_zr = dr.r[: 2 * hsz].astype(np.float64)  # (2H, H)
    r_h = dr.r[2 * hsz :].astype(np.float64)  # (H, H)
    rb_h = dr.rb_h.astype(np.float64)
    f_act, g_act = dr.activations
    y = np.zeros((bsz, steps, hsz))
    xw = x @ dr.w.astype(np.float64).T + dr.b.astype(np.float64)  # (B, T, 3H), biases folded in
    rows = np.arange(bsz)
    for s in range(steps):
        active = s < lens  # (B,)
        if not active.any():
            continue
        t_idx = np.where(active, lens - 1 - s, 0) if dr.reverse else np.full(bsz, s)
        pre = xw[rows, t_idx].copy()
        pre[:, : 2 * hsz] += h @ r_zr.T
        if node.clip is not None:
            pre[:, : 2 * hsz] = np.clip(pre[:, : 2 * hsz], -node.clip, node.clip)
        gz = apply_activation(f_act, pre[:, :hsz])
        gr = apply_activation(f_act, pre[:, hsz : 2 * hsz])
        # the candidate's recurrent matrix product, taken before or after the reset gate
        acc = h @ r_h.T + rb_h if node.linear_before_reset else (gr * h) @ r_h.T
        pre[:, 2 * hsz :] += gr * acc if node.linear_before_reset else acc
        if node.clip is not None:
            pre[:, 2 * hsz :] = np.clip(pre[:, 2 * hsz :], -node.clip, node.clip)
        gn = apply_activation(g_act, pre[:, 2 * hsz :])
        h_new = (1.0 - gz) * gn + gz * h
        h = np.where(active[:, None], h_new, h)
        y[rows[active], t_idx[active]] = h_new[active]
        if observe is not None:
            observe(f"pre{d}", pre[active])
            observe(f"gates{d}", np.concatenate([gz, gr, gn], axis=1)[active])
            observe(f"rh{d}", acc[active])
            observe(f"h{d}", h_new[active])
    # onnxruntime: a row of length 0 reports a zero final state, not its initial state
    return y, np.where((lens == 0)[:, None], 0.0, h)


def gru_forward(
    node: GruNode,
    x: np.ndarray,
    lens: np.ndarray,
    observe: Callable[[str, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All directions: y (B, T, D*H), h_last (B, D*H)."""
    outs = [gru_direction(node, d, x, lens, observe) for d in range(node.num_directions)]
    return np.concatenate([o[0] for o in outs], axis=2), np.concatenate([o[1] for o in outs], axis=1)


def resolve_lengths(
    node: LstmNode | GruNode, batch: int, steps: int, sequence_lens: np.ndarray | None
) -> np.ndarray:
    """Per-row valid lengths for one LSTM or GRU node, checked against the sequence length."""
    if node.sequence_lens_is_input:
        if sequence_lens is None:
            op = "GRU" if isinstance(node, GruNode) else "LSTM"
            raise DataError(f"{op} '{node.name}' needs sequence_lens (a graph input)")
        lens = np.asarray(sequence_lens)
    elif node.sequence_lens is not None:
        lens = node.sequence_lens
        if lens.shape[0] == 1 and batch != 1:
            lens = np.broadcast_to(lens, (batch,))
    else:
        return np.full(batch, steps, dtype=np.int64)
    lens = lens.astype(np.int64).reshape(-1)
    if lens.shape[0] != batch:
        raise DataError(f"sequence_lens has {lens.shape[0]} entries for batch {batch}")
    if (lens < 0).any() or (lens > steps).any():
        raise DataError(f"sequence_lens must lie in [0, {steps}], got {lens.tolist()}")
    return lens


def run_canonical(
    model: FloatModel,
    xc: np.ndarray,
    sequence_lens: np.ndarray | None = None,
    observe: Observer | None = None,
) -> np.ndarray:
    """Run on a canonical input ``(B, T, F)``; returns the canonical output value."""
    vals: list[np.ndarray] = []
    finals: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    batch, steps = xc.shape[0], xc.shape[1]
    for k, node in enumerate(model.nodes):
        if isinstance(node, InputNode):
            v = xc.astype(np.float64)
        elif isinstance(node, (LstmNode, GruNode)):
            lens = resolve_lengths(node, batch, steps, sequence_lens)
            cb = None
            if observe is not None:

                def cb(name: str, a: np.ndarray, _k: int = k) -> None:
                    observe(_k, name, a)

            if isinstance(node, GruNode):
                v, hl = gru_forward(node, vals[node.src], lens, cb)
                finals[k] = (hl, None)
            else:
                v, hl, cl = lstm_forward(node, vals[node.src], lens, cb)
                finals[k] = (hl, cl)
        elif isinstance(node, LstmStateNode):
            hl, cl = finals[node.src]
            v = hl if node.which == "h" else cl
            if v is None:  # pragma: no cover - the importer gives a GRU no Y_c
                raise TypeError(f"node '{node.name}': a GRU has no cell state")
        elif isinstance(node, SelectStepNode):
            v = vals[node.src][:, _step(node, steps), :]
        elif isinstance(node, FeatureGatherNode):
            v = vals[node.src][..., node.indices]
        elif isinstance(node, DenseNode):
            v = vals[node.src] @ node.weight.astype(np.float64).T + node.bias.astype(np.float64)
        elif isinstance(node, ActivationNode):
            v = apply_activation(node.activation, vals[node.src])
        else:  # pragma: no cover - the IR is closed
            raise TypeError(type(node))
        if observe is not None:
            observe(k, "output", v)
        vals.append(v)
    return vals[-1]


def _step(node: SelectStepNode, steps: int) -> int:
    """The step a SelectStep node picks from a sequence of ``steps`` steps."""
    if not -steps <= node.index < steps:
        raise DataError(
            f"node '{node.name}' picks time step {node.index} but the input has {steps} step(s)"
        )
    return node.index


def check_input(model: FloatModel, x: np.ndarray) -> np.ndarray:
    """Validate an ONNX-shaped input and return it as canonical float64."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise DataError(f"input must be numeric, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise DataError("input contains NaN or Inf")
    try:
        xc = model.input_view.to_canonical(x)
    except ValueError as e:
        want = model.input_view.onnx_shape(1, 1)
        raise DataError(
            f"input '{model.input_name}' has shape {tuple(x.shape)}; expected rank "
            f"{len(want)} laid out as {describe_view(model.input_view)} ({e})"
        ) from None
    if xc.shape[1] == 0:
        raise DataError("input has no time steps")
    return xc.astype(np.float64)


def describe_view(view) -> str:
    parts = []
    for g in view.dims:
        if not g:
            parts.append("1")
            continue
        names = []
        for i in g:
            a = view.atoms[i]
            if a.label in ("B", "T"):
                names.append(("batch" if a.label == "B" else "time") + (f"={a.size}" if a.size else ""))
            else:
                names.append(f"{a.label}={a.size}")
        parts.append("*".join(names))
    return "[" + ", ".join(parts) + "]"


def run_float(
    model: FloatModel,
    x: np.ndarray,
    sequence_lens: np.ndarray | None = None,
    observe: Observer | None = None,
) -> np.ndarray:
    """ONNX-shaped input -> ONNX-shaped first output, float32."""
    xc = check_input(model, x)
    out = run_canonical(model, xc, sequence_lens, observe)
    if out.ndim == 3 or model.output_view.kind == SEQ:
        pass
    return model.output_view.from_canonical(out).astype(np.float32)
