"""What both exporters check before they keep a file: tinylstm's importer loads it, onnxruntime
reproduces the framework's outputs, and errors reach the user on one readable line.

Tolerance rule of every parity check: ``max|y_framework - y_ort| <= atol * max(1, max|y_framework|)``
per output (absolute for outputs within +-1, relative beyond: a trained model's logits near 3 may
differ by 1.3e-5 in float32).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tinylstm.errors import OutputPathError, TinyLstmError, UnsupportedModelError


class MissingDependencyError(TinyLstmError, ImportError):
    """An optional dependency (torch, onnxscript, tensorflow, tf2onnx) is not installed."""


class ExportError(TinyLstmError):
    """The exporter failed, or its file does not reproduce the model in onnxruntime (at the example
    shape or at another length / batch size)."""


def one_line(e: BaseException, shown: tuple[Path, Path] | None = None,
              limit: int | None = 500) -> str:
    """The text of a torch / onnx / onnxruntime error on one line: whitespace runs (newlines
    included) become one space, the temporary file is named as the destination ``shown[1]``,
    and text past ``limit`` characters is cut."""
    text = str(e)
    if shown is not None:
        text = text.replace(str(shown[0]), str(shown[1]))
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 4].rstrip() + " ..."
    return text or f"{type(e).__name__} (no message)"


def check_import(onnx_path: Path, exporter: str, shown: tuple[Path, Path]) -> None:
    """Load the file with tinylstm's own importer; what it refuses is refused here, with its
    node and field, before anything is written."""
    from ..onnx_import import load_onnx

    try:
        load_onnx(onnx_path)
    except TinyLstmError as e:
        msg = (f"torch.onnx.export ({exporter}) exported the model, but tinylstm cannot "
               f"import the result, so {shown[1].name} was not written: "
               f"{one_line(e, shown, limit=None)}")
        if not isinstance(e, UnsupportedModelError):
            raise ExportError(msg) from e
        err = UnsupportedModelError(msg)
        err.node, err.field = e.node, e.field
        raise err from e


def ort_session(onnx_path: Path, writer: str, shown: tuple[Path, Path] | None = None) -> Any:
    """onnxruntime's session of the exported file (single-threaded, quiet: the checks report)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    try:
        return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"onnxruntime cannot load the file {writer} wrote: {one_line(e, shown)}") from e


def compare_outputs(want: list[np.ndarray], got: list[np.ndarray], what: str, atol: float, label: str,
                    framework: str, hint: str = "") -> None:
    """Raise :class:`ExportError` unless onnxruntime's outputs ``got`` match the framework's
    ``want`` at ``what`` (the module's tolerance rule)."""
    if len(got) != len(want):
        raise ExportError(f"onnxruntime gives {len(got)} outputs at {what}, {framework} {len(want)} ({label})")
    for k, (w, g) in enumerate(zip(want, got, strict=True)):
        if w.shape != g.shape:
            raise ExportError(
                f"output {k} at {what}: onnxruntime gives shape {g.shape}, {framework} {w.shape} ({label}){hint}")
        if not w.size:
            continue
        w64 = w.astype(np.float64)
        err = float(np.max(np.abs(w64 - g)))
        scale = max(1.0, float(np.max(np.abs(w64))))
        if not err <= atol * scale:  # NaN fails too
            raise ExportError(
                f"output {k} at {what}: onnxruntime differs from {framework} by {err:.3g} > {atol * scale:.3g} = "
                f"atol * max(1, max|{framework} output|) = {atol:g} * {scale:.4g} ({label}){hint}")


def move_into_place(tmp: Path, tmp_model: Path, dest: Path) -> None:
    """Rename the export's side files (external data), then the model; drop a stale
    ``<name>.onnx.data`` the new model no longer uses."""
    sides = sorted(p for p in tmp.iterdir() if p != tmp_model)
    try:
        for p in sides:
            os.replace(p, dest.parent / p.name)
        os.replace(tmp_model, dest)
    except OSError as e:
        raise OutputPathError(f"{dest}: cannot write ({e.strerror})") from None
    stale = dest.parent / (dest.name + ".data")
    if not any(p.name == stale.name for p in sides) and stale.is_file():
        stale.unlink()


def check_destination(dest: Path) -> Path:
    """``dest`` if it can take the exported file (refused before any work otherwise)."""
    if dest.name in ("", ".", ".."):
        raise OutputPathError(f"{dest}: not a file name")
    if dest.is_dir():
        raise OutputPathError(f"{dest}: is a directory; give the .onnx file name")
    if not dest.parent.is_dir():
        raise OutputPathError(f"{dest.parent}: no such directory")
    if not os.access(dest.parent, os.W_OK):
        raise OutputPathError(f"{dest.parent}: not writable")
    return dest


@contextlib.contextmanager
def quiet(*logger_names: str) -> Iterator[None]:
    """Silence exporter/converter chatter the user cannot act on (deprecations, progress
    prints); correctness is established by the onnxruntime check instead."""
    loggers = [logging.getLogger(n) for n in logger_names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
                yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
