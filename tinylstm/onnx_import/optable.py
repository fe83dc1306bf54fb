"""The entry of an op in the interpreter's dispatch table: its handler and its attributes.

Each ``op_*`` module lists the ops it handles in an ``OPS`` table; :mod:`.interpret` merges them
and, before calling a handler, refuses any attribute missing from ``attrs`` (one check for all
ops, so no attribute is silently ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx

if TYPE_CHECKING:
    from .interpret import Interpreter

#: (interpreter, node, node label, input values) -> output values (None: output not produced)
Handler = Callable[["Interpreter", onnx.NodeProto, str, list], list]


@dataclass(frozen=True)
class Op:
    """How the interpreter runs one op type on model data."""

    run: Handler
    #: attributes the handler understands; None: not checked by the interpreter (the LSTM
    #: handler checks its own with :func:`.lstm.check_attributes`)
    attrs: frozenset[str] | None


def op(run: Handler, *attrs: str) -> Op:
    """A table entry whose handler understands exactly ``attrs``."""
    return Op(run, frozenset(attrs))
