"""The `tinylstm` command line.

Every user-caused failure prints one line ``error: ...`` on stderr and exits with status 2;
no traceback. Set TINYLSTM_DEBUG=1 to see tracebacks of internal errors.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._version import __version__
from ..errors import TinyLstmError, one_line, printable
from . import commands, finetune  # noqa: F401  (registers the subcommands)
from .registry import COMMANDS

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinylstm",
        description="Trained LSTMs from ONNX to bit-exact int8 C for microcontrollers.",
    )
    parser.add_argument("--version", action="version", version=f"tinylstm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (add_args, fn) in COMMANDS.items():
        doc = (fn.__doc__ or "").strip().splitlines()
        sp = sub.add_parser(name, help=doc[0] if doc else None)
        add_args(sp)
        sp.set_defaults(_fn=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._fn(args) or 0)
    except TinyLstmError as e:
        print(f"error: {printable(str(e))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug in tinylstm, not in the user's input
        if os.environ.get("TINYLSTM_DEBUG"):
            raise
        print(
            f"internal error: {type(e).__name__}: {printable(one_line(e))} (a tinylstm bug; rerun with "
            "TINYLSTM_DEBUG=1 for a traceback and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
