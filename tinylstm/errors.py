"""The one exception family of tinylstm.

Every error a user can provoke with a model, data or options is a :class:`TinyLstmError`.
The CLI prints ``error: <message>`` on one line and exits non-zero for these; anything
else is a bug in tinylstm.

Messages quote model names, file names and paths, which may hold any character: the family
escapes every character a terminal would interpret or hide (:func:`printable`), so
``str(error)`` is safe to print from the Python API too.
"""

from __future__ import annotations

from typing import Any


def printable(text: str, keep: str = "") -> str:
    """``text`` with every character a terminal would interpret or hide escaped.

    Control characters (C0, C1, DEL), line/paragraph separators, format characters (e.g.
    bidirectional overrides), surrogates and unassigned code points become ``\\xNN``,
    ``\\uNNNN`` or ``\\UNNNNNNNN``; a plain space and the characters of ``keep`` stay.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def one_line(e: BaseException) -> str:
    """A library's error message on one line: onnxruntime's and onnx's span several, which the
    CLI would otherwise print as ``\\x0a`` escapes."""
    return " ".join(str(e).split()) or type(e).__name__


class TinyLstmError(Exception):
    """Base class of every error tinylstm raises on purpose.

    String arguments are stored escaped (:func:`printable`); a subclass whose messages carry
    trusted multi-line text (e.g. compiler output) may list the characters it keeps in
    :attr:`keep_controls`.
    """

    #: control characters left as they are in this class's messages (e.g. "\n")
    keep_controls: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*(printable(a, self.keep_controls) if isinstance(a, str) else a for a in args),
                         **kwargs)


class ModelFormatError(TinyLstmError):
    """The file is not a readable, well-formed ONNX model (or `.tlq` integer model)."""


class UnsupportedModelError(TinyLstmError):
    """The model is valid ONNX but uses something tinylstm does not implement.

    The message names the node, the op type or attribute, and what is supported.
    """

    def __init__(self, message: str, node: str | None = None, field: str | None = None):
        self.node = node
        self.field = field
        where = [f"node '{node}'"] if node is not None else []
        if field is not None:
            where.append(field)
        prefix = ", ".join(where) + ": " if where else ""
        super().__init__(prefix + message)


class QuantizationError(TinyLstmError):
    """The float model cannot be turned into the integer model safely."""


class DataError(TinyLstmError):
    """Calibration or evaluation data has the wrong shape, dtype or values."""


class OutputPathError(TinyLstmError):
    """An output location cannot be written."""
