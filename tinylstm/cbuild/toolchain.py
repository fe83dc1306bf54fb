"""Finding and running the C compilers and emulator tinylstm validates with.

Host C is built with gcc and clang; Cortex-M builds use arm-none-eabi-gcc and run on QEMU.
Where a tool is missing, :func:`missing_reason` says how to install it (tests skip with it).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import TinyLstmError

APT_PACKAGES = {
    "gcc": "gcc",
    "clang": "clang libclang-rt-14-dev",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
}

#: Warnings the generated C and the runtime must compile cleanly with.
STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion",
                "-Wsign-conversion", "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer")


class ToolchainError(TinyLstmError):
    """A compiler or emulator is missing or failed (its message keeps the tool's line breaks)."""

    keep_controls = "\n"


def which(tool: str) -> str | None:
    return shutil.which(tool)


def require(*tools: str) -> None:
    """Raise ToolchainError (saying how to install them) unless every tool is on PATH."""
    reason = missing_reason(*tools)
    if reason is not None:
        raise ToolchainError(reason)


def check_output(cmd: list[str], what: str, timeout: float, cwd: Path | None = None) -> str:
    """Run a tool and return its stdout; a failure or a timeout raises ToolchainError naming ``what``."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{what} did not finish within {timeout:g} s: {' '.join(cmd)}") from None
    if res.returncode != 0:
        raise ToolchainError(f"{what} failed (exit {res.returncode}): {' '.join(cmd)}\n{res.stderr.strip()}")
    return res.stdout


def missing_reason(*tools: str) -> str | None:
    """None when every tool is on PATH; else a sentence that says how to install them."""
    missing = [t for t in tools if which(t) is None]
    if not missing:
        return None
    pkgs = " ".join(APT_PACKAGES.get(t, t) for t in missing)
    return (
        f"{', '.join(missing)} not found; install with `sudo apt-get install -y {pkgs}` "
        "(Debian/Ubuntu) or run `make test` as root"
    )


@dataclass(frozen=True)
class BuildResult:
    exe: Path
    command: tuple[str, ...]


def compile_host(
    sources: list[Path],
    exe: Path,
    *,
    compiler: str = "gcc",
    opt: str = "-O2",
    sanitize: bool = False,
    include_dirs: tuple[Path, ...] = (),
    extra_flags: tuple[str, ...] = (),
    timeout: float = 120,
) -> BuildResult:
    """Compile C sources into a host executable with the strict warning set."""
    if which(compiler) is None:
        raise ToolchainError(missing_reason(compiler) or compiler)
    cmd = [compiler, *STRICT_FLAGS, opt]
    if sanitize:
        cmd += list(SANITIZE_FLAGS)
    for d in include_dirs:
        cmd += ["-I", str(d)]
    cmd += list(extra_flags)
    cmd += [str(s) for s in sources]
    cmd += ["-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise ToolchainError(
            f"{compiler} failed (exit {res.returncode}): {' '.join(cmd)}\n{res.stderr.strip()}"
        )
    return BuildResult(exe, tuple(cmd))


def run(cmd: list[str], *, cwd: Path | None = None, timeout: float = 300,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a built program; a non-zero exit is a ToolchainError carrying its stderr."""
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout, env=env)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip()
        raise ToolchainError(f"{' '.join(cmd)} exited with {res.returncode}: {err[-2000:]}")
    return res
