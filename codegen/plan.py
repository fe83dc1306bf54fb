"""What the generated C must do for one integer model, as a whole: a pure analysis, no C text.

The plan decides

- which nodes are live (reach the output),
- the schedule of ``run()``: *streaming* (step-major, no sequence buffers) when every recurrent
  layer (LSTM or GRU; "LSTM" below means either) runs forward, else *buffered* (layer-major, each
  LSTM output a ``MAX_STEPS x features`` buffer in
  the state's workspace, placed by liveness),
- whether ``step()`` exists (streaming and every selected step is the last one),
- how the ONNX input / output tensors map to canonical features at batch 1.

These are the C back end's own (the simulator runs whole batches in numpy, with no schedule or
workspace); how each LSTM and GRU layer is stored and stepped is :mod:`tinylstm.lowering`'s. Models the
C back end cannot run raise :class:`UnsupportedModelError` naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError, UnsupportedModelError
from ..ir import SEQ, View
from ..qmodel import (
    QDense,
    QFeatureGather,
    QGru,
    QInput,
    QLstm,
    QLstmState,
    QNode,
    QSelectStep,
    QSoftmax,
    QTable,
    QuantizedModel,
)

#: run() buffer bound used when generate_c gets no max_steps and the input has no static time axis.
DEFAULT_MAX_STEPS = 256
#: the recurrent layers (the plan treats both alike: a state per direction, an int8 output per step)
RECURRENT = (QLstm, QGru)


@dataclass(frozen=True)
class IoLayout:
    """An ONNX tensor at batch 1: one time step is ``features`` contiguous int8 values, and
    canonical feature ``f`` sits at position ``perm[f]`` of that step (identity: None)."""

    features: int
    perm: tuple[int, ...] | None


@dataclass(frozen=True)
class Plan:
    model: QuantizedModel
    live: tuple[int, ...]  # live node indices, ascending
    streaming: bool  # run() is step-major (every LSTM forward)
    has_step: bool  # step() is generated
    lens_input: bool  # a sequence_lens graph input exists: run_lens() is generated
    input: IoLayout
    output: IoLayout
    output_seq: bool  # many-to-many: one output vector per time step
    max_steps: int | None  # bound of run() (buffered models only)
    buffers: tuple[tuple[int, int], ...]  # buffered: (LSTM node index, offset in features)
    ws_width: int  # buffered: workspace features per time step

    @property
    def nodes(self) -> tuple[QNode, ...]:
        return self.model.nodes

    @property
    def out_index(self) -> int:
        return len(self.model.nodes) - 1

    def buffer_of(self, k: int) -> int | None:
        for node, off in self.buffers:
            if node == k:
                return off
        return None

    def live_of(self, cls: type | tuple[type, ...]) -> list[int]:
        return [k for k in self.live if isinstance(self.nodes[k], cls)]

    def lens_kind(self, k: int) -> str:
        """Where LSTM k's valid length comes from: ``input`` (run_lens), ``const`` or ``none``."""
        n = self.nodes[k]
        assert isinstance(n, RECURRENT)
        if n.sequence_lens_is_input:
            return "input"
        if n.sequence_lens is not None:
            return "const"
        return "none"

    def state_alias(self, k: int) -> int | None:
        """Node k when it is Y_h of one forward LSTM direction without lengths: that LSTM's index (its
        value is the LSTM's h state itself, read in place: no buffer, no copy); else None."""
        n = self.nodes[k]
        if isinstance(n, QLstmState) and n.which == "h":
            src = self.nodes[n.src]
            if isinstance(src, QLstm) and src.num_directions == 1 and self.lens_kind(n.src) == "none":
                return n.src
        return None

    def const_len(self, k: int) -> int:
        """LSTM k's constant sequence length (``lens_kind(k) == "const"``)."""
        return int(np.asarray(self.nodes[k].sequence_lens).reshape(-1)[0])

    def check_steps(self, longest: int) -> None:
        """Refuse a sequence longer than ``run()``'s bound (``<P>_MAX_STEPS``) before running C."""
        if self.max_steps is not None and longest > self.max_steps:
            raise DataError(f"a sequence of {longest} steps exceeds the build's MAX_STEPS {self.max_steps} "
                            "(the model has a reverse or bidirectional LSTM); build with max_steps= at least that")


def _layout(view: View, kind: str, what: str) -> IoLayout:
    """Positions of canonical features inside one step of the ONNX tensor at batch 1."""
    f = view.features
    if kind == SEQ:
        spots = {}
        for steps in (2, 3):
            canon = np.arange(steps * f, dtype=np.int64).reshape(1, steps, f)
            flat = view.from_canonical(canon).reshape(-1)
            pos = np.empty(steps * f, dtype=np.int64)
            pos[flat] = np.arange(flat.size)
            spots[steps] = pos.reshape(steps, f)
        ok = all(np.array_equal(p - np.arange(p.shape[0])[:, None] * f, np.broadcast_to(p[0], p.shape))
                 for p in spots.values())
        perm = spots[2][0]
        if not ok or sorted(perm.tolist()) != list(range(f)):
            raise UnsupportedModelError(
                f"the {what} layout {view.dims} interleaves time with features; generated C needs each "
                "time step's features contiguous at batch 1 (e.g. [T, B, F] or [B, T, F])",
                field=what,
            )
    else:
        canon = np.arange(f, dtype=np.int64).reshape(1, f)
        flat = view.from_canonical(canon).reshape(-1)
        perm = np.empty(f, dtype=np.int64)
        perm[flat] = np.arange(f)
    p = tuple(int(v) for v in perm)
    return IoLayout(f, None if p == tuple(range(f)) else p)


def _live(nodes: tuple[QNode, ...]) -> tuple[int, ...]:
    live = {len(nodes) - 1}
    for k in range(len(nodes) - 1, -1, -1):
        if k in live:
            src = getattr(nodes[k], "src", None)
            if src is not None and not isinstance(nodes[k], QInput):
                live.add(int(src))
    return tuple(sorted(live))


def _check(model: QuantizedModel, live: tuple[int, ...]) -> None:
    nodes = model.nodes
    if not isinstance(nodes[0], QInput) or nodes[0].kind != SEQ:
        raise UnsupportedModelError("the model input must be a sequence (node 0 a QInput)", field="input")
    for k in live:
        n = nodes[k]
        if not isinstance(n, (QInput, QLstm, QGru, QLstmState, QSelectStep, QFeatureGather, QDense, QTable, QSoftmax)):
            raise UnsupportedModelError(f"node kind {type(n).__name__} has no C kernel", node=getattr(n, "name", None))
        if isinstance(n, RECURRENT):
            if n.sequence_lens is not None and not n.sequence_lens_is_input and np.asarray(n.sequence_lens).size != 1:
                raise UnsupportedModelError(
                    f"constant sequence_lens for a fixed batch of "
                    f"{np.asarray(n.sequence_lens).size} rows; the generated C runs one sequence at a time "
                    "(batch 1)", node=n.name, field="sequence_lens")
            for d in n.directions:
                states = (("initial_h", d.initial_h),) + ((("initial_c", d.initial_c),) if isinstance(n, QLstm) else ())
                for what, a in states:
                    if a.shape[0] != 1:
                        raise UnsupportedModelError(
                            f"{what} is fixed per batch row ({a.shape[0]} rows); the generated "
                            "C runs one sequence at a time (batch 1) and needs one initial state", node=n.name,
                            field=what)
                for lut_name in ("lut_f", "lut_g", "lut_h") if isinstance(n, QLstm) else ("lut_f", "lut_g"):
                    lut = getattr(d, lut_name)
                    if lut is None:  # the standard table (spec sec. 8.1)
                        continue
                    if not lut.interp:
                        raise UnsupportedModelError(
                            f"{lut_name} was built with lut_interp=False, a simulator-only "
                            "ablation; quantize with lut_interp=True for C", node=n.name, field=lut_name)
                    if lut.n << lut.shift >= 2**31 or lut.n < 2 or lut.n & (lut.n - 1):
                        raise UnsupportedModelError(
                            f"{lut_name} grid ({lut.n} segments, shift {lut.shift}) is outside "
                            "what tl_lut_eval supports", node=n.name, field=lut_name)
        if isinstance(n, QDense) and n.weight.size and (int(n.weight.min()) < -128 or int(n.weight.max()) > 127):
            raise UnsupportedModelError("dense weights wider than 8 bits have no C kernel (tl_dense_s8)", node=n.name)
        if isinstance(n, QSoftmax) and n.features >= 65536:
            raise UnsupportedModelError(f"Softmax over {n.features} features (max 65535)", node=n.name)


def _allocate(
    nodes: tuple[QNode, ...], live: tuple[int, ...], output_seq: bool
) -> tuple[tuple[tuple[int, int], ...], int]:
    """Workspace offsets (in features per step) of the LSTM outputs a buffered run reads as
    sequences, first fit over their live intervals [producer, last reader]."""
    end = len(nodes)  # the output stage runs after every node

    def base_of(k: int) -> int | None:
        """The LSTM whose sequence a SEQ node's per-step value is computed from (None: input)."""
        while True:
            n = nodes[k]
            if isinstance(n, RECURRENT):
                return k
            if isinstance(n, QInput):
                return None
            k = n.src

    last_use: dict[int, int] = {}
    for k in live:
        n = nodes[k]
        if isinstance(n, RECURRENT):
            b = base_of(n.src)
            if b is not None:
                last_use[b] = max(last_use.get(b, k), k)
        elif isinstance(n, QSelectStep):
            b = base_of(n.src)
            if b is not None:
                last_use[b] = end
    if output_seq:
        b = base_of(len(nodes) - 1)
        if b is not None:
            last_use[b] = end
    placed: list[tuple[int, int, int, int]] = []  # (start, end, offset, width)
    out: list[tuple[int, int]] = []
    width_total = 0
    for k in sorted(last_use):
        w = nodes[k].features
        busy = sorted((o, o + wd) for s, e, o, wd in placed if not (e < k or s > last_use[k]))
        off = 0
        for a, b in busy:
            if off + w <= a:
                break
            off = max(off, b)
        placed.append((k, last_use[k], off, w))
        out.append((k, off))
        width_total = max(width_total, off + w)
    return tuple(out), width_total


def default_max_steps(model: QuantizedModel) -> int:
    """The ``run()`` bound of a buffered model when none is given: the static length its graph
    requires, else the longest calibration sequence, else :data:`DEFAULT_MAX_STEPS`."""
    t_atoms = [a.size for a in model.input_view.atoms if a.label == "T"]
    if t_atoms and t_atoms[0]:
        return int(t_atoms[0])
    return model.longest_calibration or DEFAULT_MAX_STEPS


def make_plan(model: QuantizedModel, max_steps: int | None = None) -> Plan:
    nodes = model.nodes
    live = _live(nodes)
    _check(model, live)
    lstms = [nodes[k] for k in live if isinstance(nodes[k], RECURRENT)]
    streaming = all(not d.reverse for n in lstms for d in n.directions)
    selects = [nodes[k] for k in live if isinstance(nodes[k], QSelectStep)]
    has_step = streaming and all(s.index == -1 for s in selects)
    lens_input = any(n.sequence_lens_is_input for n in lstms)
    output_seq = nodes[-1].kind == SEQ
    inp = _layout(model.input_view, SEQ, "input")
    out = _layout(model.output_view, nodes[-1].kind, "output")
    if inp.features != nodes[0].features or out.features != nodes[-1].features:
        raise UnsupportedModelError("input/output views disagree with the model's feature counts")
    if streaming:
        buffers: tuple[tuple[int, int], ...] = ()
        width = 0
        bound = None
    else:
        buffers, width = _allocate(nodes, live, output_seq)
        if max_steps is None:
            max_steps = default_max_steps(model)
        bound = int(max_steps)
        if bound < 1 or bound > 2**20:
            raise UnsupportedModelError(f"max_steps {bound} must lie in [1, {2**20}]", field="max_steps")
    return Plan(model, live, streaming, has_step, lens_input, inp, out, output_seq, bound, buffers, width)
