"""The integer model run in torch: the values of the simulator, the gradients of the float model.

:func:`run` executes a :class:`~tinylstm.qmodel.QuantizedModel` (built by the quantizer from the
current float weights) on a padded batch, following docs/quantization.md step by step with the
primitives of :mod:`.intops`. Its integer weights, multipliers and biases are tied to the float
weights by straight-through estimators: ``W_int = W / s_W`` in the backward pass (the per-row scale
``s_W`` held constant), ``wq`` in the forward pass; likewise the gate biases and the Dense heads.

Sequences of different lengths run together, padded: a row's state stops changing after its last
step and its outputs there are the zero point, so every row computes what the simulator computes
on the unpadded sequence (a reverse direction reads each row backwards from its own last step).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UnsupportedModelError
from ..qmodel import (
    QDense,
    QFeatureGather,
    QInput,
    QLstm,
    QLstmDirection,
    QLstmState,
    QSelectStep,
    QSoftmax,
    QTable,
    QuantizedModel,
)
from ..quantize.params import quantize_rows
from . import intops as io
from .fused import Direction, Step

F64 = torch.float64
#: (node name, field) -> float32 tensor (the trainable weights, :mod:`.weights`)
TorchWeights = dict[tuple[str, str], torch.Tensor]


def int_weight(wq: np.ndarray, w: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """``wq`` (R, K) per-row symmetric integers tied to the float weights ``w``: gradient of
    ``w / s_W`` with the quantizer's own per-row scale (:func:`quantize_rows`). Returns it and
    the scales (R,)."""
    qmax = int(np.abs(wq).max()) if wq.size else 0
    bits = max(int(qmax).bit_length() + 1, 2)
    again, scale = quantize_rows(w.detach().double().numpy(), bits)
    if not np.array_equal(again, wq):  # pragma: no cover - the quantizer changed its weight rule
        raise AssertionError("finetune: per-row weights differ from the quantizer's")
    sur = w.double() / torch.as_tensor(scale, dtype=F64)[:, None]
    return io.ste(torch.as_tensor(wq, dtype=F64), sur), scale


def reverse_rows(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Each row's first ``len`` steps in reverse order (the padding stays where it is)."""
    steps = x.shape[1]
    t = torch.arange(steps)[None, :]
    idx = torch.where(t < lens[:, None], lens[:, None] - 1 - t, t)
    return torch.gather(x, 1, idx[:, :, None].expand(-1, -1, x.shape[2]))


def _direction(layer: QLstm, d: QLstmDirection, w: TorchWeights, k: int, x: torch.Tensor,
               lens: torch.Tensor, table: torch.Tensor, fused: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One direction over a padded batch: x (B, T, I) int8 values -> y (B, T, H), final h, c
    (``fused``: the recurrence through :class:`.fused.Direction`, else op by op)."""
    H, P = layer.hidden_size, layer.pre_frac
    bsz, steps, _ = x.shape
    zph = float(layer.zero_point)
    wi, _ = int_weight(d.w, w[(layer.name, f"w{k}")])
    ri, _ = int_weight(d.r, w[(layer.name, f"r{k}")])
    shift = torch.as_tensor(d.shift, dtype=F64)
    b = w[(layer.name, f"b{k}")].double()
    bias = io.ste(torch.as_tensor(d.bias, dtype=F64), b * torch.exp2(P + shift))
    mx = torch.as_tensor(d.mult_x, dtype=F64)
    mh = torch.as_tensor(d.mult_h, dtype=F64)
    inv_s = torch.exp2(-shift)
    vx = (x - layer.input_zero_point) * float(1 << d.pre_x)
    tx = bias + io.mul16(vx @ wi.T, mx)  # (B, T, 4H)
    sh_g = P - layer.table_frac
    sh_c = d.cell_frac - layer.table_frac
    ph = float(1 << d.pre_h)
    a_fc, a_ig, inv_sc = float(1 << d.a_fc), float(1 << d.a_ig), 2.0**-d.s_c
    h = torch.as_tensor(d.initial_h, dtype=F64).expand(bsz, H)
    c = torch.as_tensor(d.initial_c, dtype=F64).expand(bsz, H)
    if fused:
        st = Step(H, zph, ph, inv_s, mh * 2.0**-16, ri.detach(), table, sh_g, sh_c, a_fc, a_ig, inv_sc,
                  d.h_mult, d.h_shift, layer.clip_q, layer.input_forget)
        return Direction.apply(tx, ri, h, c, lens, st)
    full = bool((lens == steps).all())
    ys = []
    for t in range(steps):
        zt = io.floor_ste((tx[:, t] + io.mul16(((h - zph) * ph) @ ri.T, mh)) * inv_s)
        if layer.clip_q is not None:
            zt = torch.clamp(zt, -layer.clip_q, layer.clip_q)
        sg = io.sigmoid_q15(zt, table, sh_g)
        gi, go = sg[:, :H], sg[:, 3 * H:]
        gf = 32768.0 - gi if layer.input_forget else sg[:, H:2 * H]
        gg = io.tanh_q15(zt[:, 2 * H:3 * H], table, sh_g)
        cn = io.sat(io.round_even_ste((gf * c * a_fc + gi * gg * a_ig) * inv_sc), -32768, 32767)
        hn = io.sat(zph + io.requant(go * io.tanh_q15(cn, table, sh_c), d.h_mult, d.h_shift), -128, 127)
        if full:
            h, c = hn, cn
            ys.append(hn)
        else:
            m = (t < lens)[:, None]
            h, c = torch.where(m, hn, h), torch.where(m, cn, c)
            ys.append(torch.where(m, hn, torch.full_like(hn, zph)))
    return torch.stack(ys, 1), h, c


def _lstm(layer: QLstm, w: TorchWeights, x: torch.Tensor, lens: torch.Tensor, fused: bool):
    if layer.table is None:
        raise UnsupportedModelError("finetune needs the standard activations", node=layer.name)
    table = torch.as_tensor(layer.table.astype(np.float64))
    ys, hs, cs = [], [], []
    for k, d in enumerate(layer.directions):
        xd = reverse_rows(x, lens) if d.reverse else x
        y, h, c = _direction(layer, d, w, k, xd, lens, table, fused)
        ys.append(reverse_rows(y, lens) if d.reverse else y)
        hs.append(h)
        cs.append(c)
    return torch.cat(ys, 2), hs, cs


def _dense(node: QDense, w: TorchWeights, x: torch.Tensor, src_scale: float, src_zp: int) -> torch.Tensor:
    wi, scale = int_weight(node.weight, w[(node.name, "weight")])
    sur = w[(node.name, "bias")].double() / torch.as_tensor(src_scale * scale, dtype=F64) - src_zp * wi.sum(1)
    eff = io.ste(torch.as_tensor(node.eff_bias, dtype=F64), sur)
    acc = eff + x @ wi.T
    r = io.requant_rows(acc, node.mult, node.shift)
    return io.sat(node.zero_point + r, node.act_min, node.act_max)


def _table(node: QTable, x: torch.Tensor) -> torch.Tensor:
    """``table[x + 128]``; gradient: the slope to the next entry."""
    t = torch.as_tensor(node.table.astype(np.float64))
    j = (x.detach() + 128).to(torch.int64)
    jn = torch.clamp(j + 1, max=255)
    return io.ste(t[j], t[j] + (t[jn] - t[j]) * (x - x.detach()))


def _softmax(node: QSoftmax, x: torch.Tensor, src_scale: float, src_zp: int) -> torch.Tensor:
    from ..simulate.checked import softmax

    exact = torch.as_tensor(softmax(node, x.detach().to(torch.int64).numpy()).astype(np.float64))
    real = (x - src_zp) * src_scale
    f = torch.log_softmax(real, -1) if node.log else torch.softmax(real, -1)
    return io.ste(exact, f / node.scale + node.zero_point)


def run(qm: QuantizedModel, w: TorchWeights, xq: torch.Tensor, lens: torch.Tensor,
        upto: int | None = None, fused: bool = True) -> list[torch.Tensor]:
    """Every node's value (canonical, int8 values in float64) for the int8 input ``xq`` (B, T, F)
    padded past ``lens`` (B,); ``upto``: stop after that node. ``fused=False`` runs the LSTM
    recurrence op by op through autograd (the reference the fused function is tested against)."""
    vals: list[torch.Tensor] = []
    finals: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    last = len(qm.nodes) - 1 if upto is None else upto
    for k, node in enumerate(qm.nodes[: last + 1]):
        src = qm.nodes[node.src] if hasattr(node, "src") and k else None
        if isinstance(node, QInput):
            v = xq
        elif isinstance(node, QLstm):
            v, hs, cs = _lstm(node, w, vals[node.src], lens, fused)
            finals[k] = (hs, cs)
        elif isinstance(node, QLstmState):
            hs, cs = finals[node.src]
            if node.which == "h":
                v = torch.cat(hs, 1)
            else:
                v = torch.cat([io.sat(node.zero_point + io.requant(c, m, s), -128, 127)
                               for c, m, s in zip(cs, node.mult, node.shift, strict=True)], 1)
        elif isinstance(node, QSelectStep):
            sv = vals[node.src]
            if node.index >= 0:
                v = sv[:, node.index]
            else:
                v = sv[torch.arange(sv.shape[0]), lens + node.index]
        elif isinstance(node, QFeatureGather):
            v = vals[node.src][..., torch.as_tensor(node.indices)]
        elif isinstance(node, QDense):
            v = _dense(node, w, vals[node.src], src.scale, src.zero_point)
        elif isinstance(node, QTable):
            v = _table(node, vals[node.src])
        elif isinstance(node, QSoftmax):
            v = _softmax(node, vals[node.src], src.scale, src.zero_point)
        else:  # pragma: no cover - closed set
            raise TypeError(type(node))
        vals.append(v)
    return vals
