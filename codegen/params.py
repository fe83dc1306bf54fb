"""The model's const data: one params initializer per layer with its weights and tables, and the
state struct member each node writes (C text, in node order; flash and RAM counted as written)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..lowering import UNIT_FIELDS, LoweredGru, LoweredLstm, lower_gru, lower_lstm, scratch_halves
from ..qmodel import QDense, QFeatureGather, QGru, QInput, QLstm, QLstmState, QSoftmax, QTable
from .cformat import c_int
from .consts import ConstData
from .footprint import Footprint
from .names import Names, c_comment
from .plan import RECURRENT, Plan


@dataclass
class ModelData:
    """What the first pass over the live nodes produced, read by the header and the code."""

    plan: Plan
    names: Names
    fp: Footprint
    consts: ConstData
    lowered: dict[int, LoweredLstm | LoweredGru] = field(default_factory=dict)  # LSTM / GRU node -> its lowering
    kernels: str = "portable"  # "portable" or "mve": the kernels the C is generated for (lowering.kernels_for)


def model_data(plan: Plan, prefix: str, kernels: str = "portable") -> ModelData:
    """Const data and state members of every live node, then the step scratch and the I/O
    permutations; ``kernels``: "portable" or "mve" (the Helium layout where a layer takes it)."""
    fp = Footprint()
    md = ModelData(plan, Names(prefix, plan.nodes), fp, ConstData(prefix, fp), kernels=kernels)
    nodes, names = plan.nodes, md.names
    for k in plan.live:
        n = nodes[k]
        if isinstance(n, QLstm):
            _lstm(md, k, n)
        elif isinstance(n, QGru):
            _gru(md, k, n)
        elif isinstance(n, QDense):
            _dense(md, k, n)
        elif isinstance(n, QTable):
            md.consts.text(f"/* ---- {names.describe(k)}: {c_comment(n.activation, 60)} on int8 ---- */\n")
            md.consts.array("int8_t", f"{names.nid(k)}_table", n.table, "y = table[x + 128]")
        elif isinstance(n, QSoftmax):
            _softmax(md, k, n)
        elif isinstance(n, QFeatureGather):
            md.consts.text(f"/* ---- {names.describe(k)}: {n.features} features ---- */\n")
            if nodes[n.src].features > 65536:
                raise ValueError("feature gather over more than 65536 features")
            md.consts.array("uint16_t", f"{names.nid(k)}_idx", n.indices, "y[i] = x[idx[i]]")
        if not isinstance(n, (QInput, *RECURRENT)) and plan.state_alias(k) is None:
            fp.field("int8_t", f"{names.fid(k)}_v[{n.features}]", n.features, f"{names.describe(k)}: value")
    fp.scratch(max(scratch_halves(nodes[k] for k in plan.live_of(RECURRENT)),  # and a Helium step's, if larger
                   (max((lw.scratch_bytes for lw in md.lowered.values()), default=0) + 3) // 4 * 2))
    if plan.input.perm:
        md.consts.array("uint16_t", f"{prefix}_in_perm", plan.input.perm,
                        "canonical input feature -> position in a step")
        fp.field("int8_t", f"xin[{plan.input.features}]", plan.input.features, "input step, canonical order")
    if plan.output.perm:
        inv = np.argsort(np.asarray(plan.output.perm))
        md.consts.array("uint16_t", f"{prefix}_out_perm", inv, "output position in a step -> canonical feature")
    return md


def _lstm(md: ModelData, k: int, n: QLstm) -> None:
    names, consts = md.names, md.consts
    nid, H, I, D = names.nid(k), n.hidden_size, n.input_size, n.num_directions
    P = n.pre_frac
    consts.text(f"/* ---- {names.describe(k)}: I={I}, H={H}, "
                f"{'bidirectional' if D == 2 else ('reverse' if n.directions[0].reverse else 'forward')}, "
                f"gate pre-activations Q({P}) ---- */\n")
    low = md.lowered[k] = lower_lstm(n, md.kernels)
    consts.text(f"/* step: {low.step} ({low.why}) */\n")
    table = _standard_table(consts, n)
    params = []
    for di, (d, ld) in enumerate(zip(n.directions, low.directions, strict=True)):
        base = f"{nid}_d{di}"
        tx, th = ld.wx_ctype, ld.wh_ctype
        mve = ld.layout == "mve"
        layout = ("Helium layout [block of 4 units][gate i, f, g, o][chunk of 8][unit][8] (tl_lstm_mve.h)" if mve
                  else "quad layout [unit][quad][gate i, f, g, o][4] (tl_lstm.h)")
        consts.weights(tx, f"{base}_wx", ld.wx,
                       f"direction {di}: input weights W (I={I}), {layout}, {tx[:-2]} per-row scale")
        consts.weights(th, f"{base}_wh", ld.wh, f"direction {di}: recurrent weights R (H={H}), "
                       f"{'Helium' if mve else 'quad'} layout, {th[:-2]}")
        nu = len(ld.units)
        lines = ["    {" + ", ".join("{" + ", ".join(_unit_int(v, f) for v in ld.units[j][:, col]) + "}"
                                     for col, f in enumerate(UNIT_FIELDS)) + "}," for j in range(nu)]
        what = ("per block of 4 units and gate i, f, g, o (entry 4 b + g), per unit u of the block"
                if mve else "per unit, per gate i, f, g, o")
        consts.text(f"/* direction {di}: {what}: bias B (t units), mult mx | mh << 16, "
                    f"shift s (z = t >> s, Q({P})) */\nstatic const tl_lstm_unit_t {base}_units[{nu}] = {{\n"
                    + "\n".join(lines) + "\n};\n")
        md.fp.const_structs("tl_lstm_unit_t", nu)
        peep = "0"
        if d.peep is not None:
            peep = consts.array("int16_t", f"{base}_peep", np.asarray(d.peep).T,
                                f"direction {di}: peepholes (H={H}, 3) i, f, o, int16 per-gate scale")
        luts = "0"
        if not d.standard:
            luts = f"{base}_luts"
            inits = [consts.lut(d.lut_f, "f: i, f, o gates:"), consts.lut(d.lut_g, "g: cell candidate:"),
                     consts.lut(d.lut_h, "h: cell output, cell")]
            consts.text(f"static const tl_lut_t {luts}[3] = {{\n" + "".join(f"    {t},\n" for t in inits) + "};\n")
            md.fp.const_structs("tl_lut_t", 3)
        pm = ", ".join(c_int(v) for v in np.asarray(d.peep_mult).reshape(-1))
        ps = ", ".join(c_int(v) for v in np.asarray(d.peep_shift).reshape(-1))
        k_c = d.cell_frac
        qf, qg, qh = d.gate_q
        params.append(
            "    {\n"
            + _weight_fields(base, I, H, tx, th, "&tl_lstm_layout_mve" if mve else "&TL_W16_ENCODING") +
            f"        .x_zero_point = {n.input_zero_point},\n"
            f"        .pre_x = {d.pre_x}, /* (x - zp_x) << pre_x */\n"
            f"        .h_zero_point = {n.zero_point},\n"
            f"        .pre_h = {d.pre_h},\n"
            f"        .peep = {peep},\n"
            f"        .peep_mult = {{{pm}}}, /* pq * c: Q({k_c}) -> Q({P}) */\n"
            f"        .peep_shift = {{{ps}}},\n"
            f"        .has_clip = {0 if n.clip_q is None else 1},\n"
            f"        .clip_q = {c_int(n.clip_q or 0)}, /* Q({P}) */\n"
            f"        .input_forget = {int(bool(n.input_forget))},\n"
            f"        .table = {table if d.standard else '0'},\n"
            f"        .table_n = {n.table.shape[0] - 1 if d.standard else 0},\n"
            f"        .gate_shift = {ld.gate_shift}, /* P - frac */\n"
            f"        .cell_shift = {ld.cell_shift}, /* k - frac */\n"
            f"        .luts = {luts},\n"
            f"        .one_f = {1 << qf}, /* 1.0 in Q({qf}) */\n"
            f"        .a_fc = {d.a_fc}, /* f*c: Q({qf}+{k_c}) << {d.a_fc} */\n"
            f"        .a_ig = {d.a_ig}, /* i*g: Q({qf}+{qg}) << {d.a_ig} */\n"
            f"        .s_c = {d.s_c}, /* -> cell Q({k_c}) */\n"
            f"        .h_mult = {c_int(d.h_mult)}, /* o*h_act(c): Q({qf}+{qh}) -> int8 h */\n"
            f"        .h_shift = {d.h_shift},\n"
            "    },"
        )
        md.fp.const_structs("tl_lstm_params_t")
    consts.text(f"static const tl_lstm_params_t {nid}[{D}] = {{\n" + "\n".join(params) + "\n};\n")
    h0, c0 = initial_states(n)
    if np.unique(h0).size > 1:
        consts.array("int8_t", f"{nid}_h0", h0, "initial hidden state (D, H), int8")
    if np.unique(c0).size > 1:
        consts.array("int16_t", f"{nid}_c0", c0, "initial cell state (D, H), int16 Q(k)")
    _pad(md, k, n)
    fid = names.fid(k)
    md.fp.field("int16_t", f"{fid}_c[{D}][{H}]", D * H, f"LSTM {k} cell (D, H), int16, Q(k) per direction")
    md.fp.field("int8_t", f"{fid}_h[{D}][{H}]", D * H, f"LSTM {k} hidden (D, H), int8 (s_h, zp_h = {n.zero_point})")


def _weight_fields(base: str, inputs: int, hidden: int, tx: str, th: str, encoding: str) -> str:
    """The params fields an LSTM and a GRU direction share: sizes, the weight pointers of the matrices'
    C types (the other pointer of each pair 0), the link-time layout check, the unit constants."""
    return (f"        .input_size = {inputs},\n"
            f"        .hidden_size = {hidden},\n"
            f"        .wx = {base + '_wx' if tx == 'int8_t' else '0'},\n"
            f"        .wx16 = {base + '_wx' if tx == 'int16_t' else '0'},\n"
            f"        .wh = {base + '_wh' if th == 'int8_t' else '0'},\n"
            f"        .wh16 = {base + '_wh' if th == 'int16_t' else '0'},\n"
            f"        .w16_encoding = {encoding},\n"
            f"        .units = {base}_units,\n")


def _standard_table(consts: ConstData, n: QLstm | QGru) -> str:
    """The model's standard table (one array, shared by every layer using it), or "0"."""
    if n.table is None:
        return "0"
    table, ttype = consts.table(n.table, "int32_t", f"standard table D[j] = rint(2^16 (1 - sigmoid(j "
                                f"2^-{n.table_frac}))), j = 0..{n.table.shape[0] - 1} (spec sec. 8.1)")
    if ttype != "uint16_t":
        raise ValueError("standard table outside [0, 65535]")  # internal: entries are <= 2^15
    return table


def _gru(md: ModelData, k: int, n: QGru) -> None:
    """A GRU layer (tl_gru.h): weights in the block layout, per-unit constants, params, initial state."""
    names, consts = md.names, md.consts
    nid, H, I, D, P = names.nid(k), n.hidden_size, n.input_size, n.num_directions, n.pre_frac
    lbr = int(bool(n.linear_before_reset))
    consts.text(f"/* ---- {names.describe(k)}: GRU, I={I}, H={H}, "
                f"{'bidirectional' if D == 2 else ('reverse' if n.directions[0].reverse else 'forward')}, "
                f"linear_before_reset={lbr}, gate pre-activations Q({P}) ---- */\n")
    low = md.lowered[k] = lower_gru(n)
    consts.text(f"/* step: {low.step} ({low.why}) */\n")
    table = _standard_table(consts, n)
    params = []
    for di, (d, ld) in enumerate(zip(n.directions, low.directions, strict=True)):
        base = f"{nid}_d{di}"
        tx, th = ld.wx_ctype, ld.wh_ctype
        consts.weights(tx, f"{base}_wx", ld.wx,
                       f"direction {di}: input weights W (I={I}), block layout [block of 4 units][gate z, r, h][quad]"
                       f"[unit][4] (tl_gru.h), {tx[:-2]} per-row scale")
        consts.weights(th, f"{base}_wh", ld.wh, f"direction {di}: recurrent weights R (H={H}), block layout, {th[:-2]}")
        rb = np.asarray(d.rbias, np.int64) if lbr else np.zeros(H, np.int64)
        lines = []
        for j in range(H):
            u = ld.units[j]  # (3 rows, GRU_UNIT_FIELDS)
            rows = ", ".join(f"{{{c_int(u[g, 0])}, {_unit_int(u[g, 1], 'mult')}}}" for g in range(3))
            lines.append(f"    {{{{{rows}}}, {c_int(rb[j])}, {{{', '.join(c_int(v) for v in u[:, 2])}}}, 0}},")
        consts.text(f"/* direction {di}: per unit: per row z, r, h {{bias B (t units), mult mx | mh << 16}}, the "
                    f"candidate's recurrent bias Bu, shifts s (z = t >> s, Q({P})) */\n"
                    f"static const tl_gru_unit_t {base}_units[{H}] = {{\n" + "\n".join(lines) + "\n};\n")
        md.fp.const_structs("tl_gru_unit_t", H)
        luts = "0"
        if not d.standard:
            luts = f"{base}_luts"
            inits = [consts.lut(d.lut_f, "f: z, r gates:"), consts.lut(d.lut_g, "g: candidate:")]
            consts.text(f"static const tl_lut_t {luts}[2] = {{\n" + "".join(f"    {t},\n" for t in inits) + "};\n")
            md.fp.const_structs("tl_lut_t", 2)
        k_s = d.state_frac
        qf, qg = d.gate_q
        params.append(
            "    {\n"
            + _weight_fields(base, I, H, tx, th, "&TL_W16_ENCODING") +
            f"        .linear_before_reset = {lbr},\n"
            f"        .x_zero_point = {n.input_zero_point},\n"
            f"        .pre_x = {d.pre_x}, /* (x - zp_x) << pre_x */\n"
            f"        .state_shift = {d.state_shift}, /* v_h = shift_half_up(h, q) */\n"
            f"        .has_clip = {0 if n.clip_q is None else 1},\n"
            f"        .clip_q = {c_int(n.clip_q or 0)}, /* Q({P}) */\n"
            f"        .table = {table if d.standard else '0'},\n"
            f"        .table_n = {n.table.shape[0] - 1 if d.standard else 0},\n"
            f"        .gate_shift = {ld.gate_shift}, /* P - frac */\n"
            f"        .luts = {luts},\n"
            f"        .one_f = {1 << qf}, /* 1.0 in Q({qf}) */\n"
            f"        .a_h = {d.a_h}, /* z*h: Q({qf}+{k_s}) << {d.a_h} */\n"
            f"        .a_n = {d.a_n}, /* (1-z)*n: Q({qf}+{qg}) << {d.a_n} */\n"
            f"        .s_u = {d.s_u}, /* -> state Q({k_s}) */\n"
            f"        .y_zero_point = {n.zero_point},\n"
            f"        .y_mult = {c_int(d.y_mult)}, /* state Q({k_s}) -> int8 output */\n"
            f"        .y_shift = {d.y_shift},\n"
            f"        .mac_x = (tl_gru_mac_fn)tl_mac4_w{16 if tx == 'int16_t' else 8},\n"
            f"        .mac_h = (tl_gru_mac_fn)tl_mac4_w{16 if th == 'int16_t' else 8},\n"
            "    },"
        )
        md.fp.const_structs("tl_gru_params_t")
    consts.text(f"static const tl_gru_params_t {nid}[{D}] = {{\n" + "\n".join(params) + "\n};\n")
    h0 = gru_initial_states(n)
    if np.unique(h0).size > 1:
        consts.array("int16_t", f"{nid}_h0", h0, "initial state (D, H), int16 Q(k)")
    _pad(md, k, n)
    fid = names.fid(k)
    md.fp.field("int16_t", f"{fid}_c[{D}][{H}]", D * H, f"GRU {k} state (D, H), int16, Q(k) per direction")
    md.fp.field("int8_t", f"{fid}_h[{D}][{H}]", D * H, f"GRU {k} output (D, H), int8 (s_y, zp_y = {n.zero_point})")


def gru_initial_states(n: QGru) -> np.ndarray:
    """The initial state (D, H) int16 of every direction."""
    return np.stack([np.asarray(d.initial_h).reshape(-1) for d in n.directions])


def _pad(md: ModelData, k: int, n: QLstm | QGru) -> None:
    """The padding output of a streaming layer with a length (steps past it give the zero point)."""
    plan = md.plan
    readers = [j for j in plan.live if getattr(plan.nodes[j], "src", None) == k and j > 0
               and not isinstance(plan.nodes[j], QLstmState)]
    if plan.streaming and plan.lens_kind(k) != "none" and (readers or k == plan.out_index):
        md.consts.array("int8_t", f"{md.names.nid(k)}_pad", np.full(n.hidden_size, n.zero_point),
                        "output at steps past the sequence length")


def _unit_int(v: int, field: str) -> str:
    """One ``tl_lstm_unit_t`` value: the packed multipliers as a uint32_t literal."""
    return f"{int(v)}u" if field == "mult" else c_int(v)


def initial_states(n: QLstm) -> tuple[np.ndarray, np.ndarray]:
    """The initial h (D, H) and c (D, H) of every direction."""
    h0 = np.stack([np.asarray(d.initial_h).reshape(-1) for d in n.directions])
    c0 = np.stack([np.asarray(d.initial_c).reshape(-1) for d in n.directions])
    return h0, c0


def _dense(md: ModelData, k: int, n: QDense) -> None:
    nid, consts = md.names.nid(k), md.consts
    consts.text(f"/* ---- {md.names.describe(k)}: {n.weight.shape[1]} -> {n.features}"
                f"{', fused Relu' if n.fused else ''} ---- */\n")
    consts.array("int8_t", f"{nid}_w", n.weight, f"weight ({n.features}, {n.weight.shape[1]}), int8 per-row scale")
    consts.array("int32_t", f"{nid}_b", n.eff_bias, "effective bias, int32 at s_x * s_W[r]", 8)
    consts.array("int32_t", f"{nid}_m", n.mult, "requantization multipliers: acc -> output scale", 8)
    consts.array("int8_t", f"{nid}_s", n.shift, "requantization shifts")
    consts.text(
        f"static const tl_dense_params_t {nid} = {{\n"
        f"    .in_features = {n.weight.shape[1]},\n    .out_features = {n.features},\n"
        f"    .weight = {nid}_w,\n    .eff_bias = {nid}_b,\n    .mult = {nid}_m,\n    .shift = {nid}_s,\n"
        f"    .zero_point = {n.zero_point},\n    .act_min = {n.act_min},\n    .act_max = {n.act_max},\n}};\n")
    md.fp.const_structs("tl_dense_params_t")


def _softmax(md: ModelData, k: int, n: QSoftmax) -> None:
    nid, consts = md.names.nid(k), md.consts
    consts.text(f"/* ---- {md.names.describe(k)}: {'LogSoftmax' if n.log else 'Softmax'} over {n.features} ---- */\n")
    e, et = consts.table(n.exp_table, "int32_t", "exp table: rint(2^15 exp(-m s_x)), m = 0..255")
    if et != "uint16_t":
        raise ValueError("softmax exp table outside [0, 65535]")  # internal: entries are <= 2^15
    l2 = "0"
    if n.log:
        l2, lt = consts.table(n.log2_table, "int32_t", "log2 table: rint(2^16 log2(1 + t/256)), t = 0..256")
        if lt != "int32_t":
            raise ValueError("log2 table must be int32")  # internal: LOG2[256] = 65536
    consts.text(
        f"static const tl_softmax_params_t {nid} = {{\n    .features = {n.features},\n"
        f"    .exp_table = {e},\n    .log2_table = {l2},\n    .l_mult = {c_int(n.l_mult)},\n"
        f"    .l_shift = {n.l_shift},\n    .d_mult = {c_int(n.d_mult)},\n    .d_shift = {n.d_shift},\n}};\n")
    md.fp.const_structs("tl_softmax_params_t")
