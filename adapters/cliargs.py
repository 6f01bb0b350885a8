"""The command line's registry and parser, and its argument types: ranges, times and paths checked.

Every error is one line: argparse's own prints the usage and then the message; a script reading stderr wants
one line naming the option, so the parser here prints `tradeledger COMMAND: --option: expected ..., got ...`
and exits 2, before any command opens anything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from importlib import import_module
from pathlib import Path
from typing import Any, Literal, NamedTuple, NoReturn

import msgspec

from tradeledger.adapters.cli_commands import CATALOGUE

LOG_POSITIONS = (0, 2**62)  # fits a signed 64-bit column on both backends; far beyond any log
PAGE_SIZES = (1, 100_000)  # events per transaction: a page is held in memory
BATCHES = (1, 100_000)  # ticks per backtest transaction
LIMITS = (1, 10_000)  # events per `events` page (the log reader's own bound)
PORTS = (0, 65_535)
SECONDS = (0.01, 86_400.0)


# What a command reads of a store it only reads: such a command refuses a store that does not exist and opens it
# read-only (never creating or migrating it); "log" works on any schema that has the event table.
Reads = Literal["log", "log and read models"]
# A handler gets the parsed arguments and the composition root (which only the CLI module imports).
Handler = Callable[[argparse.Namespace, Any], int]


class Command(NamedTuple):
    handler: Handler
    options: tuple[tuple[tuple[str, ...], dict[str, Any]], ...]
    json: bool
    reads: Reads | None
    store: bool = True  # False: the command uses no event store (nothing is opened or migrated)
    durable: bool = True  # False: its appends may be lost on a power loss, not on a crash (`backtest`: re-run it)


COMMANDS: dict[str, Command] = {}  # the commands whose modules are imported (cli_commands.CATALOGUE has them all)


def option(*flags: str, **kwargs: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, kwargs


def command(name: str, *options: tuple[tuple[str, ...], dict[str, Any]], json: bool = True,
            reads: Reads | None = None, store: bool = True, durable: bool = True) -> Callable[[Handler], Handler]:
    """Declare the catalogue's command `name` ("db upgrade" nests): its argparse options next to its handler."""
    assert name in CATALOGUE, f"{name} is not in cli_commands.CATALOGUE"

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(handler, options, json, reads, store, durable)
        return handler

    return register


def declared(name: str) -> Command:
    """The catalogue's command `name`, its module imported."""
    import_module(f"tradeledger.adapters.{CATALOGUE[name].module}")
    return COMMANDS[name]


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse a command line, importing the module of the command it names and no other (UsageError if bad).

    A first pass finds the command with every command's options unknown; the second parses with that command's.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    name = build_parser(None).parse_known_args(argv)[0].command_name
    declared(name)  # its module declares the options the second pass needs
    return build_parser(name).parse_args(argv)


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    """Every command's parser, with the options of the command `chosen` only (declared before); None: the first
    pass, where a command's --help is left to the second."""
    common = OneLineParser(add_help=False)
    common.add_argument("--database", metavar="URL", default=argparse.SUPPRESS,
                        help="event store URL (sqlite:///PATH or postgresql://...); overrides database.url")
    common.add_argument("--settings", metavar="FILE", default=argparse.SUPPRESS,
                        help="a TOML or YAML settings file (.toml, .yaml, .yml)")
    parser = OneLineParser(prog="tradeledger", parents=[common],
                           description="An event-sourced paper-trading ledger.")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {
        "": parser.add_subparsers(dest="command", metavar="COMMAND", required=True)}
    for name, entry in CATALOGUE.items():
        *parents, leaf = name.split()
        sub = groups[""]
        for depth, parent in enumerate(parents, start=1):
            key = " ".join(parents[:depth])
            if key not in groups:
                groups[key] = sub.add_parser(parent, parents=[common], help=f"{parent} commands").add_subparsers(
                    dest=f"command_{depth}", metavar="COMMAND", required=True)
            sub = groups[key]
        command_parser = sub.add_parser(leaf, parents=[common], help=entry.help, description=entry.help,
                                        add_help=chosen is not None)
        command_parser.set_defaults(command_name=name)
        if name == chosen:
            spec = COMMANDS[name]
            for flags, kwargs in spec.options:
                command_parser.add_argument(*flags, **kwargs)
            if spec.json:
                command_parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    return parser


class UsageError(Exception):
    """A bad command line: `main` prints it (one line) and returns 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, `tradeledger COMMAND: --option: ...` (subparsers inherit it)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message.removeprefix('argument ')}")


def integer(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]; the error names the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text}")
        return value

    return parse


def number(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:  # NaN fails both comparisons
            raise argparse.ArgumentTypeError(f"expected a number from {low:g} to {high:g}, got {text}")
        return value

    return parse


def utc_time(text: str) -> datetime:
    """An argparse type: an ISO-8601 time; a naive one is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO-8601 time such as 2024-01-05T10:00:00Z, got {text}"
                                         ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def new_file(text: str) -> Path:
    """An argparse type: a file to write, in a directory that exists."""
    path = Path(text).expanduser()
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {path.parent} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a directory, expected a file name")
    return path


def out_directory(text: str) -> Path:
    """An argparse type: a directory to write into; it may be new, its parent must exist."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} exists and is not a directory")
    if not path.exists() and not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {path.parent} does not exist")
    return path


def json_file(decoded: type) -> Callable[[str], object]:
    """An argparse type: a JSON file that exists and decodes as `decoded`."""

    def parse(text: str) -> object:
        try:
            return msgspec.json.decode(Path(text).expanduser().read_bytes(), type=decoded)
        except OSError as error:
            raise argparse.ArgumentTypeError(f"cannot read {text}: {error.strerror}") from None
        except msgspec.DecodeError as error:  # ValidationError is a DecodeError
            raise argparse.ArgumentTypeError(f"{text} is not a {decoded.__name__} file: {error}") from None

    return parse


def strategy_spec(text: str) -> str:
    """An argparse type: FILE.py:ClassName (whether both exist is checked when the strategy is loaded)."""
    path, _, name = text.rpartition(":")
    if not path.endswith(".py") or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected FILE.py:ClassName, got {text}")
    return text


def key_value(text: str) -> tuple[str, str]:
    """An argparse type: NAME=VALUE (`--param fast=12`); the value is converted where NAME is known."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier() or not value.strip() or not text.isprintable():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as fast=12, got {text}")
    return name.strip(), value.strip()


def setting_value(text: str) -> tuple[str, str]:
    """An argparse type: SECTION.KEY=VALUE (`--with trading.fee_rate=0.002`); the value is checked where the key is."""
    key, sep, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section.isidentifier() or not name.isidentifier() or not value.strip() \
            or not text.isprintable():
        raise argparse.ArgumentTypeError(f"expected SECTION.KEY=VALUE such as trading.fee_rate=0.002, got {text}")
    return key.strip(), value.strip()


def emit(args: argparse.Namespace, value: Any, text: str) -> None:
    """`--json` the value, otherwise the text, on stdout."""
    if getattr(args, "json", False):
        sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def redacted_url(settings: Any) -> str:
    """The store's URL as commands print it: without its password."""
    return str(settings.redacted()["database"]["url"])


def fail(command: str, message: str) -> int:
    """Report a command's error the one way (`tradeledger COMMAND: message`); returns the exit code 2."""
    print(f"tradeledger {command}: {one_line(message)}", file=sys.stderr)
    return 2


def one_line(text: str) -> str:
    """A driver's multi-line message (psycopg's hints, say) as one line."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


# Options more than one command takes.
PREDICTOR = option("--predictor", metavar="NAME", help="ensemble, sma_cross, logistic or hoeffding_tree")
STRATEGY = option("--strategy", type=strategy_spec, metavar="FILE.py:CLASS",
                  help="decide with this user strategy instead of the predictor (docs/strategies.md; "
                       "overrides strategy.path)")
PARAM = option("--param", type=key_value, action="append", metavar="NAME=VALUE",
               help="override a strategy parameter (repeatable; overrides strategy.params)")
