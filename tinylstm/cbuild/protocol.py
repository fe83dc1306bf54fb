"""The binary protocol of the C harness (``codegen/harness/tl_harness.h``), for every runner.

Python's side of it: an int8 batch in the ONNX input layout becomes one :class:`Row` per batch
row (:func:`rows_of`), the rows become the harness's input file (:func:`encode_rows`), its output
file becomes one :class:`RowOut` per row (:func:`decode_rows`), and those become what
``QuantizedModel.run_int`` returns: the output in the ONNX output layout (:func:`assemble`) and
the LSTM states as :class:`CTrace` per layer direction (:func:`stack_traces`). The host runner
(:mod:`.host`), the QEMU runner (:mod:`.emulated`) and the timing bench all go through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..codegen.plan import Plan
from ..errors import DataError
from ..qmodel import QGru, QLstm
from .toolchain import ToolchainError

#: harness modes, by their number on the harness command line
MODES = ("run", "step", "interleave")
#: model states per model of the host harness: sequences stepped in lock-step by "interleave"
INTERLEAVE = 3


@dataclass(frozen=True)
class LayerInfo:
    """One live LSTM layer as the harness traces it."""

    node: int  # index in QuantizedModel.nodes (the trace hook's node argument)
    name: str
    hidden: int  # H
    directions: int  # 1 or 2


@dataclass(frozen=True)
class CTrace:
    """The C side's per-step LSTM state of one direction (fields named like simulate.LstmTrace)."""

    h: np.ndarray  # (B, T, H) int8
    c: np.ndarray  # (B, T, H) int16 Q(k)
    valid: np.ndarray  # (B, T) bool: step processed


@dataclass(frozen=True)
class Row:
    """One sequence for the harness."""

    x: np.ndarray  # (T, F) int8, the features of each step in the ONNX order
    len: int = -1  # valid steps for run_lens(); -1: run()


#: the states of one layer direction over one row: valid (T,) bool, h (T, H) int8, c (T, H) int16
TraceBlock = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RowOut:
    """What the harness wrote for one row."""

    y: np.ndarray  # (T or 1, OUT) int8, ONNX order of one step: run()'s, or step()'s after each step
    trace: tuple[TraceBlock, ...] | None  # per (layer, direction) in LayerInfo order


def trace_layers(plan: Plan) -> tuple[LayerInfo, ...]:
    """The live recurrent layers (LSTM and GRU) of a plan, in the order the harness writes their traces:
    per step an LSTM's h (int8) and c (int16), a GRU's output (int8) and state (int16)."""
    return tuple(LayerInfo(k, plan.nodes[k].name, plan.nodes[k].hidden_size, plan.nodes[k].num_directions)
                 for k in plan.live_of((QLstm, QGru)))


def rows_of(plan: Plan, x_int8: np.ndarray, sequence_lens: np.ndarray | None = None, *, mode: str = "run",
            who: str = "run_c") -> list[Row]:
    """An int8 batch in the ONNX input layout (and its ``sequence_lens``) -> one Row per batch row.
    ``who`` names the caller in the error messages."""
    return canonical_rows(plan, plan.model.input_view.to_canonical(_int8(x_int8, who)), sequence_lens, mode=mode,
                          who=who)


def _int8(x_int8: np.ndarray, who: str) -> np.ndarray:
    x = np.asarray(x_int8)
    if x.dtype != np.int8:
        if x.dtype.kind not in "iu" or (x.size and (int(x.min()) < -128 or int(x.max()) > 127)):
            raise DataError(f"{who} expects int8 input, got {x.dtype}")
        x = x.astype(np.int8)
    return x


def canonical_rows(plan: Plan, xc: np.ndarray, sequence_lens: np.ndarray | None = None, *, mode: str = "run",
                   who: str = "run_c") -> list[Row]:
    """A canonical int8 batch ``(B, T, F)`` (and its ``sequence_lens``) -> one Row per batch row."""
    xc = _int8(xc, who)
    x = xc
    if xc.ndim != 3 or xc.shape[2] != plan.input.features:
        raise DataError(f"input of shape {x.shape} does not give (batch, steps, {plan.input.features}) sequences")
    lens = None
    if sequence_lens is not None:
        if not plan.lens_input:
            raise DataError("this model takes no sequence_lens input")
        if mode != "run":
            raise DataError("sequence_lens needs mode='run' (run_lens)")
        lens = np.asarray(sequence_lens).reshape(-1)
        if lens.shape[0] != xc.shape[0]:
            raise DataError(f"sequence_lens has {lens.shape[0]} entries for batch {xc.shape[0]}")
    perm = plan.input.perm
    rows = []
    for b in range(xc.shape[0]):
        r = np.ascontiguousarray(xc[b], dtype=np.int8)
        if perm is not None:
            o = np.empty_like(r)
            o[:, list(perm)] = r
            r = o
        rows.append(Row(r, -1 if lens is None else int(lens[b])))
    return rows


def encode_rows(rows: Sequence[Row], order: str = "=") -> bytes:
    """The harness's input file; ``order``: byte order of the machine running it ("=", "<")."""
    i32 = np.dtype(np.int32).newbyteorder(order)
    chunks = [np.array([len(rows)], i32).tobytes()]
    for r in rows:
        chunks.append(np.array([r.x.shape[0], r.len], i32).tobytes())
        chunks.append(np.ascontiguousarray(r.x, np.int8).tobytes())
    return b"".join(chunks)


def decode_rows(data: bytes, rows: Sequence[Row], plan: Plan, *, per_step: bool,
                layers: Sequence[LayerInfo] | None = None, order: str = "=", offset: int = 0,
                what: str = "the harness") -> tuple[list[RowOut], int]:
    """The harness's output file from ``offset`` -> one RowOut per row and the offset after them.

    ``per_step``: every row wrote an output per step (step modes, or a many-to-many run()), else
    one output; ``layers``: the rows carry traces of these layers. Reading past the data raises
    ToolchainError naming ``what``."""
    fout = plan.output.features
    i16 = np.dtype(np.int16).newbyteorder(order)
    outs: list[RowOut] = []
    pos = offset
    try:
        for r in rows:
            steps = r.x.shape[0]
            n = steps * fout if per_step else fout
            y = np.frombuffer(data, np.int8, n, pos).reshape(-1, fout)
            pos += n
            tr = None
            if layers is not None:
                blocks = []
                for la in layers:
                    for _ in range(la.directions):
                        valid = np.frombuffer(data, np.uint8, steps, pos).astype(bool)
                        pos += steps
                        h = np.frombuffer(data, np.int8, steps * la.hidden, pos).reshape(steps, la.hidden)
                        pos += steps * la.hidden
                        c = np.frombuffer(data, i16, steps * la.hidden, pos).reshape(steps, la.hidden)
                        pos += 2 * steps * la.hidden
                        blocks.append((valid, h, c.astype(np.int16)))
                tr = tuple(blocks)
            outs.append(RowOut(y, tr))
    except ValueError:
        raise ToolchainError(f"{what} wrote {len(data)} bytes, fewer than expected") from None
    return outs, pos


def check_size(data: bytes, end: int, what: str = "the harness") -> None:
    """Refuse an output file longer than what was decoded."""
    if end != len(data):
        raise ToolchainError(f"{what} wrote {len(data)} bytes, expected {end}")


def assemble(plan: Plan, ys: Sequence[np.ndarray], canonical: bool = False) -> np.ndarray:
    """Per-row (T or 1, OUT) outputs in the ONNX step order -> what ``run_int`` returns (ONNX
    output layout; the canonical output, one row per sequence, with ``canonical``); a many-to-one
    model keeps each row's last output (step modes: after the last step)."""
    perm = plan.output.perm
    out = []
    for y in ys:
        if perm is not None:
            y = y[:, list(perm)]
        if not plan.output_seq:
            y = y[-1]  # run: the only row; step modes: the output after the last step
        out.append(y)
    yc = np.stack(out).astype(np.int8)
    return yc if canonical else np.asarray(plan.model.output_view.from_canonical(yc)).astype(np.int8)


def assemble_batches(plan: Plan, outs: Sequence[RowOut], counts: Sequence[int]) -> list[np.ndarray]:
    """Outputs of consecutive batches (``counts`` rows each) -> one canonical output per batch, a row
    per sequence (an empty batch gives an empty array)."""
    res, pos = [], 0
    for c in counts:
        res.append(assemble(plan, [o.y for o in outs[pos : pos + c]], canonical=True) if c
                   else np.zeros((0,), np.int8))
        pos += c
    return res


def step_outputs(plan: Plan, outs: Sequence[RowOut]) -> np.ndarray:
    """Per-row outputs of every step -> (B, T, OUTPUT_SIZE) int8, features in the ONNX output order."""
    perm = list(plan.output.perm) if plan.output.perm else None
    return np.stack([o.y if perm is None else o.y[:, perm] for o in outs]).astype(np.int8)


def stack_traces(layers: Sequence[tuple[str, int]],
                 rows: Sequence[Sequence[TraceBlock]]) -> dict[str, tuple[CTrace, ...]]:
    """Per-row harness traces (one ``(valid, h, c)`` block per layer direction, in the order of
    ``layers``: ``(name, directions)``) as one CTrace (B, T, ...) per direction, keyed by layer name."""
    result: dict[str, tuple[CTrace, ...]] = {}
    slot = 0
    for name, directions in layers:
        dirs = []
        for _ in range(directions):
            dirs.append(CTrace(h=np.stack([r[slot][1] for r in rows]), c=np.stack([r[slot][2] for r in rows]),
                               valid=np.stack([r[slot][0] for r in rows])))
            slot += 1
        result[name] = tuple(dirs)
    return result


def traces(layers: Sequence[LayerInfo], outs: Sequence[RowOut]) -> dict[str, tuple[CTrace, ...]]:
    """The traced rows' LSTM states, per live layer name, one CTrace (B, T, ...) per direction."""
    return stack_traces([(la.name, la.directions) for la in layers],
                        [o.trace for o in outs])  # type: ignore[misc]


__all__ = [
    "INTERLEAVE",
    "MODES",
    "CTrace",
    "LayerInfo",
    "Row",
    "RowOut",
    "assemble",
    "assemble_batches",
    "check_size",
    "decode_rows",
    "encode_rows",
    "rows_of",
    "stack_traces",
    "step_outputs",
    "trace_layers",
    "traces",
]
