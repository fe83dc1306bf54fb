"""tinylstm.codegen: the C back end.

Emitters return ``{filename: text}`` and never touch disk; :mod:`.writer` writes them
atomically. Identifiers and comments from the model pass through :mod:`.names`.
"""

from __future__ import annotations

from typing import Any


def generate_c(*args: Any, **kwargs: Any):
    """See :func:`tinylstm.codegen.emit.generate_c`."""
    from .emit import generate_c as _generate_c

    return _generate_c(*args, **kwargs)


def generate_files(*args: Any, **kwargs: Any):
    """See :func:`tinylstm.codegen.emit.generate_files`."""
    from .emit import generate_files as _generate_files

    return _generate_files(*args, **kwargs)


__all__ = ["generate_c", "generate_files"]
