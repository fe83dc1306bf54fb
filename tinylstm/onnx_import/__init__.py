"""ONNX -> float IR. Entry point: :func:`load_onnx`."""

from __future__ import annotations

import os

import numpy as np
import onnx

from ..errors import ModelFormatError, UnsupportedModelError
from ..ir import RECURRENT, FloatModel, LstmStateNode, Node, View
from .attrs import INT, attr
from .checks import check_graph
from .interpret import Interpreter
from .loader import initializer_arrays, opset_of, read_model
from .op_views import BakedTimeError
from .static_axes import relax_static_axes
from .symbolic import Sym, place_floating
from .values import ExtraInput, SymStack

__all__ = ["load_onnx"]

_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)


def load_onnx(
    source: str | os.PathLike | onnx.ModelProto | bytes,
    *,
    check_weights: bool = True,
    batch_row: int | None = None,
) -> FloatModel:
    """Import an ONNX model holding LSTM and/or GRU layers into the float IR.

    A static batch or time length of the graph input is a default, not a constraint, wherever
    the graph allows (see :mod:`.static_axes`). ``batch_row``: for a static batch whose rows
    hold different constants (initial states, ``sequence_lens``), keep those of this row only,
    so the model runs any number of sequences.
    """
    if batch_row is not None and (not isinstance(batch_row, int) or batch_row < 0):
        raise UnsupportedModelError(f"batch_row {batch_row!r} must be an integer >= 0", field="batch_row")
    model, where = read_model(source)
    consts = initializer_arrays(model) if check_weights else _initializers_unchecked(model)
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in consts]
    if not inputs:
        raise UnsupportedModelError("the graph has no input", field="graph.input")
    if not graph.output:
        raise ModelFormatError(f"{where}: the graph has no output")
    x_info = inputs[0]
    ttype = x_info.type.tensor_type
    if not x_info.type.HasField("tensor_type") or ttype.elem_type not in _FLOAT_TYPES:
        raise UnsupportedModelError(
            f"graph input '{x_info.name}' must be a float tensor (float32/float64/float16)",
            field="input type",
        )
    if not ttype.HasField("shape"):
        raise UnsupportedModelError(
            f"graph input '{x_info.name}' has no declared shape; expected rank 3",
            field="input shape",
        )
    shape: list[int | None] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                               for d in ttype.shape.dim]
    if len(shape) != 3:
        raise UnsupportedModelError(
            f"graph input '{x_info.name}' has rank {len(shape)}; supported: rank 3, "
            "[time, batch, features] or [batch, time, features]",
            field="input shape",
        )
    lstms = [n for n in graph.node if n.op_type in ("LSTM", "GRU")]
    if not lstms:
        ops = sorted({n.op_type for n in graph.node})
        raise UnsupportedModelError(
            f"the model has no LSTM or GRU node (ops: {', '.join(ops)}); tinylstm imports LSTM and GRU "
            "models",
            field="op_type",
        )
    seq_lens_input = None
    extra = [i.name for i in inputs[1:]]
    for n in lstms:  # sequence_lens is input 4 of both ops
        if len(n.input) > 4 and n.input[4] in extra:
            seq_lens_input = n.input[4]
    for name in extra:
        if name != seq_lens_input:
            consts[name] = ExtraInput(name)  # type: ignore[assignment]

    opset = opset_of(model)
    check_graph(model, {t.name for t in graph.initializer}, opset)
    first_layout = attr(lstms[0], "layout", INT, 0)
    hypotheses = [("T", "B", "F"), ("B", "T", "F")]
    if first_layout == 1:
        hypotheses.reverse()
    errors: list[tuple[int, UnsupportedModelError]] = []
    baked: str | None = None
    attempts = [(axes, shape) for axes in hypotheses]
    k = 0
    while k < len(attempts):
        axes, in_shape = attempts[k]
        k += 1
        interp = Interpreter(model, consts, x_info.name, in_shape, axes, seq_lens_input, opset, batch_row)
        try:
            interp.run()
            out_name = graph.output[0].name
            out = interp.env.get(out_name)
            if isinstance(out, SymStack):
                raise UnsupportedModelError(out.refusal(), node=out.label)
            if isinstance(out, ExtraInput):
                raise UnsupportedModelError(f"graph output '{out_name}' is a graph input")
            if not isinstance(out, Sym):
                raise UnsupportedModelError(
                    f"graph output '{out_name}' does not depend on the input '{x_info.name}'",
                    field="graph.output",
                )
            break
        except BakedTimeError as e:
            # the exporter baked the example length into the graph: onnxruntime too can only
            # run that length, so import the model with the time axis fixed to it
            t_axis = axes.index("T")
            for t in e.candidates:
                fixed = list(in_shape)
                fixed[t_axis] = t
                attempts.insert(k, (axes, fixed))
            baked = e.node
        except UnsupportedModelError as e:
            errors.append((getattr(interp, "progress", 0), e))
    else:
        # report the layout hypothesis that got furthest through the graph
        raise max(errors, key=lambda pe: pe[0])[1]
    export_batch, export_time = (a.size for a in interp.input_atoms[:2])
    if batch_row is not None and export_batch is None:
        raise UnsupportedModelError(
            f"batch_row {batch_row} was given but graph input '{x_info.name}' has a dynamic batch",
            field="batch_row")

    nodes, out_index = _prune(interp.nodes, out.value)
    if not any(isinstance(n, RECURRENT) for n in nodes):
        raise UnsupportedModelError(
            f"graph output '{graph.output[0].name}' does not depend on any LSTM or GRU node; tinylstm "
            "models the first graph output, which must come from an LSTM or a GRU",
            field="graph.output",
        )
    in_view = View(
        interp.input_atoms,
        tuple((("B", "T", "F").index(lab),) for lab in axes),
    )
    out_view = View(out.atoms, place_floating(out.atoms, out.dims))
    nodes, in_view, out_view, notes = relax_static_axes(nodes, in_view, out_view)
    if baked is not None and shape[axes.index("T")] is None:
        notes.insert(0,
            f"node '{baked}' bakes the sequence length {export_time} into the graph (a known PyTorch "
            "dynamo-export issue with batch_first=False or with recurrent modules called one after "
            "the other): onnxruntime runs the file only at that length"
            + ("; tinylstm runs any length" if in_view.atoms[1].size is None else "")
        )
    if len(graph.output) > 1:
        notes.append(
            "only the first graph output '" + graph.output[0].name + "' is modeled; ignored: "
            + ", ".join(o.name for o in graph.output[1:])
        )
    producer = model.producer_name + (f" {model.producer_version}" if model.producer_version else "")
    return FloatModel(
        nodes=tuple(nodes),
        input_name=x_info.name,
        output_name=graph.output[0].name,
        input_view=in_view,
        output_view=out_view,
        sequence_lens_input=seq_lens_input,
        opset=opset,
        producer=producer,
        source=where,
        notes=tuple(notes),
        export_batch=export_batch,
        export_time=export_time,
        batch_row=batch_row,
    )


def _initializers_unchecked(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _prune(nodes: list[Node], out: int) -> tuple[list[Node], int]:
    """Keep the nodes the output depends on, renumbered in order."""
    need = {out}
    for k in range(out, -1, -1):
        if k in need:
            src = getattr(nodes[k], "src", None)
            if src is not None:
                need.add(src)
    need.add(0)
    keep = sorted(need)
    remap = {old: new for new, old in enumerate(keep)}
    result: list[Node] = []
    from dataclasses import replace

    for old in keep:
        n = nodes[old]
        if hasattr(n, "src"):
            n = replace(n, src=remap[n.src])  # type: ignore[arg-type]
        result.append(n)
    # an LstmStateNode must follow its LSTM / GRU; both are kept by construction
    for n in result:
        if isinstance(n, LstmStateNode):
            assert isinstance(result[n.src], RECURRENT)
    return result, remap[out]
