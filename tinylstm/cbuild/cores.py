"""The Cortex-M cores tinylstm builds for: one :class:`Target` per core, with its compiler flags,
QEMU board, memory map and linker script (:data:`TARGETS`, :func:`get_target`), and the folder of
the hand-written target files (``codegen/target/``: start-up, linker scripts, ``tl_target.h``,
the QEMU counting plugin).

The jobs around them live beside this module: cross compiling in :mod:`.crossbuild`, running and
counting on QEMU in :mod:`.qemu`, section / symbol / stack sizes of a build in :mod:`.elfsize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..codegen.runtime_files import TARGET_DIR
from .toolchain import ToolchainError

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
#: the instruction-count window markers of the start-up (tl_target.h)
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

