"""The `tinylstm` command line.

Every user-caused failure prints one line ``error: ...`` on stderr and exits with status 2;
no traceback. Set TINYLSTM_DEBUG=1 to see tracebacks of internal errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from . import __version__
from .errors import TinyLstmError, one_line, printable

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand: ``add_args`` declares its options, the function runs it."""

    def deco(fn: Command) -> Command:
        _COMMANDS[name] = (add_args, fn)
        return fn

    return deco


# --------------------------------------------------------------------------------------
def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--batch-row", type=int, default=None, metavar="K",
                   help="for a static batch whose rows hold different initial states: keep row K's")


@command("inspect", _inspect_args)
def cmd_inspect(args: argparse.Namespace) -> int:
    from . import load_onnx
    from .summary import format_summary, summarize

    model = load_onnx(args.model, batch_row=args.batch_row)
    s = summarize(model)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(format_summary(s))
    return 0


# --------------------------------------------------------------------------------------
def _load_plugins() -> None:
    """Subcommands that live in other modules register themselves on import."""
    import importlib

    for mod in ("tinylstm.cli_pipeline",):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    parser = argparse.ArgumentParser(
        prog="tinylstm",
        description="Trained LSTMs from ONNX to bit-exact int8 C for microcontrollers.",
    )
    parser.add_argument("--version", action="version", version=f"tinylstm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (add_args, fn) in _COMMANDS.items():
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
    # run the registry of the imported module, where the pipeline commands register themselves
    from tinylstm.cli import main as _main

    sys.exit(_main())
