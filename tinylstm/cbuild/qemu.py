"""Run a Cortex-M build on its QEMU board and count the instructions it executes.

:func:`run` starts ``qemu-system-arm`` with semihosting under a timeout: main's return value is
the exit code, a fault handler's distinctive exit code is reported as the fault.
:func:`count_instructions` (or ``run(..., count=True)``) loads our TCG plugin
(``codegen/target/insn_count.c``, built with the host gcc on first use and cached), which counts
the instructions executed in each ``tl_bench_begin()`` .. ``tl_bench_end()`` window (exact,
repeatable).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .cores import BEGIN_MARKER, END_MARKER, FAULT_EXIT_CODES, PLUGIN_SOURCE, Target, get_target, target_dir
from .toolchain import ToolchainError, check_output, require

QEMU = "qemu-system-arm"
NM = "arm-none-eabi-nm"
HOST_CC = "gcc"


def symbol_addresses(elf: str | os.PathLike, timeout: float = 30) -> dict[str, int]:
    """Defined symbols of an ELF -> address (Thumb bit cleared)."""
    require(NM)
    out = check_output([NM, str(elf)], NM, timeout)
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
    require(HOST_CC)
    src = target_dir() / PLUGIN_SOURCE
    cc_version = check_output([HOST_CC, "-dumpfullversion"], HOST_CC, timeout).strip()
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
        check_output([HOST_CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-shared", "-fPIC",
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
    require(QEMU)
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
