"""Cross-compile C for a Cortex-M core: arm-none-eabi-gcc with strict warnings, our start-up and
linker script, newlib-nano + semihosting, per-function sections and stack-usage / call-graph
files for :mod:`.elfsize`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cores import OPT_LEVELS, STARTUP_SOURCE, Target, get_target, target_dir
from .toolchain import ToolchainError, check_output, require

CC = "arm-none-eabi-gcc"
#: Compile flags of every target build (the brief's strict set, plus size/stack reporting).
BASE_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
               "-ffunction-sections", "-fdata-sections", "-fstack-usage", "-fcallgraph-info=su")
LINK_FLAGS = ("-nostartfiles", "--specs=nano.specs", "--specs=rdimon.specs", "-Wl,--gc-sections")


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
    require(CC)
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
        check_output(cmd, f"{CC} ({t.name}, {src.name})", timeout)
        commands.append(tuple(cmd))
        objects.append(obj)
    map_file = obj_dir / (elf.stem + ".map")
    link = [CC, *t.cpu_flags, opt, *LINK_FLAGS, "-L", str(tdir), "-T", t.linker_script,
            f"-Wl,-Map={map_file}"]
    if stack_size is not None:
        link.append(f"-Wl,--defsym=__tlboot_stack_size={int(stack_size)}")
    link += [str(o) for o in objects] + ["-o", str(elf)]
    check_output(link, f"{CC} link ({t.name})", timeout)
    commands.append(tuple(link))
    return TargetBuild(t, elf, tuple(objects), tuple(o.with_suffix(".su") for o in objects),
                       tuple(o.with_suffix(".ci") for o in objects), map_file, tuple(commands))
