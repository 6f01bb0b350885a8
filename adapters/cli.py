"""The `tradeledger` command line. Every command has --help; --json gives machine output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from adapters import audit, eventlog
from adapters import backtest
from adapters.agent import Agent, AgentError, build_trader, recorded_settings, run_live
from adapters.marketdata import MarketDataError, load_candles
from adapters.progress import Progress, stop_on_signals
from adapters.reproduce import reproduce
from adapters.container import Container
from settings import SettingsError, load_settings

Handler = Callable[[argparse.Namespace, Container], int]


class Command(NamedTuple):
    handler: Handler
    help: str
    options: tuple[tuple[tuple[str, ...], dict[str, Any]], ...]
    json: bool


COMMANDS: dict[str, Command] = {}


def option(*flags: str, **kwargs: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, kwargs


def command(name: str, help: str, *options: tuple[tuple[str, ...], dict[str, Any]], json: bool = True
            ) -> Callable[[Handler], Handler]:
    """Register a subcommand ("db upgrade" nests) with its argparse options next to its handler."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(handler, help, options, json)
        return handler

    return register


def emit(args: argparse.Namespace, value: Any, text: str) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


@command("db upgrade", "alembic upgrade head (also done on every start)")
def db_upgrade(args: argparse.Namespace, container: Container) -> int:
    emit(args, {"upgraded": True, "database": _redacted_url(container)}, f"database is at head: {_redacted_url(container)}")
    return 0


@command(
    "events", "the audit log, paged",
    option("--after", type=int, default=0, metavar="N", help="only events after log position N"),
    option("--limit", type=int, default=100, metavar="N", help="at most N events (default 100)"),
    option("--type", action="append", metavar="T", help="only events of type T (repeatable), e.g. OrderFilled"),
)
def events(args: argparse.Namespace, container: Container) -> int:
    try:
        records = eventlog.page(container.store, after=args.after, limit=args.limit, types=args.type)
    except ValueError as error:
        print(f"tradeledger events: {error}", file=sys.stderr)
        return 2
    lines = [f"{r.position:>8}  {r.at.isoformat()}  {r.type:<18} {r.stream}@{r.version}  "
             f"{msgspec.json.encode(r.data).decode()}" for r in records]
    emit(args, records, "\n".join(lines) or "no events")
    return 0


@command(
    "verify", "check hash chains and ledger invariants; exit 0 only if all hold",
    option("--seal", metavar="FILE", help="also check the stream heads recorded in a seal file"),
)
def verify(args: argparse.Namespace, container: Container) -> int:
    seal = msgspec.json.decode(Path(args.seal).read_bytes(), type=audit.Seal) if args.seal else None
    report = audit.verify_log(container.store, seal=seal)
    if report.ok:
        text = f"OK: {report.events} events in {report.streams} streams; hash chains and ledger invariants hold"
    else:
        text = "\n".join([f"FAILED: {len(report.findings)} finding(s); the first:", f"  {report.findings[0]}",
                          *(f"  {f}" for f in report.findings[1:20])])
    emit(args, report, text)
    return 0 if report.ok else 1


@command(
    "seal", "export every stream's head hash (detects truncation later)",
    option("--out", metavar="FILE", help="write the seal to FILE"),
)
def seal(args: argparse.Namespace, container: Container) -> int:
    value = audit.make_seal(container.store)
    data = msgspec.json.format(msgspec.json.encode(value))
    if args.out:
        Path(args.out).write_bytes(data)
    emit(args, value, f"sealed {len(value.streams)} streams at position {value.head_position}"
         + (f" -> {args.out}" if args.out else "\n" + data.decode()))
    return 0


@command(
    "reproduce", "re-run every recorded decision from the recorded candles and compare; exit 1 on divergence",
)
def reproduce_command(args: argparse.Namespace, container: Container) -> int:
    settings = recorded_settings(container.store, container.settings)
    report = reproduce(container.store, lambda: build_trader(settings))
    text = (f"OK: {report.candles} candles replayed, {report.decisions} decisions reproduced exactly"
            if report.ok else f"DIVERGED after {report.candles} candles: {report.divergence}")
    emit(args, report, text)
    return 0 if report.ok else 1


@command(
    "backtest", "run the agent over a candle file as fast as it can, recording everything; print a summary",
    option("--data", required=True, metavar="PATH", help="CSV, Parquet or JSON candles"),
    option("--symbol", metavar="S", help="symbol (default: from the file name, e.g. ETH_BTC-5m.csv -> ETH/BTC)"),
    option("--timeframe", metavar="TF", help="timeframe (default: from the file name or the spacing)"),
    option("--predictor", metavar="NAME", help="ensemble, sma_cross, logistic or hoeffding_tree"),
    option("--batch", type=int, default=2000, metavar="N", help="ticks per transaction (default 2000)"),
)
def backtest_command(args: argparse.Namespace, container: Container) -> int:
    try:
        data = load_candles(args.data, symbol=args.symbol, timeframe=args.timeframe)
    except MarketDataError as error:
        print(f"tradeledger backtest: {error}", file=sys.stderr)
        return 2
    print(data.report.summary(), file=sys.stderr)
    result = backtest.run(container.store, container.settings, data.candles, batch_size=args.batch,
                          progress=Progress("backtest", len(data.candles)))
    emit(args, result, backtest.describe(result))
    return 0


@command("agent", "run the agent alone on the paced feed until SIGINT/SIGTERM (scale-out process)",
         option("--data", metavar="PATH", help="replay this candle file as if live instead of the synthetic market"),
         option("--predictor", metavar="NAME", help="ensemble, sma_cross, logistic or hoeffding_tree"),
         json=False)
def agent_command(args: argparse.Namespace, container: Container) -> int:
    stop = stop_on_signals()
    try:
        agent = Agent(container.store, container.settings)
    except AgentError as error:
        print(f"tradeledger agent: {error}", file=sys.stderr)
        return 2
    run_live(agent, container.settings, stop, data=args.data, components=("agent",))
    return 0


def _redacted_url(container: Container) -> str:
    return str(container.settings.redacted()["database"]["url"])


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", metavar="URL", default=argparse.SUPPRESS,
                        help="event store URL (sqlite:///PATH or postgresql://...); overrides database.url")
    common.add_argument("--settings", metavar="FILE", default=argparse.SUPPRESS, help="a TOML settings file")
    parser = argparse.ArgumentParser(prog="tradeledger", parents=[common],
                                     description="An event-sourced paper-trading ledger.")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {
        "": parser.add_subparsers(dest="command", metavar="COMMAND", required=True)}
    for name, spec in COMMANDS.items():
        *parents, leaf = name.split()
        sub = groups[""]
        for depth, parent in enumerate(parents, start=1):
            key = " ".join(parents[:depth])
            if key not in groups:
                groups[key] = sub.add_parser(parent, parents=[common], help=f"{parent} commands").add_subparsers(
                    dest=f"command_{depth}", metavar="COMMAND", required=True)
            sub = groups[key]
        command_parser = sub.add_parser(leaf, parents=[common], help=spec.help, description=spec.help)
        command_parser.set_defaults(command_name=name)
        for flags, kwargs in spec.options:
            command_parser.add_argument(*flags, **kwargs)
        if spec.json:
            command_parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(getattr(args, "settings", None), overrides=overrides(args))
    except SettingsError as error:
        print(f"tradeledger: invalid settings\n{error}", file=sys.stderr)
        return 2
    with Container(settings) as container:
        return COMMANDS[args.command_name].handler(args, container)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"database.url": getattr(args, "database", None), "predictor.name": getattr(args, "predictor", None)}


if __name__ == "__main__":
    sys.exit(main())
