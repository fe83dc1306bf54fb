"""The subcommand registry: each command module declares its options and function with
:func:`command`; :mod:`tinylstm.cli` builds the parser from :data:`COMMANDS`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Command = Callable[[argparse.Namespace], int]
#: name -> (declare its options, run it), in registration order
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand: ``add_args`` declares its options, the function runs it."""

    def deco(fn: Command) -> Command:
        COMMANDS[name] = (add_args, fn)
        return fn

    return deco
