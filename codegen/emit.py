"""The C emitter: an integer model -> ``{filename: text}`` (pure), and :func:`generate_c`.

Generated files (``p`` = the prefix):

- ``p.h`` / ``p.c``: the public API (``p_state_t``, ``p_reset``, ``p_step``, ``p_run``), the
  model's const weights and tables, one params initializer per layer and thin per-model code
  calling the runtime; everything not public is ``static``;
- the runtime (``tl_*.h``, ``tl_*.c``), copied verbatim from ``codegen/runtime/``;
- ``CMakeLists.txt``, ``p.mk`` (Makefile fragment), ``p_example.c``.

The stages: :mod:`.plan` (schedule, workspace, I/O layout), :mod:`tinylstm.lowering` (how each
LSTM layer is stored and stepped), :mod:`.params` (const data and state members, counted by
:mod:`.footprint`), :mod:`.header` and :mod:`.code` (the text). Nothing from the model reaches
the C text except through :func:`names.c_ident` (identifiers) and :func:`names.c_comment`
(comments). The output is deterministic: no timestamps; the banner holds the tinylstm version
and a hash of the model. Semantics: docs/quantization.md; API: docs/c-api.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..lowering import kernels_for
from ..qmodel import QuantizedModel
from .code import source
from .header import header, model_hash
from .names import check_prefix
from .params import ModelData, model_data
from .plan import make_plan
from .project import build_files, example_c
from .runtime_files import RUNTIME_SOURCES, runtime_files
from .writer import write_tree


def _model_data(model: QuantizedModel, prefix: str, max_steps: int | None, target: str | None = None) -> ModelData:
    check_prefix(prefix)
    return model_data(make_plan(model, max_steps), prefix, kernels_for(target))


def emit_model(model: QuantizedModel, prefix: str = "model", max_steps: int | None = None, *,
               target: str | None = None) -> dict[str, str]:
    """``{filename: text}`` of the model's C (header, source), without runtime or build files;
    ``target``: as for :func:`generate_c`."""
    md = _model_data(model, prefix, max_steps, target)
    return {f"{prefix}.h": header(md), f"{prefix}.c": source(md)}


def footprint(model: QuantizedModel, prefix: str = "model", max_steps: int | None = None, *,
              target: str | None = None) -> dict[str, int]:
    """The numbers behind ``<P>_FLASH_BYTES`` and ``<P>_RAM_BYTES`` (which is an expression of
    ``<P>_MAX_STEPS`` for models with a sequence workspace): ``flash_bytes``, ``ram_bytes`` (at
    ``max_steps``, or the default bound), ``ram_fixed`` and ``ram_per_step`` (workspace bytes per
    step of ``max_steps``; 0 for streaming models); ``target``: as for :func:`generate_c`."""
    md = _model_data(model, prefix, max_steps, target)
    plan, fp = md.plan, md.fp
    steps = plan.max_steps or 0
    return {"flash_bytes": fp.flash, "ram_bytes": fp.ram_bytes(plan.ws_width, steps), "ram_fixed": fp.ram_fixed,
            "ram_per_step": plan.ws_width, "max_steps": steps}


def generate_files(model: QuantizedModel, prefix: str = "model", max_steps: int | None = None, *,
                   target: str | None = None) -> dict[str, str]:
    """Every generated file as ``{filename: text}``: model, runtime, CMake, make fragment, example;
    ``target``: as for :func:`generate_c`."""
    md = _model_data(model, prefix, max_steps, target)
    files = {f"{prefix}.h": header(md), f"{prefix}.c": source(md)}
    files.update(runtime_files())
    files.update(build_files(prefix, RUNTIME_SOURCES))
    files[f"{prefix}_example.c"] = example_c(md.plan, prefix)
    return dict(sorted(files.items()))


def generate_c(
    qmodel: QuantizedModel,
    out_dir: str | os.PathLike,
    prefix: str = "model",
    *,
    max_steps: int | None = None,
    target: str | None = None,
) -> list[Path]:
    """Write the model's C99 library into ``out_dir`` (atomically: all files or none).

    ``prefix`` names every public symbol (``<prefix>_run``, ``<PREFIX>_INPUT_SIZE``...).
    ``max_steps`` bounds ``<prefix>_run`` for models with a reverse or bidirectional LSTM (their
    workspace holds whole sequences; default: the input's static length, else 256).
    ``target`` picks the kernels the C is generated for: ``None`` (default) the portable layout,
    which every runtime runs (on Cortex-M55 with the Armv7E-M kernels); ``"cortex-m55"`` the
    Helium (MVE) layout and step for the LSTM layers that take it (docs/targets.md), a C that
    compiles only for Armv8.1-M with MVE. Other core names give the portable layout.
    Returns the written paths. See docs/c-api.md.
    """
    return write_tree(generate_files(qmodel, prefix, max_steps, target=target), out_dir)


__all__ = ["emit_model", "footprint", "generate_c", "generate_files", "model_hash", "runtime_files"]
