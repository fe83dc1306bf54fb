"""Sizes of a Cortex-M build: sections, per-symbol sizes (``arm-none-eabi-size`` / ``nm``), stack
frames (gcc's ``.su`` files) and the worst-case stack of a call chain (gcc's ``.ci`` call graphs)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .crossbuild import TargetBuild
from .toolchain import ToolchainError, check_output, require

NM = "arm-none-eabi-nm"
SIZE = "arm-none-eabi-size"

_SECTION_KIND = (
    (".text", "text"), (".rodata", "rodata"), (".ARM.extab", "rodata"), (".ARM.exidx", "rodata"),
    (".init_array", "rodata"), (".fini_array", "rodata"), (".data", "data"), (".bss", "bss"),
)
_NM_KIND = {"t": "text", "r": "rodata", "d": "data", "b": "bss"}


@dataclass(frozen=True)
class SymbolSize:
    name: str
    size: int  # bytes
    kind: str  # "text" | "rodata" | "data" | "bss"


@dataclass(frozen=True)
class StackFrame:
    function: str
    bytes: int
    qualifier: str  # gcc's "static", "dynamic" or "dynamic,bounded"
    source: str  # "file.c:line:col"


@dataclass(frozen=True)
class StackBound:
    bytes: int  # worst-case stack of the deepest call chain found
    path: tuple[str, ...]  # that chain, root first
    complete: bool  # False if the chain calls code without stack data, recurses or calls indirectly
    unknown: tuple[str, ...]  # callees without stack data (library code, indirect calls)


@dataclass(frozen=True)
class Footprint:
    sections: dict[str, int]  # "text", "rodata", "data", "bss" -> bytes (flash = text+rodata+data)
    symbols: tuple[SymbolSize, ...]  # largest last (nm --size-sort)
    stack: tuple[StackFrame, ...]  # one per function with a .su entry
    callgraph: dict[str, tuple[int | None, tuple[str, ...]]] = field(default_factory=dict, repr=False)

    @property
    def flash(self) -> int:
        return self.sections["text"] + self.sections["rodata"] + self.sections["data"]

    @property
    def ram(self) -> int:
        return self.sections["data"] + self.sections["bss"]

    @property
    def max_frame(self) -> int:
        """The largest single stack frame (0 without .su data)."""
        return max((f.bytes for f in self.stack), default=0)

    def symbol_bytes(self, prefix: str = "", kind: str | None = None) -> int:
        """Total size of the symbols whose name starts with ``prefix`` (and of ``kind``)."""
        return sum(s.size for s in self.symbols if s.name.startswith(prefix) and (kind is None or s.kind == kind))

    def stack_bound(self, root: str) -> StackBound:
        """Worst-case stack of ``root`` and everything it calls, from gcc's call-graph files."""
        if root not in self.callgraph:
            raise ToolchainError(f"function {root!r} is not in the call graph (built with -fcallgraph-info?)")
        unknown: set[str] = set()
        complete = True
        memo: dict[str, tuple[int, tuple[str, ...]]] = {}

        def walk(fn: str, active: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
            nonlocal complete
            if fn in memo:
                return memo[fn]
            frame, callees = self.callgraph.get(fn, (None, ()))
            if frame is None and fn in ASM_LEAF_FRAMES:
                frame, callees = ASM_LEAF_FRAMES[fn], ()
            if frame is None and fn in ASM_FRAMES:
                frame, callees = ASM_FRAMES[fn]
            if frame is None:
                unknown.add(fn)
                complete = False
                return 0, (fn,)
            best: tuple[int, tuple[str, ...]] = (0, ())
            for c in callees:
                if c in active:
                    complete = False  # recursion: the bound covers one pass only
                    continue
                sub = walk(c, active + (c,))
                if sub[0] > best[0] or not best[1]:
                    best = sub
            memo[fn] = (frame + best[0], (fn,) + best[1])
            return memo[fn]

        total, path = walk(root, (root,))
        return StackBound(total, path, complete, tuple(sorted(unknown)))


#: Stack bytes of the runtime's hand-written assembly leaf functions (codegen/runtime/tl_kernels_v7em.c,
#: tl_kernels_v6m.c: their `push` lists, the larger of the two cores'), which gcc's call-graph files
#: name but cannot measure.
ASM_LEAF_FRAMES = {"tl_mac4_w16": 40, "tl_mac4_w8": 40}
#: tl_lstm_step_fast is assembly on Armv7E-M (codegen/runtime/tl_kernels_v7em_unit.c: `push {r4-r11, lr}`
#: and `sub sp, #220`, calling nothing) and on Armv6-M (tl_kernels_v6m_unit.c, a smaller frame).
ASM_LEAF_FRAMES["tl_lstm_step_fast"] = 256
#: The same for hand-written assembly that calls other functions: (its frame, what it calls).
#: tl_gru_blocks_v7em, tl_gru_blocks0_v7em (codegen/runtime/tl_gru_v7em.c): `push {r4-r11, lr}` and
#: `sub sp, #148` resp. `#180`.
ASM_FRAMES: dict[str, tuple[int, tuple[str, ...]]] = {
    "tl_gru_blocks_v7em": (184, ("tl_mac4_w16", "tl_mac4_w8")),
    "tl_gru_blocks0_v7em": (216, ("tl_mac4_w16", "tl_mac4_w8")),
}
#: The Helium unit loops (codegen/runtime/tl_kernels_mve.c): `push {r4-r11, lr}` and `vpush {d8-d15}`.
ASM_LEAF_FRAMES.update({"tl_mve_units": 100, "tl_mve_units_trace": 100})


def _section_sizes(paths: Sequence[Path], timeout: float) -> dict[str, int]:
    totals = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    out = check_output([SIZE, "-A", "-d", *map(str, paths)], SIZE, timeout)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        name = parts[0]
        for prefix, kind in _SECTION_KIND:
            if name == prefix or name.startswith(prefix + "."):
                totals[kind] += int(parts[1])
                break
    return totals


def _symbol_sizes(paths: Sequence[Path], timeout: float) -> tuple[SymbolSize, ...]:
    out = check_output([NM, "--size-sort", "-S", *map(str, paths)], NM, timeout)
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        kind = _NM_KIND.get(parts[2].lower())
        if kind is not None:
            syms.append(SymbolSize(parts[3], int(parts[1], 16), kind))
    return tuple(sorted(syms, key=lambda s: (s.size, s.name)))


def _stack_frames(su_files: Sequence[Path]) -> tuple[StackFrame, ...]:
    frames = []
    for su in su_files:
        for line in su.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) != 3:
                continue
            loc, _, fn = parts[0].rpartition(":")
            frames.append(StackFrame(fn, int(parts[1]), parts[2], loc))
    return tuple(frames)


_CI_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?\\n[^"]*?(?:\\n(\d+) bytes \(([^)]*)\))?"')
_CI_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def _callgraph(ci_files: Sequence[Path]) -> dict[str, tuple[int | None, tuple[str, ...]]]:
    frames: dict[str, int] = {}
    edges: dict[str, list[str]] = {}
    for ci in ci_files:
        text = ci.read_text()
        for m in _CI_NODE.finditer(text):
            if m.group(2) is not None:
                frames[m.group(1)] = int(m.group(2))
            edges.setdefault(m.group(1), [])
        for m in _CI_EDGE.finditer(text):
            callees = edges.setdefault(m.group(1), [])
            if m.group(2) not in callees:
                callees.append(m.group(2))
    return {fn: (frames.get(fn), tuple(cs)) for fn, cs in edges.items()}


def sizes(
    paths: TargetBuild | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    stack_usage: Sequence[str | os.PathLike] = (),
    timeout: float = 60,
) -> Footprint:
    """Sizes of an ELF or of object files (summed), with per-symbol sizes and stack frames.

    Give a :class:`TargetBuild` to size its ELF with the .su/.ci files of all its objects;
    for object files, the .su/.ci files next to them are used. For a model-only figure,
    size the model's object: runtime functions are named ``tl_*``, model data ``<prefix>_*``
    (see :meth:`Footprint.symbol_bytes`).
    """
    require(SIZE, NM)
    if isinstance(paths, TargetBuild):
        files = [paths.elf]
        su = list(paths.stack_usage)
        ci = list(paths.callgraph)
    else:
        files = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
        su = [f.with_suffix(".su") for f in files if f.suffix == ".o"]
        ci = [f.with_suffix(".ci") for f in files if f.suffix == ".o"]
    for f in files:
        if not f.is_file():
            raise ToolchainError(f"{f} does not exist")
    su = [Path(p) for p in stack_usage] + [p for p in su if p.is_file()]
    ci = [p for p in ci if p.is_file()]
    return Footprint(_section_sizes(files, timeout), _symbol_sizes(files, timeout), _stack_frames(su),
                     _callgraph(ci))
