"""A plain description of a FloatModel: what `tinylstm inspect` prints (text or JSON).

MACs per step are :func:`tinylstm.ir.macs.macs_per_step`, the same count `tinylstm analyze` prints.

Names, producer and notes come from the model file: the table shows them through
:func:`tinylstm.errors.printable`, so no control character of the file reaches the terminal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import printable
from .macs import MACS_DEFINITION, macs_per_step, node_macs, peephole_mults
from .model import FloatModel
from .nodes import (
    ActivationNode,
    DenseNode,
    FeatureGatherNode,
    GruNode,
    InputNode,
    LstmNode,
    LstmStateNode,
    SelectStepNode,
)
from .reference import describe_view


def summarize(model: FloatModel) -> dict[str, Any]:
    """JSON-ready description: input/output layout, layers, attributes, sizes, MACs."""
    layers: list[dict[str, Any]] = []
    for k, n in enumerate(model.nodes):
        row: dict[str, Any] = {"index": k, "name": n.name, "kind": n.kind,
                               "features": int(n.features)}
        if isinstance(n, InputNode):
            row["op"] = "Input"
        elif isinstance(n, LstmNode):
            d0 = n.directions[0]
            row.update(
                op="LSTM",
                src=n.src,
                input_size=n.input_size,
                hidden_size=n.hidden_size,
                direction=n.direction,
                peepholes=d0.p is not None,
                clip=n.clip,
                input_forget=n.input_forget,
                activations=[[str(a) for a in d.activations] for d in n.directions],
                sequence_lens=_lengths(n),
                initial_h="zeros" if all(not d.initial_h.any() for d in n.directions) else "given",
                initial_c="zeros" if all(not d.initial_c.any() for d in n.directions) else "given",
                parameters=n.parameters,
                macs_per_step=node_macs(n),
                peephole_mults_per_step=peephole_mults(n),
            )
        elif isinstance(n, GruNode):
            row.update(
                op="GRU",
                src=n.src,
                input_size=n.input_size,
                hidden_size=n.hidden_size,
                direction=n.direction,
                linear_before_reset=n.linear_before_reset,
                clip=n.clip,
                activations=[[str(a) for a in d.activations] for d in n.directions],
                sequence_lens=_lengths(n),
                initial_h="zeros" if all(not d.initial_h.any() for d in n.directions) else "given",
                parameters=n.parameters,
                macs_per_step=node_macs(n),
            )
        elif isinstance(n, LstmStateNode):
            op = "GRU" if isinstance(model.nodes[n.src], GruNode) else "LSTM"
            row.update(op=f"{op} Y_{n.which}", src=n.src)
        elif isinstance(n, SelectStepNode):
            row.update(op="SelectStep", src=n.src, step=n.index)
        elif isinstance(n, FeatureGatherNode):
            row.update(op="FeatureGather", src=n.src)
        elif isinstance(n, DenseNode):
            row.update(op="Dense", src=n.src, in_features=int(n.weight.shape[1]),
                       parameters=n.parameters, macs_per_step=node_macs(n))
        elif isinstance(n, ActivationNode):
            row.update(op=str(n.activation), src=n.src)
        layers.append(row)
    return {
        "source": model.source,
        "producer": model.producer,
        "opset": model.opset,
        "input": {"name": model.input_name, "layout": describe_view(model.input_view),
                  "features": model.input_features, "export_batch": model.export_batch,
                  "export_time": model.export_time},
        "output": {"name": model.output_name, "layout": describe_view(model.output_view),
                   "features": model.output_features,
                   "per_step": model.many_to_many},
        "sequence_lens_input": model.sequence_lens_input,
        "causal": model.causal,
        "layers": layers,
        "parameters": model.parameters,
        "macs_per_step": macs_per_step(model),
        "peephole_mults_per_step": sum(peephole_mults(n) for n in model.nodes),
        "float32_weight_bytes": 4 * model.parameters,
        "notes": list(model.notes),
    }


def _lengths(n: LstmNode | GruNode) -> str | list[int] | None:
    if n.sequence_lens_is_input:
        return "graph input"
    return None if n.sequence_lens is None else [int(v) for v in n.sequence_lens]


def _exported_at(inp: dict[str, Any]) -> str:
    """The static sizes the file declares, where the model does not require them."""
    fixed = [f"{what} {inp[key]}" for what, key in (("batch", "export_batch"), ("time", "export_time"))
             if inp[key] is not None and f"{what}={inp[key]}" not in inp["layout"]]
    return f"  (exported with static {', '.join(fixed)}; runs any)" if fixed else ""


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"model     {s['source']}",
        f"producer  {s['producer'] or '-'} (opset {s['opset']})",
        f"input     {s['input']['name']} {s['input']['layout']}" + _exported_at(s["input"]),
        f"output    {s['output']['name']} {s['output']['layout']}"
        + ("  (one value per time step)" if s["output"]["per_step"] else ""),
    ]
    if s["sequence_lens_input"]:
        lines.append(f"seq lens  graph input '{s['sequence_lens_input']}'")
    lines.append(f"streaming {'yes (causal)' if s['causal'] else 'no (needs the whole sequence)'}")
    lines.append("")
    header = f"{'#':>2}  {'op':<16} {'name':<28} {'out':>5}  {'params':>7}  {'MACs/step':>9}  details"
    lines.append(header)
    lines.append("-" * len(header))
    for r in s["layers"]:
        det = ""
        if r["op"] == "LSTM":
            bits = [f"{r['input_size']}->{r['hidden_size']}", r["direction"]]
            if r["peepholes"]:
                bits.append(f"peepholes (+{r['peephole_mults_per_step']} mults)")
            if r["clip"] is not None:
                bits.append(f"clip={r['clip']:g}")
            if r["input_forget"]:
                bits.append("input_forget")
            acts = r["activations"][0]
            if acts != ["Sigmoid", "Tanh", "Tanh"] or len(set(map(tuple, r["activations"]))) > 1:
                bits.append("activations=" + "/".join(",".join(a) for a in r["activations"]))
            if r["sequence_lens"] is not None:
                bits.append(f"sequence_lens={r['sequence_lens']}")
            if r["initial_h"] != "zeros" or r["initial_c"] != "zeros":
                bits.append(f"initial h={r['initial_h']} c={r['initial_c']}")
            det = ", ".join(bits)
        elif r["op"] == "GRU":
            det = _gru_details(r)
        elif r["op"] == "SelectStep":
            det = f"step {r['step']}" + (" (last)" if r["step"] == -1 else "")
        elif r["op"] == "Dense":
            det = f"{r['in_features']}->{r['features']}"
        if "src" in r:
            det = f"<- #{r['src']}  " + det
        name = printable(r["name"])
        name = name if len(name) <= 28 else "..." + name[-25:]
        lines.append(
            f"{r['index']:>2}  {r['op']:<16} {name:<28} {r['features']:>5}  "
            f"{r.get('parameters', ''):>7}  {r.get('macs_per_step', ''):>9}  {det}"
        )
    lines.append("")
    lines.append(
        f"total     {s['parameters']} parameters ({s['float32_weight_bytes']} bytes as float32), "
        f"{s['macs_per_step']} MACs per time step"
        + (f" (+{s['peephole_mults_per_step']} peephole multiplies)" if s["peephole_mults_per_step"] else "")
    )
    lines.append(f"          {MACS_DEFINITION}")
    for note in s["notes"]:
        lines.append(f"note      {note}")
    return "\n".join(printable(line) for line in lines)


def _gru_details(r: dict[str, Any]) -> str:
    bits = [f"{r['input_size']}->{r['hidden_size']}", r["direction"],
            f"linear_before_reset={int(r['linear_before_reset'])}"]
    if r["clip"] is not None:
        bits.append(f"clip={r['clip']:g}")
    if r["activations"][0] != ["Sigmoid", "Tanh"] or len(set(map(tuple, r["activations"]))) > 1:
        bits.append("activations=" + "/".join(",".join(a) for a in r["activations"]))
    if r["sequence_lens"] is not None:
        bits.append(f"sequence_lens={r['sequence_lens']}")
    if r["initial_h"] != "zeros":
        bits.append(f"initial h={r['initial_h']}")
    return ", ".join(bits)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v
