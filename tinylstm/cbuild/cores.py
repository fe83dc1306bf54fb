"""Build C for emulated Cortex-M boards, run it under QEMU, count instructions, measure size.

The pieces, each one function:

- :data:`TARGETS` — one :class:`Target` per core: compiler flags, QEMU board, memory map and
  linker script (the C start-up, linker scripts and QEMU plugin live in ``codegen/target/``).
- :func:`build` — arm-none-eabi-gcc, strict warnings, our start-up, newlib-nano + semihosting.
- :func:`run` — ``qemu-system-arm`` with semihosting under a timeout; main's return value is
  the exit code, a fault handler's distinctive exit code is reported as the fault.
- :func:`count_instructions` — the same run with our TCG plugin counting the instructions
  executed in each ``tl_bench_begin()`` .. ``tl_bench_end()`` window (exact, repeatable).
- :func:`sizes` — section sizes, per-symbol sizes and stack usage of an ELF or objects.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..codegen.runtime_files import TARGET_DIR
from .toolchain import ToolchainError, missing_reason

CC = "arm-none-eabi-gcc"
NM = "arm-none-eabi-nm"
SIZE = "arm-none-eabi-size"
QEMU = "qemu-system-arm"
HOST_CC = "gcc"

#: Compile flags of every target build (the brief's strict set, plus size/stack reporting).
BASE_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
               "-ffunction-sections", "-fdata-sections", "-fstack-usage", "-fcallgraph-info=su")
LINK_FLAGS = ("-nostartfiles", "--specs=nano.specs", "--specs=rdimon.specs", "-Wl,--gc-sections")
OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3", "-Os", "-Oz", "-Og")

#: Exit codes of the start-up's fault handlers (tl_target.h); main should return 0..127.
FAULT_EXIT_CODES = {
    241: "NMI",
    242: "HardFault",
    243: "MemManage",
    244: "BusFault",
    245: "UsageFault",
    246: "SecureFault",
    247: "unexpected interrupt",
}
STARTUP_SOURCE = "tl_startup.c"
PLUGIN_SOURCE = "insn_count.c"
BEGIN_MARKER = "tl_bench_begin"
END_MARKER = "tl_bench_end"


def target_dir() -> Path:
    """Folder of the start-up, linker scripts, ``tl_target.h`` and the plugin source."""
    if (TARGET_DIR / STARTUP_SOURCE).is_file():
        return TARGET_DIR
    raise ToolchainError(f"tinylstm's target files ({STARTUP_SOURCE}, *.ld) are missing from the installation")


# ---- targets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryRegion:
    origin: int
    length: int  # bytes


@dataclass(frozen=True)
class Target:
    name: str  # "cortex-m4"
    cpu_flags: tuple[str, ...]  # for compiling and linking
    board: str  # QEMU -M
    flash: MemoryRegion  # code, constants, .data image
    ram: MemoryRegion  # .data, .bss, heap, stack (stack at the top)
    linker_script: str  # file name in target_dir()
    note: str = ""

    @property
    def linker_script_path(self) -> Path:
        return target_dir() / self.linker_script


def _t(name: str, cpu: str, float_abi: str, board: str, flash: tuple[int, int], ram: tuple[int, int],
       note: str) -> Target:
    return Target(name, (f"-mcpu={cpu}", "-mthumb", f"-mfloat-abi={float_abi}"), board,
                  MemoryRegion(*flash), MemoryRegion(*ram), f"{board}.ld", note)


_MB = 1 << 20
_KB = 1 << 10
TARGETS: dict[str, Target] = {t.name: t for t in (
    _t("cortex-m0plus", "cortex-m0plus", "soft", "mps2-an385", (0, 4 * _MB), (0x20000000, 4 * _MB),
       "Armv6-M code on the Cortex-M3 board (same instruction counts as on a real M0+ board)"),
    _t("cortex-m3", "cortex-m3", "soft", "mps2-an385", (0, 4 * _MB), (0x20000000, 4 * _MB), "Armv7-M"),
    _t("cortex-m4", "cortex-m4", "soft", "mps2-an386", (0, 4 * _MB), (0x20000000, 4 * _MB),
       "Armv7E-M with the DSP instructions (SMLAD); soft-float ABI, the FPU stays off"),
    _t("cortex-m7", "cortex-m7", "soft", "mps2-an500", (0, 4 * _MB), (0x20000000, 4 * _MB),
       "Armv7E-M; soft-float ABI"),
    _t("cortex-m33", "cortex-m33", "soft", "mps2-an505", (0x10000000, 4 * _MB), (0x38000000, 2 * _MB),
       "Armv8-M Mainline + DSP, running Secure; soft-float ABI"),
    _t("cortex-m55", "cortex-m55", "hard", "mps3-an547", (0x10000000, 512 * _KB), (0x30000000, 512 * _KB),
       "Armv8.1-M with MVE (Helium); hard-float ABI, the start-up enables FPU/MVE; code in ITCM, RAM in DTCM"),
)}


def get_target(target: str | Target) -> Target:
    """The :class:`Target` for a name such as ``"cortex-m4"`` (a Target passes through)."""
    if isinstance(target, Target):
        return target
    try:
        return TARGETS[target]
    except KeyError:
        raise ToolchainError(f"unknown target {target!r}; supported: {', '.join(TARGETS)}") from None


def _require(*tools: str) -> None:
    reason = missing_reason(*tools)
    if reason is not None:
        raise ToolchainError(reason)


def _check_run(cmd: list[str], what: str, timeout: float, cwd: Path | None = None) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{what} did not finish within {timeout:g} s: {' '.join(cmd)}") from None
    if res.returncode != 0:
        raise ToolchainError(f"{what} failed (exit {res.returncode}): {' '.join(cmd)}\n{res.stderr.strip()}")
    return res.stdout


# ---- build -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetBuild:
    target: Target
    elf: Path
    objects: tuple[Path, ...]  # one per source, the start-up last
    stack_usage: tuple[Path, ...]  # gcc -fstack-usage .su files, one per object
    callgraph: tuple[Path, ...]  # gcc -fcallgraph-info=su .ci files, one per object
    map_file: Path
    commands: tuple[tuple[str, ...], ...]  # every compiler invocation, in order


def _define_flags(defines: Mapping[str, str | int | None] | Sequence[str]) -> list[str]:
    if isinstance(defines, Mapping):
        return [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in defines.items()]
    return [f"-D{d}" for d in defines]


def build(
    target: str | Target,
    sources: Sequence[str | os.PathLike],
    out_elf: str | os.PathLike,
    *,
    include_dirs: Sequence[str | os.PathLike] = (),
    opt: str = "-Os",
    defines: Mapping[str, str | int | None] | Sequence[str] = (),
    extra_cflags: Sequence[str] = (),
    stack_size: int | None = None,
    timeout: float = 120,
) -> TargetBuild:
    """Compile ``sources`` with our start-up into ``out_elf`` for ``target``.

    Objects, .su/.ci files and the link map go to ``<out_elf>.build/``. The start-up's
    folder is on the include path (for ``tl_target.h``). ``stack_size`` (bytes, a multiple
    of 256) overrides the 64 KB main-stack reserve; overflowing it faults ("stack-overflow"
    in :attr:`RunResult.fault`). ``extra_cflags`` could be ``toolchain.STRICT_FLAGS`` (the
    start-up compiles cleanly with them). A compiler error raises :class:`ToolchainError`
    with gcc's messages.
    """
    t = get_target(target)
    _require(CC)
    if stack_size is not None and (stack_size <= 0 or stack_size % 256 != 0):
        raise ToolchainError(f"stack_size must be a positive multiple of 256 bytes, not {stack_size}")
    if opt not in OPT_LEVELS:
        raise ToolchainError(f"unsupported optimisation level {opt!r}; use one of {', '.join(OPT_LEVELS)}")
    tdir = target_dir()
    elf = Path(out_elf).resolve()
    obj_dir = elf.with_name(elf.name + ".build")
    obj_dir.mkdir(parents=True, exist_ok=True)
    srcs = [Path(s).resolve() for s in sources] + [tdir / STARTUP_SOURCE]
    cflags = [*t.cpu_flags, opt, *BASE_CFLAGS, *_define_flags(defines), *extra_cflags, "-I", str(tdir)]
    for d in include_dirs:
        cflags += ["-I", str(Path(d).resolve())]
    commands: list[tuple[str, ...]] = []
    objects: list[Path] = []
    used: set[str] = set()
    for src in srcs:
        if not src.is_file():
            raise ToolchainError(f"source file {src} does not exist")
        stem = src.stem
        while stem in used:
            stem += "_"
        used.add(stem)
        obj = obj_dir / f"{stem}.o"
        cmd = [CC, *cflags, "-c", str(src), "-o", str(obj)]
        _check_run(cmd, f"{CC} ({t.name}, {src.name})", timeout)
        commands.append(tuple(cmd))
        objects.append(obj)
    map_file = obj_dir / (elf.stem + ".map")
    link = [CC, *t.cpu_flags, opt, *LINK_FLAGS, "-L", str(tdir), "-T", t.linker_script,
            f"-Wl,-Map={map_file}"]
    if stack_size is not None:
        link.append(f"-Wl,--defsym=__tlboot_stack_size={int(stack_size)}")
    link += [str(o) for o in objects] + ["-o", str(elf)]
    _check_run(link, f"{CC} link ({t.name})", timeout)
    commands.append(tuple(link))
    return TargetBuild(t, elf, tuple(objects), tuple(o.with_suffix(".su") for o in objects),
                       tuple(o.with_suffix(".ci") for o in objects), map_file, tuple(commands))


# ---- symbols -----------------------------------------------------------------------------------


def symbol_addresses(elf: str | os.PathLike, timeout: float = 30) -> dict[str, int]:
    """Defined symbols of an ELF -> address (Thumb bit cleared)."""
    _require(NM)
    out = _check_run([NM, str(elf)], NM, timeout)
    addrs: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            addrs[parts[2]] = int(parts[0], 16) & ~1
    return addrs


# ---- the counting plugin -----------------------------------------------------------------------


def cache_dir() -> Path:
    """``$TINYLSTM_CACHE_DIR``, else ``$XDG_CACHE_HOME/tinylstm``, else ``~/.cache/tinylstm``."""
    env = os.environ.get("TINYLSTM_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "tinylstm" if xdg else Path.home() / ".cache" / "tinylstm"


def plugin_path(timeout: float = 120) -> Path:
    """The instruction-counting QEMU plugin, built with host gcc on first use (then cached).

    The file name carries a hash of the plugin source and the host compiler, so an edited
    source or a new compiler gets a fresh build; the build is written atomically.
    """
    _require(HOST_CC)
    src = target_dir() / PLUGIN_SOURCE
    cc_version = _check_run([HOST_CC, "-dumpfullversion"], HOST_CC, timeout).strip()
    digest = hashlib.sha256(src.read_bytes() + cc_version.encode()).hexdigest()[:16]
    out_dir = cache_dir() / "qemu-plugin"
    so = out_dir / f"insn_count-{digest}.so"
    if so.is_file():
        return so
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError:  # unwritable home: fall back to a per-user temporary folder
        out_dir = Path(tempfile.gettempdir()) / f"tinylstm-cache-{os.getuid()}" / "qemu-plugin"
        so = out_dir / so.name
        if so.is_file():
            return so
        out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        _check_run([HOST_CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-shared", "-fPIC",
                    "-fvisibility=hidden", str(src), "-o", tmp], f"{HOST_CC} (QEMU plugin)", timeout)
        os.replace(tmp, so)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return so


# ---- run -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    count: int  # instructions executed between tl_bench_begin() and tl_bench_end(); empty window = 0
    depth: int  # 0 = outermost; a window opened inside another has depth 1, ...


@dataclass(frozen=True)
class RunResult:
    returncode: int  # main's return value, a fault code (FAULT_EXIT_CODES), or < 0 if QEMU died of a signal
    stdout: str  # the program's semihosting stdout
    stderr: str  # QEMU's messages, the program's stderr and fault reports
    command: tuple[str, ...]
    fault: str | None = None  # "HardFault pc=0x... lr=0x..." / "Lockup ..." when the program crashed
    windows: tuple[Window, ...] = ()  # when counted, in the order the windows were opened
    total_instructions: int | None = None  # when counted: every instruction of the run

    @property
    def counts(self) -> list[int]:
        return [w.count for w in self.windows]


def _qemu_opt(value: str) -> str:
    """Escape a value inside a QEMU -option list (commas are doubled)."""
    return value.replace(",", ",,")


def _fault_of(returncode: int, stderr: str) -> str | None:
    m = re.search(r"tinylstm-fault: (.*)", stderr)
    if m and returncode in FAULT_EXIT_CODES:
        return m.group(1).strip()
    if "Lockup" in stderr:
        line = next(ln for ln in stderr.splitlines() if "Lockup" in ln)
        return f"Lockup (fault while handling a fault): {line.strip()}"
    if returncode in FAULT_EXIT_CODES:
        return FAULT_EXIT_CODES[returncode]
    return None


def _parse_counts(text: str) -> tuple[tuple[Window, ...], int | None]:
    windows: list[Window] = []
    total = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "total":
            total = int(parts[1])
        elif parts[0] == "overflow":
            raise ToolchainError("instruction counting: windows nested deeper than 64 or out of memory")
        else:
            windows.append(Window(int(parts[0]), int(parts[1])))
    return tuple(windows), total


def run(
    target: str | Target,
    elf: str | os.PathLike,
    args: Sequence[str] = (),
    *,
    cwd: str | os.PathLike | None = None,
    timeout: float = 30,
    count: bool = False,
    check: bool = False,
) -> RunResult:
    """Run ``elf`` on ``target``'s QEMU board; ``args`` become argv[1:].

    The program reads and writes host files through semihosting, relative to ``cwd``.
    Arguments cannot contain whitespace (semihosting passes one space-separated line).
    ``count=True`` loads the instruction-counting plugin (see :func:`count_instructions`).
    ``check=True`` raises :class:`ToolchainError` unless the exit code is 0. A run longer
    than ``timeout`` seconds is killed and raises :class:`ToolchainError`.
    """
    t = get_target(target)
    _require(QEMU)
    elf_path = Path(elf).resolve()
    if not elf_path.is_file():
        raise ToolchainError(f"ELF file {elf_path} does not exist")
    for a in args:
        if not a or any(c.isspace() for c in a):
            raise ToolchainError(f"program argument {a!r} is empty or contains whitespace; "
                                 "semihosting passes arguments as one space-separated line")
    argv0 = elf_path.name if not any(c.isspace() for c in elf_path.name) else "prog"
    semi = ",".join(["enable=on", "target=native"] + [f"arg={_qemu_opt(a)}" for a in (argv0, *args)])
    cmd = [QEMU, "-M", t.board, "-display", "none", "-semihosting-config", semi, "-kernel", str(elf_path)]
    with tempfile.TemporaryDirectory(prefix="tinylstm-qemu-") as tmp:
        counts_file = Path(tmp) / "counts.txt"
        if count:
            addrs = symbol_addresses(elf_path)
            begin = addrs.get(BEGIN_MARKER, 0xFFFFFFFE)  # missing markers: no windows, total only
            end = addrs.get(END_MARKER, 0xFFFFFFFE)
            cmd += ["-plugin", f"{_qemu_opt(str(plugin_path()))},begin={begin:#x},end={end:#x},"
                    f"out={_qemu_opt(str(counts_file))}"]
        try:
            res = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ToolchainError(f"{t.name} program {elf_path.name} did not exit within {timeout:g} s "
                                 f"(endless loop?): {' '.join(cmd)}") from None
        windows: tuple[Window, ...] = ()
        total = None
        if count and counts_file.is_file():
            windows, total = _parse_counts(counts_file.read_text())
    stdout = res.stdout.decode(errors="replace")
    stderr = res.stderr.decode(errors="replace")
    result = RunResult(res.returncode, stdout, stderr, tuple(cmd), _fault_of(res.returncode, stderr), windows, total)
    if count and total is None and result.returncode >= 0:
        raise ToolchainError(f"the QEMU counting plugin wrote no counts: {stderr.strip()[-2000:]}")
    if check and result.returncode != 0:
        what = f"crashed: {result.fault}" if result.fault else f"exited with {result.returncode}"
        raise ToolchainError(f"{t.name} program {elf_path.name} {what}\n{stderr.strip()[-2000:]}")
    return result


def count_instructions(
    target: str | Target,
    elf: str | os.PathLike,
    args: Sequence[str] = (),
    *,
    cwd: str | os.PathLike | None = None,
    timeout: float = 60,
    depth: int | None = None,
) -> list[int]:
    """Instructions executed in each ``tl_bench_begin()`` .. ``tl_bench_end()`` window.

    Windows are listed in the order they were opened; ``depth=0`` keeps only the outermost
    (e.g. whole inferences), ``depth=1`` the ones nested one level inside (e.g. steps);
    a program without markers gives ``[]``. The program must exit with 0. Counts are exact
    and repeatable: an empty window counts 0; a window nested in another adds its own count
    plus 4 (two calls, two returns) to it.
    """
    res = run(target, elf, args, cwd=cwd, timeout=timeout, count=True, check=True)
    return [w.count for w in res.windows if depth is None or w.depth == depth]


# ---- footprint -------------------------------------------------------------------------------------

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


#: Stack bytes of the runtime's hand-written assembly leaf functions (codegen/runtime/tl_lstm.c:
#: their `push` lists), which gcc's call-graph files name but cannot measure.
ASM_LEAF_FRAMES = {"tl_mac4_w16": 36, "tl_mac4_w8": 40, "tl_lstm_units_v7em": 36}


def _section_sizes(paths: Sequence[Path], timeout: float) -> dict[str, int]:
    totals = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    out = _check_run([SIZE, "-A", "-d", *map(str, paths)], SIZE, timeout)
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
    out = _check_run([NM, "--size-sort", "-S", *map(str, paths)], NM, timeout)
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
    _require(SIZE, NM)
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
