"""The hand-written C shipped with tinylstm: the runtime copied next to every generated model
(``runtime/``: which files, and their text) and the Cortex-M support files (``target/``). The one
list the emitter and the C builders (host, Cortex-M) read."""

from __future__ import annotations

from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
#: Cortex-M start-up code, linker scripts, ``tl_target.h`` and the QEMU counting plugin's source
TARGET_DIR = Path(__file__).resolve().parent / "target"
#: runtime files copied next to every generated model (sources compiled, headers included); the
#: LSTM runtime is one file per kernel family, described at the top of ``tl_lstm_internal.h`` (the GRU's:
#: ``tl_gru_internal.h``)
#: (every build compiles every source: a kernel file of another architecture compiles to nothing)
RUNTIME_HEADERS = ("tl_fixedpoint.h", "tl_lstm.h", "tl_lstm_internal.h", "tl_gru.h", "tl_gru_internal.h",
                   "tl_heads.h", "tl_lstm_mve.h", "tl_kernels_v7em_unit.h")
RUNTIME_SOURCES = ("tl_lstm_step.c", "tl_lstm_fast.c", "tl_lstm_stages.c", "tl_kernels_v7em.c",
                   "tl_kernels_v7em_unit.c", "tl_kernels_v6m.c",
                   "tl_kernels_v6m_unit.c", "tl_kernels_sse2.c", "tl_kernels_portable.c",
                   "tl_gru_step.c", "tl_gru_fast.c", "tl_gru_stages.c", "tl_gru_v7em.c", "tl_heads.c",
                   "tl_lstm_mve.c", "tl_kernels_mve.c")


def runtime_files() -> dict[str, str]:
    """The hand-written runtime, verbatim: ``{file name: text}``."""
    return {name: (RUNTIME_DIR / name).read_text(encoding="ascii") for name in RUNTIME_HEADERS + RUNTIME_SOURCES}
