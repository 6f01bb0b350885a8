"""The `tradeledger` command line. Every command has --help; --json gives machine output.

Parsing imports the catalogue and the named command's module only (adapters.cli_commands), so `--help` and a
bad command line answer before the libraries a command runs on are loaded.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from tradeledger.adapters.cliargs import UsageError, fail, parse

DEBUG = "TRADELEDGER_DEBUG"  # set to 1: an unexpected error also prints its traceback


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run one command, exit: 0 or the command's own code; 2 for any error, in one line on stderr."""
    try:
        args, execute = start(argv)
    except UsageError as error:  # a bad argument: one line, exit 2, before anything is opened
        print(error, file=sys.stderr)
        return 2
    try:
        return execute(args)
    except Exception as error:  # noqa: BLE001 - the last line of defence: no command ends in a traceback
        if os.environ.get(DEBUG) == "1":
            traceback.print_exc()
        return fail(args.command_name, f"{type(error).__name__}: {error}")


def start(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Callable[[argparse.Namespace], int]]:
    """The parsed command line and what runs it, imported with the collector paused.

    The imports make hundreds of thousands of objects that live as long as the process (modules, classes,
    tables); left to the collector they are rescanned by every full collection: 77 ms of the 0.5 s of
    `tradeledger health` (docs/benchmarks.md). They are frozen out of its scans instead.
    """
    gc.disable()
    try:
        args = parse(argv)
        from tradeledger.adapters.cli_execute import execute  # after parsing: --help needs none of it

        return args, execute
    finally:
        gc.freeze()
        gc.enable()


if __name__ == "__main__":
    sys.exit(main())
