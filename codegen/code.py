"""The generated source ``<p>.c``: its includes and compile-time checks, the const data
(:mod:`.params`) and the thin per-model code calling the runtime: ``reset``, ``step``, ``run``
(streaming: step-major; buffered: layer-major over the workspace) and their helpers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..lowering import STEP_MVE
from ..qmodel import QDense, QFeatureGather, QGru, QInput, QLstm, QLstmState, QSelectStep, QSoftmax, QTable
from .cformat import c_int
from .footprint import size_check
from .header import banner
from .params import ModelData, gru_initial_states, initial_states
from .plan import RECURRENT


class _Code:
    """The functions of ``<p>.c`` for one model (``md``: the const data pass)."""

    def __init__(self, md: ModelData):
        self.md = md
        self.plan = md.plan
        self.nodes = md.plan.nodes
        self.p, self.P = md.names.p, md.names.P
        self.fid, self.nid, self.describe = md.names.fid, md.names.nid, md.names.describe

    # ---- value expressions ------------------------------------------------------------------
    def len_full(self, k: int) -> str:
        """The valid length of LSTM k in a whole-sequence context (``steps``, ``len`` in scope)."""
        kind = self.plan.lens_kind(k)
        if kind == "input":
            return "len"
        if kind == "const":
            c = self.plan.const_len(k)
            return f"(steps < {c} ? steps : {c})"
        return "steps"

    def step_valid(self, k: int) -> str | None:
        """Streaming: condition for step ``t`` of LSTM k to be processed (None: always)."""
        kind = self.plan.lens_kind(k)
        if kind == "input":
            return "t < len"
        if kind == "const":
            return f"t < {self.plan.const_len(k)}"
        return None

    def sval(self, k: int) -> str:
        """Streaming: pointer to node k's value at the current step."""
        n = self.nodes[k]
        if isinstance(n, QInput):
            return "xs"
        if isinstance(n, RECURRENT):
            h = f"s->{self.fid(k)}_h[0]"
            cond = self.step_valid(k)
            return f"({cond} ? {h} : {self.nid(k)}_pad)" if cond else h
        return self.vval(k)

    def vval(self, k: int) -> str:
        """Pointer to vector node k's value: its buffer, or the LSTM h it aliases (``Plan.state_alias``)."""
        src = self.plan.state_alias(k)
        return f"s->{self.fid(src)}_h[0]" if src is not None else f"s->{self.fid(k)}_v"

    def bval(self, k: int) -> str:
        """Buffered: pointer to node k's value at step ``t``."""
        n = self.nodes[k]
        if isinstance(n, QInput):
            return "s->xin" if self.plan.input.perm else f"&x[t * {n.features}]"
        if isinstance(n, RECURRENT):
            off = self.plan.buffer_of(k)
            assert off is not None
            return f"&s->ws[{off} * {self.P}_MAX_STEPS + t * {n.features}]"
        return self.vval(k)

    def compute(self, k: int, val: Callable[[int], str]) -> str:
        """The call computing node k's value (non-LSTM, non-state) into its state vector."""
        n = self.nodes[k]
        out = f"s->{self.fid(k)}_v"
        nid = self.nid(k)
        if isinstance(n, QFeatureGather):
            return f"tl_gather_s8({val(n.src)}, {nid}_idx, {n.features}, {out});"
        if isinstance(n, QDense):
            return f"tl_dense_s8(&{nid}, {val(n.src)}, {out});"
        if isinstance(n, QTable):
            return f"tl_table_s8({nid}_table, {val(n.src)}, {n.features}, {out});"
        if isinstance(n, QSoftmax):
            return f"tl_softmax_s8(&{nid}, {val(n.src)}, {out});"
        raise TypeError(type(n).__name__)  # pragma: no cover

    def step_call(self, k: int, di: int, x: str) -> str:
        """The runtime call of one step of direction ``di`` of recurrent layer k on input ``x``: an LSTM
        updates its int8 h and int16 c, a GRU its int16 state (in ``_c``) and writes its int8 output
        (in ``_h``)."""
        nid, fid, step = self.nid(k), self.fid(k), self.md.lowered[k].step
        h, c = f"s->{fid}_h[{di}]", f"s->{fid}_c[{di}]"
        if isinstance(self.nodes[k], QGru):
            return f"{step}(&{nid}[{di}], {x}, {c}, {h}, s->scratch);"
        return f"{step}(&{nid}[{di}], {x}, {h}, {c}, s->scratch);"

    # ---- code ---------------------------------------------------------------------------------
    def is_seq(self, k: int) -> bool:
        return self.nodes[k].kind == "seq"

    def chain(self, k: int) -> list[int]:
        """Buffered: the non-base sequence nodes to compute (in order) for node k's value at t."""
        out = []
        while True:
            n = self.nodes[k]
            if isinstance(n, (QInput, *RECURRENT)):
                break
            out.append(k)
            k = n.src
        return sorted(out)

    def chain_code(self, k: int, ind: str) -> list[str]:
        lines = []
        base = k
        while not isinstance(self.nodes[base], (QInput, *RECURRENT)):
            base = self.nodes[base].src
        if isinstance(self.nodes[base], QInput) and self.plan.input.perm:
            lines.append(f"{ind}tl_gather_s8(&x[t * {self.plan.input.features}], {self.p}_in_perm, "
                         f"{self.plan.input.features}, s->xin);")
        for c in self.chain(k):
            lines.append(ind + f"/* {self.describe(c)} */")
            lines.append(ind + self.compute(c, self.bval))
        return lines

    def write_out(self, dst: str, val: str, ind: str) -> str:
        o = self.plan.output
        if o.perm:
            return f"{ind}tl_gather_s8({val}, {self.p}_out_perm, {o.features}, {dst});"
        return f"{ind}tl_copy_s8({dst}, {val}, {o.features});"

    def vec_nodes(self) -> list[int]:
        """The vector nodes vec_eval computes (not the selected steps, not the h states read in place)."""
        return [k for k in self.plan.live if not self.is_seq(k) and not isinstance(self.nodes[k], QSelectStep)
                and self.plan.state_alias(k) is None]

    def selects(self) -> list[int]:
        return self.plan.live_of(QSelectStep)

    def vec_eval_fn(self) -> list[str]:
        ks = self.vec_nodes()
        if not ks:
            return []
        L = ["/* The vector (non-sequence) nodes, from the final LSTM states and the captured steps. */",
             f"static void {self.p}_vec_eval({self.p}_state_t *s, int32_t steps, int32_t len)", "{",
             "    (void)steps;", "    (void)len;"]
        for k in ks:
            n = self.nodes[k]
            L.append(f"    /* {self.describe(k)} */")
            if isinstance(n, QLstmState):
                src = self.nodes[n.src]
                H = src.hidden_size
                sfid = self.fid(n.src)
                kind = self.plan.lens_kind(n.src)
                empty = None
                if kind == "input":
                    empty = "len == 0"
                elif kind == "const" and self.plan.const_len(n.src) == 0:
                    empty = "1"
                for di in range(src.num_directions):
                    dst = f"s->{self.fid(k)}_v + {di * H}"
                    if n.which == "h":
                        body = f"tl_copy_s8({dst}, s->{sfid}_h[{di}], {H});"
                        zp = src.zero_point
                    else:
                        body = (f"tl_requant_s16_s8(s->{sfid}_c[{di}], {H}, {c_int(n.mult[di])}, {n.shift[di]}, "
                                f"{n.zero_point}, {dst});")
                        zp = n.zero_point
                    fill = f"tl_fill_s8({dst}, {H}, {zp}); /* no step processed */"
                    if empty is None:
                        L.append("    " + body)
                    elif empty == "1":
                        L.append("    " + fill)
                    else:
                        L += [f"    if ({empty}) {{", "        " + fill, "    } else {", "        " + body, "    }"]
            else:
                L.append("    " + self.compute(k, self.vval))
        L += ["}", ""]
        return L

    def seq_step_fn(self) -> list[str]:
        L = ["/* One time step of every sequence node (streaming). xs: the step's canonical input. */",
             f"static void {self.p}_seq_step({self.p}_state_t *s, const int8_t *xs, int32_t t, int32_t len)", "{",
             "    (void)xs;", "    (void)t;", "    (void)len;"]
        for k in self.plan.live:
            n = self.nodes[k]
            if not self.is_seq(k) or isinstance(n, QInput):
                continue
            L.append(f"    /* {self.describe(k)} */")
            if isinstance(n, RECURRENT):
                fid = self.fid(k)
                call = [self.step_call(k, 0, self.sval(n.src)),
                        f"{self.P}_TRACE_STEP({k}, 0, t, s->{fid}_h[0], s->{fid}_c[0]);"]
                cond = self.step_valid(k)
                if cond:
                    L += [f"    if ({cond}) {{"] + ["        " + c for c in call] + ["    }"]
                else:
                    L += ["    " + c for c in call]
            else:
                L.append("    " + self.compute(k, self.sval))
        L += ["}", ""]
        return L

    def reset_fn(self) -> list[str]:
        L = [f"void {self.p}_reset({self.p}_state_t *s)", "{", "    s->t = 0;"]
        for k in self.plan.live_of(RECURRENT):
            if isinstance(self.nodes[k], QGru):
                L += self.reset_gru(k)
                continue
            n = self.nodes[k]
            nid, fid, H, D = self.nid(k), self.fid(k), n.hidden_size, n.num_directions
            h0, c0 = initial_states(n)
            for d in range(D):
                if np.unique(h0).size > 1:
                    L.append(f"    tl_copy_s8(s->{fid}_h[{d}], &{nid}_h0[{d * H}], {H});")
                else:
                    L.append(f"    tl_fill_s8(s->{fid}_h[{d}], {H}, {int(h0.reshape(-1)[0])});")
                if np.unique(c0).size > 1:
                    L.append(f"    for (int32_t j = 0; j < {H}; ++j) {{")
                    L.append(f"        s->{fid}_c[{d}][j] = {nid}_c0[{d * H} + j];")
                    L.append("    }")
                else:
                    L.append(f"    for (int32_t j = 0; j < {H}; ++j) {{")
                    L.append(f"        s->{fid}_c[{d}][j] = {int(c0.reshape(-1)[0])};")
                    L.append("    }")
        L += ["}", ""]
        return L

    def reset_gru(self, k: int) -> list[str]:
        """A GRU's reset: the initial state (int16) and the output at its zero point (what a sequence
        of length 0 reports)."""
        n = self.nodes[k]
        nid, fid, H = self.nid(k), self.fid(k), n.hidden_size
        h0 = gru_initial_states(n)
        L = []
        for d in range(n.num_directions):
            L.append(f"    tl_fill_s8(s->{fid}_h[{d}], {H}, {n.zero_point});")
            L.append(f"    for (int32_t j = 0; j < {H}; ++j) {{")
            if np.unique(h0).size > 1:
                L.append(f"        s->{fid}_c[{d}][j] = {nid}_h0[{d * H} + j];")
            else:
                L.append(f"        s->{fid}_c[{d}][j] = {int(h0.reshape(-1)[0])};")
            L.append("    }")
        return L

    def select_target(self, k: int) -> str:
        idx = self.nodes[k].index
        return f"steps - {-idx}" if idx < 0 else str(idx)

    def run_prologue(self, fn: str, with_len: bool) -> list[str]:
        o = self.plan.output
        out_count = f"steps * {o.features}" if self.plan.output_seq else str(o.features)
        bad = ["steps < 1"]
        if not self.plan.streaming:
            bad.append(f"steps > {self.P}_MAX_STEPS")
        for k in self.selects():
            t = self.select_target(k)
            bad.append(f"{t} < 0" if self.nodes[k].index < 0 else f"steps <= {t}")
        args = "int32_t steps, int32_t len" if with_len else "int32_t steps"
        L = [f"void {fn}({self.p}_state_t *s, const int8_t *x, {args}, int8_t *y)", "{"]
        if not with_len:
            L.append("    const int32_t len = steps;")
        zp = self.nodes[-1].zero_point
        L += [f"    {self.p}_reset(s);", f"    if ({' || '.join(bad)}) {{"]
        if self.plan.output_seq:
            L += ["        if (steps > 0) {", f"            tl_fill_s8(y, {out_count}, {zp});", "        }"]
        else:
            L.append(f"        tl_fill_s8(y, {out_count}, {zp});")
        L += ["        return;", "    }"]
        if with_len:
            L += ["    if (len < 0) {", "        len = 0;", "    } else if (len > steps) {", "        len = steps;",
                  "    }"]
        L.append("    (void)len;")
        return L

    def run_streaming(self, fn: str, with_len: bool) -> list[str]:
        F = self.plan.input.features
        L = self.run_prologue(fn, with_len)
        L.append("    for (int32_t t = 0; t < steps; ++t) {")
        if self.plan.input.perm:
            L.append(f"        tl_gather_s8(&x[t * {F}], {self.p}_in_perm, {F}, s->xin);")
            L.append(f"        {self.p}_seq_step(s, s->xin, t, len);")
        else:
            L.append(f"        {self.p}_seq_step(s, &x[t * {F}], t, len);")
        for k in self.selects():
            n = self.nodes[k]
            L += [f"        if (t == {self.select_target(k)}) {{ /* {self.describe(k)} */",
                  f"            tl_copy_s8(s->{self.fid(k)}_v, {self.sval(n.src)}, {n.features});", "        }"]
        if self.plan.output_seq:
            L.append(self.write_out(f"&y[t * {self.plan.output.features}]", self.sval(self.plan.out_index),
                                    "        "))
        L.append("    }")
        if not self.plan.output_seq:
            if self.vec_nodes():
                L.append(f"    {self.p}_vec_eval(s, steps, len);")
            L.append(self.write_out("y", self.vval(self.plan.out_index), "    "))
        L += ["}", ""]
        return L

    def run_buffered(self, fn: str, with_len: bool) -> list[str]:
        L = self.run_prologue(fn, with_len)
        for k in self.plan.live_of(RECURRENT):
            n = self.nodes[k]
            fid, H, F = self.fid(k), n.hidden_size, n.features
            off = self.plan.buffer_of(k)
            L.append(f"    {{ /* {self.describe(k)} */")
            L.append(f"        const int32_t n_valid = {self.len_full(k)};")
            for di, d in enumerate(n.directions):
                L.append(f"        for (int32_t i = 0; i < n_valid; ++i) {{ /* direction {di}: "
                         f"{'reverse' if d.reverse else 'forward'} */")
                L.append(f"            const int32_t t = {'n_valid - 1 - i' if d.reverse else 'i'};")
                L.append("            (void)t;")
                L += self.chain_code(n.src, "            ")
                L.append(f"            {self.step_call(k, di, self.bval(n.src))}")
                L.append(f"            {self.P}_TRACE_STEP({k}, {di}, t, s->{fid}_h[{di}], s->{fid}_c[{di}]);")
                if off is not None:
                    L.append(f"            tl_copy_s8(&s->ws[{off} * {self.P}_MAX_STEPS + t * {F} + {di * H}], "
                             f"s->{fid}_h[{di}], {H});")
                L.append("        }")
                if off is not None:
                    L += ["        for (int32_t t = n_valid; t < steps; ++t) {",
                          f"            tl_fill_s8(&s->ws[{off} * {self.P}_MAX_STEPS + t * {F} + {di * H}], "
                          f"{H}, {n.zero_point});",
                          "        }"]
            L.append("    }")
        for k in self.selects():
            n = self.nodes[k]
            L.append(f"    {{ /* {self.describe(k)} */")
            L.append(f"        const int32_t t = {self.select_target(k)};")
            L += self.chain_code(n.src, "        ")
            L.append(f"        tl_copy_s8(s->{self.fid(k)}_v, {self.bval(n.src)}, {n.features});")
            L.append("    }")
        out = self.plan.out_index
        if self.plan.output_seq:
            L.append("    for (int32_t t = 0; t < steps; ++t) {")
            L += self.chain_code(out, "        ")
            L.append(self.write_out(f"&y[t * {self.plan.output.features}]", self.bval(out), "        "))
            L.append("    }")
        else:
            if self.vec_nodes():
                L.append(f"    {self.p}_vec_eval(s, steps, len);")
            L.append(self.write_out("y", self.vval(out), "    "))
        L += ["}", ""]
        return L

    def direct_step_output(self, out: int) -> str | None:
        """step(): the value to copy straight into ``y`` when the output node is only a copy of a forward
        LSTM's h at this step (Y_h, or a selected step of Y) that no other node reads: one copy, not two
        (the buffer of the node is then not written by step(); run() and its reads are unchanged)."""
        if self.plan.output_seq or self.selects() + self.vec_nodes() != [out]:
            return None
        n = self.nodes[out]
        if isinstance(n, QSelectStep):
            return self.sval(n.src)
        if isinstance(n, QLstmState) and n.which == "h" and isinstance(src := self.nodes[n.src], QLstm) \
                and src.num_directions == 1 and self.plan.lens_kind(n.src) != "const":
            return f"s->{self.fid(n.src)}_h[0]"
        return None

    def step_fn(self) -> list[str]:
        F = self.plan.input.features
        L = [f"void {self.p}_step({self.p}_state_t *s, const int8_t *x, int8_t *y)", "{",
             "    const int32_t t = s->t;", "    const int32_t len = INT32_MAX;",
             "    const int32_t steps = INT32_MAX;", "    (void)len;", "    (void)steps;"]
        if self.plan.input.perm:
            L += [f"    tl_gather_s8(x, {self.p}_in_perm, {F}, s->xin);", f"    {self.p}_seq_step(s, s->xin, t, len);"]
        else:
            L.append(f"    {self.p}_seq_step(s, x, t, len);")
        out = self.plan.out_index
        direct = self.direct_step_output(out)
        if direct is not None:  # the output is one LSTM's h (or its selected step) and nothing else reads it
            L.append(self.write_out("y", direct, "    ") + f" /* {self.describe(out)} */")
            L += ["    if (t < INT32_MAX) {", "        s->t = t + 1;", "    }", "}", ""]
            return L
        for k in self.selects():
            n = self.nodes[k]
            L.append(f"    tl_copy_s8(s->{self.fid(k)}_v, {self.sval(n.src)}, {n.features}); /* {self.describe(k)} */")
        if self.plan.output_seq:
            L.append(self.write_out("y", self.sval(out), "    "))
        else:
            if self.vec_nodes():
                L.append(f"    {self.p}_vec_eval(s, steps, len);")
            L.append(self.write_out("y", self.vval(out), "    "))
        L += ["    if (t < INT32_MAX) {", "        s->t = t + 1;", "    }", "}", ""]
        return L

    def source(self) -> str:
        p, P, plan = self.p, self.P, self.plan
        L = [banner(plan.model, f"{p}.c"), f'#include "{p}.h"', '#include "tl_gru.h"', '#include "tl_heads.h"',
             '#include "tl_lstm.h"', "",
             f"#ifdef {P}_TRACE",
             f"#define {self.P}_TRACE_STEP(node, dir, t, h, c) {p}_trace((node), (dir), (t), (h), (c))",
             "#else", f"#define {self.P}_TRACE_STEP(node, dir, t, h, c) ((void)0)", "#endif", "",
             f"typedef char {p}_ram_bytes_check[(sizeof({p}_state_t) <= {P}_RAM_BYTES) ? 1 : -1];",
             size_check(p), ""]
        L += self.mve_guard()
        L.append("\n".join(self.md.consts.blocks))
        if plan.streaming:
            L += self.seq_step_fn()
        L += self.vec_eval_fn()
        L += self.reset_fn()
        if plan.has_step:
            L += self.step_fn()
        runner = self.run_streaming if plan.streaming else self.run_buffered
        if plan.lens_input:
            L += runner(f"{p}_run_lens", True)
            L += [f"void {p}_run({p}_state_t *s, const int8_t *x, int32_t steps, int8_t *y)", "{",
                  f"    {p}_run_lens(s, x, steps, steps, y);", "}", ""]
        else:
            L += runner(f"{p}_run", False)
        return "\n".join(L)


    def mve_guard(self) -> list[str]:
        """A model with Helium-layout layers (generated for cortex-m55): their step's header, and a
        compile error on any build without the MVE kernels (tl_lstm_mve.h)."""
        if not any(lw.step == STEP_MVE for lw in self.md.lowered.values()):
            return []
        return ['#include "tl_lstm_mve.h"', "#if !defined(TL_KERNEL_MVE)",
                f'#error "{self.p}.c was generated for the Helium (MVE) kernels (target cortex-m55): compile it for '
                'Armv8.1-M with MVE (-mcpu=cortex-m55) without TL_PORTABLE, or generate it without that target"',
                "#endif", ""]


def source(md: ModelData) -> str:
    """The text of ``<p>.c``."""
    return _Code(md).source()
