"""A static batch or time axis is a default, not a constraint, where the graph allows it.

Most ONNX files users have declare a static batch (``torch.onnx.export(model, torch.randn(8, 60,
10), ...)``) and often a static sequence length. The importer interprets the graph at those sizes
(reshapes then fold to plain numbers), and this module decides afterwards what the IR really
depends on:

- **batch**: the IR runs every row alone. A static batch only matters where a constant differs
  between rows (initial states, ``sequence_lens``; the interpreter already keeps one row when all
  rows are equal, or the row the caller picked). Otherwise the model is *batch-free*: any number
  of sequences may run, and the batch axis of the views becomes dynamic.
- **time**: the IR is length-independent unless it picks a step other than the first or the last
  of the static length, or holds constant ``sequence_lens`` shorter than it. Constant lengths equal
  to the static length (every step valid) are dropped.

The static sizes stay on the model (``export_batch``, ``export_time``) for the onnxruntime oracle,
which can only run the graph at them, and for checks of the user's data layout.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import RECURRENT, Atom, Node, SelectStepNode, View, batch_dependence


def relax_static_axes(
    nodes: list[Node], in_view: View, out_view: View
) -> tuple[list[Node], View, View, list[str]]:
    """Make the static batch and time axes of the views dynamic where the IR allows it.

    Returns the nodes (constant ``sequence_lens`` equal to the static length dropped), both views
    and notes for the user about what stays fixed and why.
    """
    notes: list[str] = []
    sizes = {a.label: a.size for a in in_view.atoms if a.label in ("B", "T")}
    relax: set[str] = set()
    batch = sizes.get("B")
    if batch is not None:
        dependence = batch_dependence(nodes)
        if dependence:
            node, what, rows = dependence[0]
            notes.append(
                f"node '{node}' {what} differs between the {rows} rows of the static batch: the model "
                f"runs only at batch {batch} (pick one row with load_onnx(..., batch_row=K) or "
                "--batch-row K, or re-export with a dynamic batch axis)"
            )
        else:
            relax.add("B")
    time = sizes.get("T")
    if time is not None:
        nodes, why = _time_dependence(nodes, time)
        if why:
            notes.append(f"{why}: the model runs only at {time} steps")
        else:
            relax.add("T")
    return nodes, _relaxed(in_view, relax), _relaxed(out_view, relax), notes


def _time_dependence(nodes: list[Node], time: int) -> tuple[list[Node], str | None]:
    """Nodes with constant all-valid ``sequence_lens`` dropped, and why the IR depends on the
    static length ``time`` (None when it does not)."""
    out: list[Node] = []
    why = None
    for n in nodes:
        if isinstance(n, RECURRENT) and n.sequence_lens is not None:
            if (n.sequence_lens == time).all():
                n = replace(n, sequence_lens=None)  # every step valid, at any length
            elif why is None:
                why = (f"node '{n.name}' sequence_lens {n.sequence_lens.tolist()} is a constant "
                       f"below the static length {time}")
        elif isinstance(n, SelectStepNode) and n.index not in (0, -1) and why is None:
            why = f"node '{n.name}' picks step {n.index} of the static length {time}"
        out.append(n)
    return out, why


def _relaxed(view: View, labels: set[str]) -> View:
    if not labels:
        return view
    return View(tuple(Atom(a.label, None) if a.label in labels else a for a in view.atoms), view.dims)
