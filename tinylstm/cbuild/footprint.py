"""What one generated model costs in bytes on a core, from its linked harness build.

:func:`model_footprint` splits a build's size into runtime code, model code, weights and tables,
library routines, state RAM and worst-case stack, from the ELF's symbol table (only code
reachable from the harness counts) and gcc's call-graph files (:mod:`.elfsize`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .cores import BEGIN_MARKER, END_MARKER
from .crossbuild import TargetBuild
from .elfsize import sizes
from .toolchain import ToolchainError


@dataclass(frozen=True)
class TargetFootprint:
    """Bytes of one generated model on one core (linked ELF, unused code dropped by --gc-sections)."""

    target: str
    opt: str
    runtime_text: int  # tl_* code (the hand-written runtime; the two count markers excluded)
    model_text: int  # <prefix>_* code (reset, step, run and their static helpers)
    model_rodata: int  # <prefix>_* const data: weights, per-row constants, tables, params
    library_text: int  # compiler support routines the model calls (e.g. __aeabi_lmul on M0+)
    library_calls: tuple[str, ...]  # their names
    state_bytes: int  # sizeof(<prefix>_state_t): h, c, scratch, heads, sequence workspace
    scratch_bytes: int  # of which the per-step scratch (new h of one LSTM step)
    stack_bytes: int  # worst-case stack of <prefix>_run (or the deeper of run/step), from .su/.ci
    stack_path: tuple[str, ...]  # that call chain
    stack_complete: bool  # False if the chain reaches code without stack data (library routines)

    @property
    def code_bytes(self) -> int:
        return self.runtime_text + self.model_text + self.library_text

    @property
    def flash_bytes(self) -> int:
        return self.code_bytes + self.model_rodata

    @property
    def ram_bytes(self) -> int:
        return self.state_bytes + self.stack_bytes

    def to_dict(self) -> dict[str, object]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["library_calls"] = list(self.library_calls)
        d["stack_path"] = list(self.stack_path)
        d.update(code_bytes=self.code_bytes, flash_bytes=self.flash_bytes, ram_bytes=self.ram_bytes)
        return d


def model_footprint(build: TargetBuild, opt: str, prefix: str, roots: Sequence[str], header: str,
                    state_symbol: str) -> TargetFootprint:
    """The footprint of the model generated with ``prefix`` in ``build``: the stack bound is the
    deepest of ``roots`` (e.g. ``<prefix>_run``, ``<prefix>_step``), the state the size of the
    harness's ``state_symbol`` (one ``<prefix>_state_t``), the scratch read from the generated
    ``header`` text."""
    fp = sizes(build)
    p = prefix
    markers = {BEGIN_MARKER, END_MARKER}
    runtime_text = sum(s.size for s in fp.symbols if s.kind == "text" and s.name.startswith("tl_")
                       and s.name not in markers)
    model_text = fp.symbol_bytes(f"{p}_", "text")
    model_rodata = fp.symbol_bytes(f"{p}_", "rodata") + fp.symbol_bytes(f"{p}_", "data")
    bounds = [fp.stack_bound(r) for r in roots if r in fp.callgraph]
    if not bounds:
        raise ToolchainError(f"{roots[0]} is missing from the call graph of {build.elf.name}")
    worst = max(bounds, key=lambda b: b.bytes)
    lib = sorted({u for b in bounds for u in b.unknown})
    sym_size = {s.name: s.size for s in fp.symbols if s.kind == "text"}
    state = next((s.size for s in fp.symbols if s.name == state_symbol), 0)
    scratch = 0
    m = re.search(r"int16_t scratch\[(\d+)\];", header)
    if m:
        scratch = 2 * int(m.group(1))
    path = tuple(fn.rpartition(":")[2] for fn in worst.path)  # gcc names static functions "file.c:fn"
    return TargetFootprint(build.target.name, opt, runtime_text, model_text, model_rodata,
                           sum(sym_size.get(u, 0) for u in lib), tuple(lib), state, scratch,
                           worst.bytes, path, worst.complete)


__all__ = ["TargetFootprint", "model_footprint"]
