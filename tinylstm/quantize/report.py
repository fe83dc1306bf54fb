"""What ``tinylstm quantize`` prints: the scales of every node and the estimated int8 error."""

from __future__ import annotations

import numpy as np

from ..qmodel import QGru, QInput, QLstm


def _tables(layer, d) -> str:
    """The gate tables of a direction: the layer's standard table or its custom ones (spec §8)."""
    if d.standard:
        return f"standard table {layer.table.shape[0] - 1} segments"
    luts = [d.lut_f, d.lut_g] + ([d.lut_h] if isinstance(layer, QLstm) else [])
    return "LUT " + "/".join(str(t.n) for t in luts) + " segments"


def quant_summary(qm, fm=None, calib_data=None) -> str:
    """Scales per node and, when data is given, the int8-vs-float error on it."""

    lines = [f"{'#':>2}  {'node':<28} {'kind':<12} {'scale':>11} {'zp':>5}  details"]
    for k, n in enumerate(qm.nodes):
        det = ""
        if isinstance(n, QLstm):
            d0 = n.directions[0]
            det = f"P={n.pre_frac} cell Q{d0.cell_frac} (|c| < {2.0 ** (15 - d0.cell_frac):g}) {_tables(n, d0)}"
        elif isinstance(n, QGru):
            d0 = n.directions[0]
            det = f"P={n.pre_frac} state Q{d0.state_frac} (|h| < {2.0 ** (15 - d0.state_frac):g}) {_tables(n, d0)}"
        kind = type(n).__name__.lstrip("Q") if not isinstance(n, QInput) else "Input"
        name = n.name if len(n.name) <= 28 else "..." + n.name[-25:]
        lines.append(f"{k:>2}  {name:<28} {kind:<12} {n.scale:>11.4g} {n.zero_point:>5}  {det}")
    if fm is not None and calib_data is not None:
        from ..validate.metrics import error_stats

        errs = []
        refs = []
        for _, batch in calib_data.groups()[:8]:
            x = fm.input_view.from_canonical(batch)
            refs.append(fm.run(x).reshape(-1))
            errs.append(qm.run(x).reshape(-1))
        e = error_stats(np.concatenate(errs), np.concatenate(refs))
        lines.append("")
        lines.append(f"estimated error on the calibration data: rmse {e.rmse:.4g}, max abs {e.max_abs:.4g}, "
                     f"cosine {e.cosine:.6f}")
    return "\n".join(lines)
