"""The `tradeledger` command line. Every command has --help; --json gives machine output."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from sqlalchemy.exc import SQLAlchemyError

from tradeledger.adapters import audit, eventlog, projecting
from tradeledger.adapters import backtest
from tradeledger.adapters.agent import Agent, AgentError, build_trader, recorded_settings, run_live
from tradeledger.adapters.calendars import CalendarError
from tradeledger.adapters.marketdata import MarketDataError, load_candles
from tradeledger.adapters.markets import MarketSettingsError, data_settings, feed_settings
from tradeledger.adapters.progress import Progress, stop_on_signals
from tradeledger.adapters.reproduce import reproduce
from tradeledger.adapters.container import Container
from tradeledger.projections.rebuild import RebuildFailed
from tradeledger.settings import SettingsError, load_settings

Handler = Callable[[argparse.Namespace, Container], int]
RUN_HOUSEKEEPING_SECONDS = 5.0  # `run`: how often the projector closes the sessions of dead gateways


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


PREDICTOR = option("--predictor", metavar="NAME", help="ensemble, sma_cross, logistic or hoeffding_tree")
LIVE_DATA = option("--data", metavar="PATH", help="replay this candle file as if live instead of the synthetic market")
HOST = option("--host", metavar="HOST", help="listen address (overrides api.host, default 127.0.0.1)")
PORT = option("--port", type=int, metavar="PORT", help="listen port (overrides api.port; 0 picks a free one)")


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
    # Business time first, then the wall clock it was recorded at.
    lines = [f"{r.position:>8}  {r.at.isoformat()}  (recorded {r.recorded_at.isoformat()})  {r.type:<18} "
             f"{r.stream}@{r.version}  {msgspec.json.encode(r.data).decode()}" for r in records]
    emit(args, records, "\n".join(lines) or "no events")
    return 0


@command(
    "verify", "check hash chains, ledger invariants and read models against a fresh fold; exit 0 only if all hold",
    option("--seal", metavar="FILE", help="also check the stream heads recorded in a seal file"),
)
def verify(args: argparse.Namespace, container: Container) -> int:
    seal = msgspec.json.decode(Path(args.seal).read_bytes(), type=audit.Seal) if args.seal else None
    projecting.bulk_gc()
    report = audit.verify_log(container.store, seal=seal)
    checks, projection_findings = projecting.verify_read_models(container)
    report = audit.VerifyReport(ok=report.ok and not projection_findings, events=report.events,
                                streams=report.streams, findings=[*report.findings, *projection_findings])
    if report.ok:
        text = "\n".join([f"OK: {report.events} events in {report.streams} streams; hash chains and ledger "
                          "invariants hold; read models equal a fresh fold and reconcile",
                          *(f"  {c.name}: compared at position {c.position} (lag {c.lag})" if c.compared
                            else f"  {c.name}: moved while being read, not compared" for c in checks)])
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
    PREDICTOR,
    option("--batch", type=int, default=2000, metavar="N", help="ticks per transaction (default 2000)"),
    option("--verbose", action="store_true", help="list every gap and every bad row of the data report"),
)
def backtest_command(args: argparse.Namespace, container: Container) -> int:
    data = load_candles(args.data, symbol=args.symbol, timeframe=args.timeframe,
                        calendar=container.settings.market.calendar)
    settings = data_settings(container.settings, data)
    for line in (data.inferred, data.report.summary(verbose=args.verbose)):
        if line:
            print(line, file=sys.stderr)
    result = backtest.run(container.store, container.feed, settings, data.candles, batch_size=args.batch,
                          progress=Progress("backtest", len(data.candles)))
    emit(args, msgspec.structs.replace(result, data=data.report), backtest.describe(result))
    return 0


@command("agent", "run the agent alone on the paced feed until SIGINT/SIGTERM (scale-out process)",
         LIVE_DATA,
         PREDICTOR,
         json=False)
def agent_command(args: argparse.Namespace, container: Container) -> int:
    stop = stop_on_signals()
    settings = feed_settings(container.settings, args.data)
    agent = Agent(container.store, settings)
    run_live(agent, settings, stop, data=args.data, components=("agent",))
    return 0


@command("serve", "the API and dashboard alone against any store, following the log itself (scale-out)",
         HOST,
         PORT,
         json=False)
def serve_command(args: argparse.Namespace, container: Container) -> int:
    stop_on_signals()
    return _serve(container, on_exit=lambda: None)


@command("run", "embedded: projections, the paced agent and the API/dashboard in one process until SIGINT/SIGTERM",
         LIVE_DATA,
         PREDICTOR,
         HOST,
         PORT,
         json=False)
def run_command(args: argparse.Namespace, container: Container) -> int:
    stop = stop_on_signals()
    settings = feed_settings(container.settings, args.data)
    agent = Agent(container.store, settings)
    workers = [
        threading.Thread(target=projecting.run_projector, name="projections", kwargs={
            "container": container, "stop": stop, "every": RUN_HOUSEKEEPING_SECONDS, "report": lambda _line: None}),
        threading.Thread(target=run_live, args=(agent, settings, stop), name="agent",
                         kwargs={"data": args.data, "components": ("agent", "projections", "api")}),
    ]
    if container.settings.telegram.token is not None:
        workers.append(threading.Thread(target=container.telegram_bot().serve, args=(stop,), name="telegram"))
    for worker in workers:
        worker.start()
    try:
        return _serve(container, on_exit=stop.set)
    finally:
        stop.set()
        for worker in workers:
            worker.join()  # the agent finishes its tick and records Stopped
        projecting.runner(container).catch_up()  # the read models include every Stopped just recorded


def _serve(container: Container, *, on_exit: Callable[[], None]) -> int:
    from tradeledger.adapters.api.server import serve_foreground  # Litestar and uvicorn are slow to import (0.2 s)

    api = container.settings.api
    try:
        serve_foreground(container.api_app(), host=api.host, port=api.port,
                         heartbeat_interval=container.settings.agent.heartbeat_interval,
                         on_started=lambda url: print(f"dashboard: {url}", flush=True), on_exit=on_exit)
    except OSError as error:
        print(f"tradeledger: cannot listen on {api.host}:{api.port}: {error}", file=sys.stderr)
        return 2
    return 0


@command("project", "run the projection runner alone until SIGINT/SIGTERM, printing progress and lag (scale-out)",
         option("--every", type=float, default=5.0, metavar="S", help="report progress at most every S seconds"),
         option("--page-size", type=int, default=projecting.PAGE_SIZE, metavar="N",
                help=f"events per transaction while catching up (default {projecting.PAGE_SIZE})"),
         json=False)
def project_command(args: argparse.Namespace, container: Container) -> int:
    stop = stop_on_signals()
    projecting.bulk_gc()
    print(f"projecting {_redacted_url(container)}", flush=True)
    projecting.run_projector(container, stop=stop, every=args.every, page_size=args.page_size,
                             report=lambda line: print(line, flush=True))
    return 0


@command("telegram", "the Telegram bot alone until SIGINT/SIGTERM: commands, the alert outbox and its delivery "
         "(scale-out; a runner such as `project` keeps the read models it reads current)", json=False)
def telegram_command(args: argparse.Namespace, container: Container) -> int:
    if container.settings.telegram.token is None:
        print("tradeledger telegram: telegram.token is not set (settings file or TRADELEDGER_TELEGRAM__TOKEN)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return container.telegram_bot().serve(stop_on_signals())


@command("rebuild", "rebuild the named read models (all when none named) from the log into new tables, swapped "
         "in only when every one succeeded",
         option("names", nargs="*", metavar="NAME", help="portfolio, signals, health, activity, connections, ..."),
         option("--page-size", type=int, default=projecting.PAGE_SIZE, metavar="N",
                help=f"events per transaction (default {projecting.PAGE_SIZE})"))
def rebuild_command(args: argparse.Namespace, container: Container) -> int:
    projecting.bulk_gc()
    try:
        result = projecting.rebuild(container, args.names, page_size=args.page_size)
    except ValueError as error:
        print(f"tradeledger rebuild: {error}", file=sys.stderr)
        return 2
    except RebuildFailed as error:
        print(f"tradeledger rebuild: failed, the read models are unchanged: {error}", file=sys.stderr)
        return 2
    emit(args, result, f"rebuilt {', '.join(result.projections)} from {result.events:,} events in "
                       f"{result.seconds:.2f}s ({result.events_per_second:,.0f} events/s)")
    return 0


@command("replay", "the portfolio as it was at a log position, a business time or a wall-clock time, folded "
         "afresh from the log",
         option("--as-of", metavar="ISO-8601", help="business time: up to the last account or market event about a "
                "market time <= this (a naive time is UTC)"),
         option("--recorded-at", metavar="ISO-8601", help="recorded time: up to the last event appended at a wall "
                "time <= this, what the system held then (a naive time is UTC)"),
         option("--position", type=int, metavar="N", help="events at log positions <= N"),
         option("--account", metavar="NAME", help="the account (default: trading.account)"))
def replay_command(args: argparse.Namespace, container: Container) -> int:
    cuts = [(flag, value) for flag, value in (("--as-of", args.as_of), ("--recorded-at", args.recorded_at),
                                              ("--position", args.position)) if value is not None]
    if len(cuts) != 1:
        print("tradeledger replay: give exactly one of --as-of, --recorded-at and --position", file=sys.stderr)
        return 2
    [(flag, value)] = cuts
    try:
        moment = None if flag == "--position" else _utc(value)
    except ValueError as error:
        print(f"tradeledger replay: {flag}: {error}", file=sys.stderr)
        return 2
    projecting.bulk_gc()
    account = args.account or container.settings.trading.account
    view = projecting.portfolio_at(container, account, position=args.position,
                                   as_of=moment if flag == "--as-of" else None,
                                   recorded_at=moment if flag == "--recorded-at" else None)
    if view is None:
        print(f"tradeledger replay: account {account!r} has no events up to then", file=sys.stderr)
        return 1
    emit(args, view, projecting.describe_portfolio(view))
    return 0


@command("export", "write orders, fills, trades, signals, equity (read models, caught up) and the event log as "
         "Parquet or CSV files",
         option("--out", required=True, metavar="DIR", help="directory for the files"),
         option("--format", choices=("parquet", "csv"), default="parquet", help="file format (default parquet)"))
def export_command(args: argparse.Namespace, container: Container) -> int:
    from tradeledger.adapters.export import export  # polars is slow to import, and only this command needs it

    projecting.bulk_gc()
    projecting.runner(container).catch_up()
    written = export(container.engine, Path(args.out), args.format, eventlog.records(container.store))
    emit(args, {name: str(path) for name, path in written.items()},
         "\n".join(f"{name}: {path}" for name, path in written.items()))
    return 0


@command("health", "agent, projections, store and connections; exit 0 healthy, 1 degraded, 2 unhealthy")
def health_command(args: argparse.Namespace, container: Container) -> int:
    report = projecting.health(container)
    emit(args, report, projecting.describe_health(report))
    return report.exit_code


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _redacted_url(container: Container) -> str:
    return str(container.settings.redacted()["database"]["url"])


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", metavar="URL", default=argparse.SUPPRESS,
                        help="event store URL (sqlite:///PATH or postgresql://...); overrides database.url")
    common.add_argument("--settings", metavar="FILE", default=argparse.SUPPRESS,
                        help="a TOML or YAML settings file (.toml, .yaml, .yml)")
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
    try:
        container = Container(settings)  # migrates: the first thing that needs the database
    except SQLAlchemyError as error:
        # Exit 2 like any other unusable input; for `health` that is "unhealthy: store unreachable".
        print(f"tradeledger: cannot open the database {settings.redacted()['database']['url']}: {error}",
              file=sys.stderr)
        return 2
    with container:
        try:
            return COMMANDS[args.command_name].handler(args, container)
        except (AgentError, CalendarError, MarketDataError, MarketSettingsError) as error:
            # The data is unusable, does not fit the settings, or the store's history cannot be continued
            # by this agent: say why, start nothing.
            print(f"tradeledger {args.command_name}: {error}", file=sys.stderr)
            return 2


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"database.url": getattr(args, "database", None), "predictor.name": getattr(args, "predictor", None),
            "api.host": getattr(args, "host", None), "api.port": getattr(args, "port", None)}


if __name__ == "__main__":
    sys.exit(main())
