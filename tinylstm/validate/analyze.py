"""`tinylstm analyze`: parameters, MACs, flash and RAM of an integer model.

Per layer counts come from the integer model; MACs per step follow :data:`MACS_DEFINITION`, the
one definition :func:`macs_per_step` implements for every report (``inspect``, ``analyze``, the
target benchmarks). Byte counts come from the generated C itself: the
``<PREFIX>_FLASH_BYTES`` / ``<PREFIX>_RAM_BYTES`` the emitter computes for a 32-bit target, and —
when a Cortex-M target is named and arm-none-eabi-gcc is installed — the sizes of the compiled
objects (runtime ``.text``, model ``.text``, weights and tables in ``.rodata``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..ir.macs import MACS_DEFINITION, macs_per_step, node_macs, peephole_mults
from ..qmodel import QDense, QGru, QLstm, QuantizedModel


def _layer_rows(qm: QuantizedModel) -> list[dict[str, Any]]:
    rows = []
    for k, n in enumerate(qm.nodes):
        if isinstance(n, QLstm):
            h, i = n.hidden_size, n.input_size
            params = 0
            for d in n.directions:
                params += d.w.size + d.r.size + d.bias.size + (d.peep.size if d.peep is not None else 0)
            rows.append({
                "index": k, "name": n.name, "op": "LSTM", "shape": f"{i}->{h} x{n.num_directions}",
                "parameters": int(params), "macs_per_step": node_macs(n),
                "peephole_mults_per_step": peephole_mults(n),
                "state_bytes": n.num_directions * h * 3,  # int8 h + int16 c per direction
            })
        elif isinstance(n, QGru):
            h, i = n.hidden_size, n.input_size
            params = sum(d.w.size + d.r.size + d.bias.size + (h if n.linear_before_reset else 0) for d in n.directions)
            rows.append({
                "index": k, "name": n.name, "op": "GRU", "shape": f"{i}->{h} x{n.num_directions}",
                "parameters": int(params), "macs_per_step": node_macs(n), "peephole_mults_per_step": 0,
                "state_bytes": n.num_directions * h * 3,  # int16 state + int8 output per direction
            })
        elif isinstance(n, QDense):
            o, f = n.weight.shape
            rows.append({
                "index": k, "name": n.name, "op": "Dense", "shape": f"{f}->{o}",
                "parameters": int(n.weight.size + o), "macs_per_step": node_macs(n),
                "state_bytes": 0,
            })
    return rows


def analyze(qm: QuantizedModel, *, target: str | None = None, prefix: str = "model",
            max_steps: int | None = None, kernels: str | None = None) -> dict[str, Any]:
    """A JSON-ready footprint report; ``target`` (e.g. ``cortex-m4``) adds compiled sizes (built with
    the core's kernels: the Helium ones on cortex-m55); ``max_steps``: the ``run()`` bound of buffered
    models (as given to ``generate_c``); ``kernels``: what the generated footprint counts ("portable",
    "mve" or a core name, as ``generate_c``'s ``target``; default: ``target``'s kernels)."""
    from ..codegen.emit import footprint
    from ..lowering.mve import TARGET_KERNELS

    if kernels is None and target in TARGET_KERNELS:
        kernels = TARGET_KERNELS[target]

    rows = _layer_rows(qm)
    res: dict[str, Any] = {
        "layers": rows,
        "parameters": sum(r["parameters"] for r in rows),
        "macs_per_step": macs_per_step(qm),
        "peephole_mults_per_step": sum(peephole_mults(n) for n in qm.nodes),
        "generated": dict(footprint(qm, prefix, max_steps, target=kernels), kernels=kernels or "portable"),
        "compiled": None,
    }
    if target is not None:
        res["compiled"] = _compiled_sizes(qm, prefix, target, max_steps)
    return res


def _compiled_sizes(qm: QuantizedModel, prefix: str, target: str, max_steps: int | None) -> dict[str, Any]:
    """Sizes measured from the model linked for ``target`` at -Os (runtime and model code,
    weights/tables, state, stack)."""
    from ..cbuild.emulated import build_target, target_footprint
    from ..cbuild.toolchain import ToolchainError, missing_reason

    reason = missing_reason("arm-none-eabi-gcc")
    if reason:
        raise ToolchainError(reason)
    with tempfile.TemporaryDirectory(prefix="tinylstm-analyze-") as tmp:
        exe = build_target(qm, target, Path(tmp), opt="-Os", prefix=prefix, max_steps=max_steps)
        fp = target_footprint(exe)
    d = fp.to_dict()
    d.update(target=target, opt="-Os", kernels=exe.kernels)
    return d


def format_analysis(a: dict[str, Any]) -> str:
    lines = [f"{'#':>2}  {'op':<6} {'name':<28} {'shape':<14} {'params':>8} {'MACs/step':>10} {'state B':>8}"]
    for r in a["layers"]:
        name = r["name"] if len(r["name"]) <= 28 else "..." + r["name"][-25:]
        lines.append(f"{r['index']:>2}  {r['op']:<6} {name:<28} {r['shape']:<14} {r['parameters']:>8} "
                     f"{r['macs_per_step']:>10} {r['state_bytes']:>8}")
    peep = a.get("peephole_mults_per_step") or 0
    lines.append(f"total: {a['parameters']} parameters, {a['macs_per_step']} MACs per step"
                 + (f" (+{peep} peephole multiplies)" if peep else ""))
    lines.append(MACS_DEFINITION)
    g = a.get("generated") or {}
    if g:
        ram = f"RAM {g['ram_bytes']} B (state + scratch"
        ram += f", incl. {g['ram_per_step']} B per step for {g['max_steps']} steps)" if g.get("ram_per_step") else ")"
        lines.append(f"generated C (32-bit target): flash {g['flash_bytes']} B (weights, tables, params), {ram}")
    c = a.get("compiled")
    if c:
        helium = " (Helium kernels)" if c.get("kernels") == "mve" else ""
        lines.append(f"compiled for {c['target']} {c['opt']}{helium}: runtime .text {c.get('runtime_text')} B, "
                     f"model .text {c.get('model_text')} B, weights+tables .rodata {c.get('model_rodata')} B, "
                     f"state {c.get('state_bytes')} B (scratch {c.get('scratch_bytes')} B), "
                     f"stack {c.get('stack_bytes')} B")
    return "\n".join(lines)
