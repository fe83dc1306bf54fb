"""Cortex-M targets: build with arm-none-eabi-gcc, run on QEMU, count instructions, sizes.

One small C program (below) is built once per core at -Os; its modes exercise semihosting
file I/O (an int8 dot product checked exactly against numpy), exit codes, a HardFault, an
assembly loop of known length for the instruction counter, and nested count windows.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tinylstm.cbuild import cores as tgt
from tinylstm.cbuild import crossbuild, elfsize, qemu
from tinylstm.cbuild.toolchain import ToolchainError, missing_reason

_MISSING = missing_reason("arm-none-eabi-gcc", "qemu-system-arm", "gcc")
pytestmark = [pytest.mark.cross, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]

PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_target.h"

#define MAXN 4096
static int8_t xs[MAXN];
static int8_t ys[MAXN];

/* x (n,) . y (n,) -> int32 */
__attribute__((noinline)) int32_t dot_s8(const int8_t *x, const int8_t *y, int32_t n)
{
    int32_t acc = 0;
    int32_t i;
    for (i = 0; i < n; i++) {
        acc += (int32_t)x[i] * (int32_t)y[i];
    }
    return acc;
}

/* Exactly two instructions per iteration (n >= 1). */
__attribute__((naked, noinline)) void spin(uint32_t n)
{
    (void)n;
    __asm__ volatile(".syntax unified\n1:\n\tsubs r0, r0, #1\n\tbne 1b\n\tbx lr");
}

/* 1 KB of stack per level: overflows the 64 KB stack reserve. */
__attribute__((noinline)) static int32_t deep(int32_t n)
{
    volatile int8_t buf[1024];
    memset((void *)buf, (int)n, sizeof buf);
    return n == 0 ? buf[3] : deep(n - 1) + buf[n & 1023];
}

static int do_dot(const char *in_path, const char *out_path)
{
    int32_t n, r;
    FILE *f = fopen(in_path, "rb");
    if (f == NULL) return 3;
    if (fread(&n, 4, 1, f) != 1 || n < 0 || n > MAXN) return 4;
    if (fread(xs, 1, (size_t)n, f) != (size_t)n || fread(ys, 1, (size_t)n, f) != (size_t)n) return 5;
    fclose(f);
    tl_bench_begin();
    r = dot_s8(xs, ys, n);
    tl_bench_end();
    f = fopen(out_path, "wb");
    if (f == NULL) return 6;
    if (fwrite(&r, 4, 1, f) != 1) return 7;
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "dot") == 0) {
        return do_dot(argv[2], argv[3]);
    }
    if (argc == 3 && strcmp(argv[1], "exit") == 0) {
        printf("exit %s\n", argv[2]);
        return atoi(argv[2]);
    }
    if (argc == 2 && strcmp(argv[1], "fault") == 0) {
        return *(volatile const int *)0xF0000000u; /* unmapped on every board */
    }
    if (argc == 2 && strcmp(argv[1], "overflow") == 0) {
        return (int)(deep(100000) & 1);
    }
    if (argc == 3 && strcmp(argv[1], "spin") == 0) {
        uint32_t n = (uint32_t)atoi(argv[2]);
        tl_bench_begin();
        spin(n);
        tl_bench_end();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "nest") == 0) {
        tl_bench_begin();
        tl_bench_begin();
        spin(10u);
        tl_bench_end();
        tl_bench_begin();
        tl_bench_end();
        tl_bench_end();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "hang") == 0) {
        for (;;) {
        }
    }
    return 100;
}
"""

ALL_TARGETS = list(tgt.TARGETS)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("target")
    (d / "prog.c").write_text(PROGRAM)
    return d


class _Builds(dict):
    """Name -> the test program built at -Os for that core, built on first use."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir

    def __missing__(self, name: str) -> crossbuild.TargetBuild:
        b = crossbuild.build(name, [self.workdir / "prog.c"], self.workdir / name / "prog.elf", opt="-Os")
        self[name] = b
        return b


@pytest.fixture(scope="module")
def builds(workdir: Path) -> _Builds:
    return _Builds(workdir)


def _dot_input(workdir: Path, n: int, seed: int) -> tuple[Path, int]:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=n, dtype=np.int8)
    y = rng.integers(-128, 128, size=n, dtype=np.int8)
    x[:2] = [-128, 127]
    y[:2] = [-128, -128]
    path = workdir / f"dot_{n}_{seed}.bin"
    path.write_bytes(struct.pack("<i", n) + x.tobytes() + y.tobytes())
    return path, int(np.dot(x.astype(np.int64), y.astype(np.int64)))


@pytest.mark.parametrize("name", ALL_TARGETS)
def test_dot_product_matches_numpy(name: str, builds, workdir: Path) -> None:
    inp, expected = _dot_input(workdir, 1000, seed=7)
    out = f"out_{name}.bin"
    res = qemu.run(name, builds[name].elf, ["dot", inp.name, out], cwd=workdir, count=True, check=True)
    (got,) = struct.unpack("<i", (workdir / out).read_bytes())
    assert got == expected
    assert len(res.windows) == 1 and res.windows[0].depth == 0
    assert 1000 <= res.counts[0] <= 16 * 1000  # a plain C loop: a few instructions per MAC
    assert res.total_instructions is not None and res.total_instructions > res.counts[0]


@pytest.mark.parametrize("name", ["cortex-m0plus", "cortex-m55"])
def test_exit_code_and_stdout(name: str, builds) -> None:
    res = qemu.run(name, builds[name].elf, ["exit", "42"])
    assert res.returncode == 42 and res.fault is None
    assert res.stdout == "exit 42\n"
    assert qemu.run(name, builds[name].elf, ["exit", "0"], check=True).returncode == 0
    with pytest.raises(ToolchainError, match="exited with 3"):
        qemu.run(name, builds[name].elf, ["exit", "3"], check=True)


@pytest.mark.parametrize("name", ["cortex-m0plus", "cortex-m4", "cortex-m33", "cortex-m55"])
def test_hardfault_is_reported(name: str, builds) -> None:
    res = qemu.run(name, builds[name].elf, ["fault"])
    assert res.returncode == 242
    assert res.fault is not None and res.fault.startswith("HardFault pc=0x")
    with pytest.raises(ToolchainError, match="crashed: HardFault"):
        qemu.run(name, builds[name].elf, ["fault"], check=True)


@pytest.mark.parametrize("name", ["cortex-m4", "cortex-m55"])
def test_stack_overflow_is_reported(name: str, builds) -> None:
    # MPU guard region below the stack (Armv7-M) / stack-limit register (Armv8-M)
    res = qemu.run(name, builds[name].elf, ["overflow"])
    assert res.returncode == 242
    assert res.fault is not None and res.fault.endswith("stack-overflow")


def test_timeout_kills_a_hung_program(builds) -> None:
    with pytest.raises(ToolchainError, match="did not exit within"):
        qemu.run("cortex-m4", builds["cortex-m4"].elf, ["hang"], timeout=1)


@pytest.mark.parametrize("name", ["cortex-m0plus", "cortex-m4", "cortex-m55"])
def test_counts_are_exact_for_a_known_loop(name: str, builds) -> None:
    elf = builds[name].elf
    c100, c1000 = (qemu.count_instructions(name, elf, ["spin", str(n)])[0] for n in (100, 1000))
    assert c1000 - c100 == 2 * 900  # two instructions per iteration, nothing else grows
    assert 2 * 100 < c100 <= 2 * 100 + 6  # plus loading n, the call and the return


def test_counts_repeat_exactly(builds, workdir: Path) -> None:
    inp, _ = _dot_input(workdir, 777, seed=3)
    runs = [qemu.run("cortex-m4", builds["cortex-m4"].elf, ["dot", inp.name, "o.bin"], cwd=workdir, count=True)
            for _ in range(2)]
    assert runs[0].windows == runs[1].windows
    assert runs[0].total_instructions == runs[1].total_instructions


def test_nested_windows(builds) -> None:
    spin10 = qemu.count_instructions("cortex-m4", builds["cortex-m4"].elf, ["spin", "10"])[0]
    res = qemu.run("cortex-m4", builds["cortex-m4"].elf, ["nest"], count=True, check=True)
    outer, inner, empty = res.windows
    assert (outer.depth, inner.depth, empty.depth) == (0, 1, 1)
    assert empty.count == 0
    assert inner.count == spin10
    # the parent also pays 2 calls + 2 returns per nested pair (and here one branch: gcc
    # merges the two `bl tl_bench_end` tails)
    assert inner.count + empty.count + 2 * 4 <= outer.count <= inner.count + empty.count + 2 * 4 + 2
    assert qemu.count_instructions("cortex-m4", builds["cortex-m4"].elf, ["nest"], depth=1) == [inner.count, 0]


def test_sizes_of_elf_and_object(builds) -> None:
    b = builds["cortex-m4"]
    fp = elfsize.sizes(b)
    assert fp.sections["text"] > 0 and fp.sections["bss"] >= 2 * 4096
    by_name = {s.name: s for s in fp.symbols}
    assert by_name["xs"].size == 4096 and by_name["xs"].kind == "bss"
    assert by_name["dot_s8"].kind == "text" and by_name["dot_s8"].size > 0
    assert fp.symbol_bytes("tlboot_", "text") > 0  # the start-up
    assert fp.symbol_bytes("tl_") == 4  # only the two markers share the runtime's prefix
    assert fp.symbol_bytes("dot_s8") == by_name["dot_s8"].size
    frames = {f.function: f for f in fp.stack}
    assert "main" in frames and "tlboot_reset_handler" in frames and fp.max_frame > 0
    bound = fp.stack_bound("main")
    assert bound.bytes >= frames["main"].bytes and bound.path[0] == "main"
    assert not bound.complete and "fopen" in bound.unknown  # newlib has no stack data

    obj = elfsize.sizes([b.objects[0]])  # the program's own object only
    assert 0 < obj.sections["text"] < fp.sections["text"]
    assert {s.name for s in obj.symbols} >= {"dot_s8", "main", "xs", "ys"}
    assert {f.function for f in obj.stack} >= {"dot_s8", "main"}


def test_build_errors_are_reported(workdir: Path) -> None:
    bad = workdir / "bad.c"
    bad.write_text("int main(void) { int unused; return 0; }\n")
    with pytest.raises(ToolchainError, match="unused"):
        crossbuild.build("cortex-m4", [bad], workdir / "bad" / "bad.elf")
    with pytest.raises(ToolchainError, match="unknown target 'cortex-m99'"):
        tgt.get_target("cortex-m99")
    with pytest.raises(ToolchainError, match="optimisation level"):
        crossbuild.build("cortex-m4", [bad], workdir / "bad" / "bad.elf", opt="-O9")


def test_arguments_with_spaces_are_refused(builds) -> None:
    with pytest.raises(ToolchainError, match="whitespace"):
        qemu.run("cortex-m4", builds["cortex-m4"].elf, ["a b"])
