"""onnxruntime as the float oracle, on canonical batches, whatever static shape the file declares.

Most exported files fix the batch (and often the sequence length) of their input, and onnxruntime
refuses any other shape. The float IR does not depend on them (:mod:`.onnx_import.static_axes`),
so data sets of any size and length reach the oracle here:

- a static batch is fed in chunks of that many sequences, the last chunk filled up by repeating
  its first rows (their outputs are dropped); a model imported with ``batch_row=K`` gets each
  sequence alone, in row K;
- a sequence length other than the static one is tried on a copy of the file whose input
  declares dynamic axes; when the graph itself holds the length (a baked ``Reshape``),
  onnxruntime cannot run it, and tinylstm's float reference (equal to onnxruntime at the static
  length) stands in for those sequences, with a note saying so;
- a ``model.double()`` export computes in float64, for which onnxruntime has no LSTM kernel: the
  oracle runs a float32 copy of the graph instead, with a note saying so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..errors import ModelFormatError, one_line
from ..ir import FloatModel
from ..ir.reference import run_canonical

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


@dataclass
class Oracle:
    """Runs an ONNX file with onnxruntime on canonical ``(n, T, F)`` batches."""

    path: str
    model: FloatModel
    batch_row: int | None = None
    notes: list[str] = field(default_factory=list)
    _sessions: dict[bool, object] = field(default_factory=dict, repr=False)
    _refused: set[int] = field(default_factory=set, repr=False)

    def run(self, xc: np.ndarray) -> np.ndarray:
        """Canonical input ``(n, T, F)`` -> the canonical output (float32), one row per sequence."""
        steps = xc.shape[1]
        fixed_t = self.model.export_time
        if fixed_t is None or steps == fixed_t:
            try:
                return self._chunks(xc, relaxed=False)
            except _OrtRunError as e:
                raise ModelFormatError(f"onnxruntime cannot run '{self.path}' on {xc.shape[0]} "
                                       f"sequence(s) of {steps} steps: {e}") from None
        if steps not in self._refused:
            try:
                return self._chunks(xc, relaxed=True)
            except _OrtRunError as e:
                self._refused.add(steps)
                self.notes.append(
                    f"onnxruntime cannot run '{os.path.basename(self.path)}' at {steps} steps (the "
                    f"graph holds its export length {fixed_t}: {e}); tinylstm's float reference "
                    f"stands in for the sequences of that length"
                )
        return run_canonical(self.model, xc.astype(np.float64)).astype(np.float32)

    # ---------------------------------------------------------------------------------------
    def _session(self, relaxed: bool):
        if relaxed not in self._sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            source: str | bytes = self.path
            if relaxed or self._float64():
                model = onnx.load(self.path)  # external data loaded: the copy stands alone
                if self._float64():
                    _to_float32(model)
                if relaxed:
                    _make_input_dynamic(model, self.model.input_name)
                source = model.SerializeToString()
            try:
                self._sessions[relaxed] = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
            except Exception as e:
                if relaxed:
                    raise _OrtRunError(one_line(e)) from None
                raise ModelFormatError(f"onnxruntime cannot load '{self.path}': {one_line(e)}") from None
        return self._sessions[relaxed]

    def _float64(self) -> bool:
        if not hasattr(self, "_is_f64"):
            model = onnx.load(self.path, load_external_data=False)
            x = next(v for v in model.graph.input if v.name == self.model.input_name)
            self._is_f64 = x.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
            if self._is_f64:
                self.notes.append(
                    f"'{os.path.basename(self.path)}' computes in float64, for which onnxruntime has no "
                    "LSTM kernel: the float oracle is onnxruntime on a float32 copy of the graph"
                )
        return self._is_f64

    def _chunks(self, xc: np.ndarray, relaxed: bool) -> np.ndarray:
        sess = self._session(relaxed)
        inp = sess.get_inputs()[0]
        dtype = _NUMPY_TYPES.get(inp.type, np.float32)
        n = xc.shape[0]
        rows = self.model.export_batch
        outs = []
        if self.batch_row is not None:
            for i in range(n):  # each sequence alone, in the row whose constants the model kept
                chunk = np.repeat(xc[i : i + 1], rows, axis=0)
                outs.append(self._run(sess, inp.name, chunk, dtype)[self.batch_row : self.batch_row + 1])
            return np.concatenate(outs, axis=0)
        step = rows or n
        for start in range(0, n, step):
            part = xc[start : start + step]
            k = part.shape[0]
            if rows is not None and k < rows:
                part = np.take(part, np.arange(rows) % k, axis=0)
            outs.append(self._run(sess, inp.name, part, dtype)[:k])
        return np.concatenate(outs, axis=0)

    def _run(self, sess, name: str, xc: np.ndarray, dtype) -> np.ndarray:
        feeds = {name: self.model.input_view.from_canonical(xc).astype(dtype)}
        if self.model.sequence_lens_input is not None:
            feeds[self.model.sequence_lens_input] = np.full(xc.shape[0], xc.shape[1], dtype=np.int32)
        try:
            y = sess.run(None, feeds)[0]
        except Exception as e:
            raise _OrtRunError(one_line(e)) from None
        return self.model.output_view.to_canonical(np.asarray(y)).astype(np.float32)


class _OrtRunError(Exception):
    """onnxruntime refused to run a shape (internal: the oracle falls back or reports)."""


def _make_input_dynamic(model: onnx.ModelProto, input_name: str) -> None:
    """Every axis of ``input_name`` but the last (features) dynamic; declared output and
    intermediate shapes dropped (they would hold the static sizes)."""
    for v in model.graph.input:
        if v.name == input_name:
            for k, d in enumerate(v.type.tensor_type.shape.dim[:-1]):
                d.Clear()
                d.dim_param = f"tinylstm_axis{k}"
    for v in model.graph.output:
        v.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]


def _to_float32(model: onnx.ModelProto) -> None:
    """float64 -> float32 everywhere in the main graph: initializers, constants, casts, types."""
    from onnx import numpy_helper

    f64, f32 = onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT

    def narrowed(t: onnx.TensorProto) -> onnx.TensorProto:
        if t.data_type != f64:
            return t
        return numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name)

    g = model.graph
    for k, t in enumerate(g.initializer):
        g.initializer[k].CopyFrom(narrowed(t))
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                a.t.CopyFrom(narrowed(a.t))
            elif n.op_type == "Cast" and a.name == "to" and a.i == f64:
                a.i = f32
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.type.tensor_type.elem_type == f64:
            v.type.tensor_type.elem_type = f32
