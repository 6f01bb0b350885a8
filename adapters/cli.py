"""The `tradeledger` command line. Every command has --help; --json gives machine output."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy.exc import SQLAlchemyError

from tradeledger.adapters import database, eventlog
from tradeledger.adapters import cli_backtest  # noqa: F401 - registers backtest
from tradeledger.adapters import cli_books  # noqa: F401 - registers explain, journal, trial-balance
from tradeledger.adapters import cli_download  # noqa: F401 - registers download
from tradeledger.adapters import cli_files  # noqa: F401 - registers export, statement
from tradeledger.adapters import cli_log  # noqa: F401 - registers keys new, seal, prove
from tradeledger.adapters import cli_report  # noqa: F401 - registers report
from tradeledger.adapters import cli_reproduce
from tradeledger.adapters.cli_format import describe_health, describe_portfolio
from tradeledger.adapters.calendars import CalendarError
from tradeledger.adapters.checkpoints import KeyFileError
from tradeledger.adapters.cliargs import (COMMANDS, LIMITS, LOG_POSITIONS, PAGE_SIZES, PARAM, PORTS, PREDICTOR,
                                          SECONDS, STRATEGY, UsageError, build_parser, command, emit, fail, integer,
                                          number, option, redacted_url, utc_time)
from tradeledger.adapters.database import StoreUnavailable
from tradeledger.adapters.exchange import ExchangeError
from tradeledger.adapters.marketdata import MarketDataError
from tradeledger.adapters.markets import MarketSettingsError
from tradeledger.adapters.progress import stop_on_signals
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.services import audit, readmodels
from tradeledger.adapters.services.trading import AgentError, run_live
from tradeledger.adapters.strategies import StrategyError, StrategyMismatch, with_params
from tradeledger.projections.rebuild import RebuildFailed
from tradeledger.settings import SettingsError, load_settings

DEBUG = "TRADELEDGER_DEBUG"  # set to 1: an unexpected error also prints its traceback


LIVE_DATA = option("--data", action="append", metavar="PATH",
                   help="replay this candle file (repeatable, or a directory of them) as if live instead of the "
                        "synthetic market")
LIVE_EXCHANGE = option("--exchange", metavar="NAME",
                       help="trade this exchange's closed candles as they close (overrides exchange.name)")
LIVE_SPEED = option("--speed", type=number(1, 1_000_000), metavar="N",
                    help="the synthetic demo: N candle times per candle time, never ahead of the wall clock "
                         "(overrides trading.speed, default 1)")
LIVE_API_URL = option("--api-url", metavar="URL", help="the exchange's REST base URL (overrides exchange.api_url)")
HOST = option("--host", metavar="HOST", help="listen address (overrides api.host, default 127.0.0.1)")
PORT = option("--port", type=integer(*PORTS), metavar="PORT",
              help="listen port (overrides api.port; 0 picks a free one)")


@command("db upgrade", "alembic upgrade head (also done on every start)")
def db_upgrade(args: argparse.Namespace, container: Composition) -> int:
    emit(args, {"upgraded": True, "database": redacted_url(container.settings)}, f"database is at head: {redacted_url(container.settings)}")
    return 0


@command(
    "events", "the audit log, paged",
    option("--after", type=integer(*LOG_POSITIONS), default=0, metavar="N", help="only events after log position N"),
    option("--limit", type=integer(*LIMITS), default=100, metavar="N", help="at most N events (default 100)"),
    option("--type", action="append", metavar="T", help="only events of type T (repeatable), e.g. OrderFilled"),
    reads="log",
)
def events(args: argparse.Namespace, container: Composition) -> int:
    try:
        records = eventlog.audit_page(container.feed, after=args.after, limit=args.limit, types=args.type)
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
    option("--checkpoint", type=cli_log.CHECKPOINT, metavar="FILE",
           help="also check the log against this signed checkpoint (the Merkle tree, docs/log-format.md)"),
    option("--public-key", type=cli_log.public_key_file, metavar="FILE",
           help="the checkpoint's public key (default: audit.signing_key + .pub)"),
    reads="log and read models",
)
def verify(args: argparse.Namespace, container: Composition) -> int:
    readmodels.bulk_gc()
    try:
        tree_findings = cli_log.checkpoint_findings(args, container)
    except KeyFileError as error:
        return fail(args.command_name, str(error))
    report = audit.verify_log(container.feed)
    checks, projection_findings = audit.verify_read_models(container.engine, container.feed)
    findings = [*tree_findings, *report.findings, *projection_findings]
    report = audit.VerifyReport(ok=not findings, events=report.events, streams=report.streams, findings=findings)
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
    "reproduce", "re-run every recorded decision from the recorded candles and compare; exit 1 on divergence",
    STRATEGY,
    *cli_reproduce.OPTIONS,
    reads="log",
)
def reproduce_command(args: argparse.Namespace, container: Composition) -> int:
    return cli_reproduce.reproduce_command(args, container)  # --all, --data, --with


@command("agent", "run the agent alone on the paced feed until SIGINT/SIGTERM (scale-out process)",
         LIVE_DATA,
         LIVE_EXCHANGE,
         LIVE_API_URL,
         LIVE_SPEED,
         PREDICTOR,
         STRATEGY,
         PARAM,
         json=False)
def agent_command(args: argparse.Namespace, container: Composition) -> int:
    stop = stop_on_signals()
    exchange, settings = container.paced_settings(args.data)
    agent = container.agent(settings)
    agent.resume()
    run_live(agent, settings, stop, data=args.data, exchange=exchange, components=("agent",))
    container.checkpoint_on_stop()
    return 0


@command("serve", "the API and dashboard alone against any store, following the log itself (scale-out)",
         HOST,
         PORT,
         json=False)
def serve_command(args: argparse.Namespace, container: Composition) -> int:
    return _serve(container, stop_on_signals())


@command("run", "embedded: projections, the paced agent and the API/dashboard in one process until SIGINT/SIGTERM",
         LIVE_DATA,
         LIVE_EXCHANGE,
         LIVE_API_URL,
         LIVE_SPEED,
         PREDICTOR,
         STRATEGY,
         PARAM,
         HOST,
         PORT,
         json=False)
def run_command(args: argparse.Namespace, container: Composition) -> int:
    failure = container.run(data=args.data, stop=stop_on_signals(), on_started=dashboard_started)
    if failure is not None:
        print(f"tradeledger run: {failure}", file=sys.stderr)
        return 1
    return 0


def _serve(container: Composition, stop: threading.Event) -> int:
    try:
        container.serve(stop=stop, on_started=dashboard_started)
    except OSError as error:
        api = container.settings.api
        print(f"tradeledger: cannot listen on {api.host}:{api.port}: {error}", file=sys.stderr)
        return 2
    return 0


def dashboard_started(url: str) -> None:
    print(f"dashboard: {url}", flush=True)


@command("project", "run the projection runner alone until SIGINT/SIGTERM, printing progress and lag (scale-out)",
         option("--every", type=number(*SECONDS), default=5.0, metavar="S",
                help="report progress at most every S seconds"),
         option("--page-size", type=integer(*PAGE_SIZES), default=readmodels.PAGE_SIZE, metavar="N",
                help=f"events per transaction while catching up (default {readmodels.PAGE_SIZE})"),
         json=False)
def project_command(args: argparse.Namespace, container: Composition) -> int:
    stop = stop_on_signals()
    readmodels.bulk_gc()
    print(f"projecting {redacted_url(container.settings)}", flush=True)
    container.run_projector(stop=stop, every=args.every, page_size=args.page_size,
                             report=lambda line: print(line, flush=True))
    return 0


@command("telegram", "the Telegram bot alone until SIGINT/SIGTERM: commands, the alert outbox and its delivery "
         "(scale-out; a runner such as `project` keeps the read models it reads current)", json=False)
def telegram_command(args: argparse.Namespace, container: Composition) -> int:
    if container.settings.telegram.token is None:
        print("tradeledger telegram: telegram.token is not set (settings file or TRADELEDGER_TELEGRAM__TOKEN)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return container.telegram_bot().serve(stop_on_signals())


@command("rebuild", "rebuild the named read models (all when none named) from the log into new tables, swapped "
         "in only when every one succeeded",
         option("names", nargs="*", metavar="NAME", help="portfolio, signals, health, activity, connections, ..."),
         option("--page-size", type=integer(*PAGE_SIZES), default=readmodels.PAGE_SIZE, metavar="N",
                help=f"events per transaction (default {readmodels.PAGE_SIZE})"))
def rebuild_command(args: argparse.Namespace, container: Composition) -> int:
    readmodels.bulk_gc()
    try:
        result = readmodels.rebuild(container.feed, container.engine, args.names, page_size=args.page_size)
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
         option("--as-of", type=utc_time, metavar="ISO-8601",
                help="business time: up to the last account or market event about a "
                "market time <= this (a naive time is UTC)"),
         option("--recorded-at", type=utc_time, metavar="ISO-8601",
                help="recorded time: up to the last event appended at a wall "
                "time <= this, what the system held then (a naive time is UTC)"),
         option("--position", type=integer(*LOG_POSITIONS), metavar="N", help="events at log positions <= N"),
         option("--account", metavar="NAME", help="the account (default: trading.account)"),
         reads="log")
def replay_command(args: argparse.Namespace, container: Composition) -> int:
    cuts = [flag for flag, value in (("--as-of", args.as_of), ("--recorded-at", args.recorded_at),
                                              ("--position", args.position)) if value is not None]
    if len(cuts) != 1:
        print("tradeledger replay: give exactly one of --as-of, --recorded-at and --position", file=sys.stderr)
        return 2
    readmodels.bulk_gc()
    account = args.account or container.settings.trading.account
    view = readmodels.portfolio_at(container.feed, account, position=args.position, as_of=args.as_of,
                                   recorded_at=args.recorded_at)
    if view is None:
        print(f"tradeledger replay: account {account!r} has no events up to then", file=sys.stderr)
        return 1
    emit(args, view, describe_portfolio(view))
    return 0


@command("health", "agent, projections, store and connections; exit 0 healthy, 1 degraded, 2 unhealthy",
         reads="log and read models")
def health_command(args: argparse.Namespace, container: Composition) -> int:
    report = container.health.report()
    emit(args, report, describe_health(report))
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run one command, exit: 0 or the command's own code; 2 for any error, in one line on stderr."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:  # a bad argument: one line, exit 2, before anything is opened
        print(error, file=sys.stderr)
        return 2
    try:
        return run(args)
    except Exception as error:  # noqa: BLE001 - the last line of defence: no command ends in a traceback
        if os.environ.get(DEBUG) == "1":
            traceback.print_exc()
        return fail(args.command_name, f"{type(error).__name__}: {error}")


def run(args: argparse.Namespace) -> int:
    try:
        settings = with_params(load_settings(getattr(args, "settings", None), overrides=overrides(args)),
                               getattr(args, "param", None))
    except SettingsError as error:
        print(f"tradeledger: invalid settings\n{error}", file=sys.stderr)  # every bad key, one per line
        return 2
    spec = COMMANDS[args.command_name]
    try:
        if spec.reads is not None:
            database.check_store(settings.database.url, need_head=spec.reads == "log and read models")
        container = Composition(settings, read_only=spec.reads is not None, durable=spec.durable)
        if spec.reads is None and spec.store:
            container.migrate()  # the first thing that needs the database
    except SQLAlchemyError as error:
        # Exit 2 like any other unusable input; for `health` that is "unhealthy: store unreachable".
        return fail(args.command_name, f"cannot open the database {settings.redacted()['database']['url']}: "
                                       f"{getattr(error, 'orig', None) or error}")
    except StoreUnavailable as error:
        return fail(args.command_name, str(error))
    with container:
        try:
            return spec.handler(args, container)
        except StrategyMismatch as error:  # a finding (reproduce): the history was decided by other code
            print(f"tradeledger {args.command_name}: {error}", file=sys.stderr)
            return 1
        except (AgentError, CalendarError, ExchangeError, KeyFileError, MarketDataError, MarketSettingsError,
                StrategyError) as error:
            # The data is unusable, does not fit the settings, or the store's history cannot be continued
            # by this agent: say why, start nothing.
            return fail(args.command_name, str(error))


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"database.url": getattr(args, "database", None), "predictor.name": getattr(args, "predictor", None),
            "api.host": getattr(args, "host", None), "api.port": getattr(args, "port", None),
            "trading.speed": getattr(args, "speed", None),
            "exchange.name": getattr(args, "exchange", None), "exchange.api_url": getattr(args, "api_url", None),
            "strategy.path": getattr(args, "strategy", None),
            "trading.fee_rate": getattr(args, "fee", None), "trading.slippage_bps": getattr(args, "slippage_bps", None),
            "trading.initial_balance": getattr(args, "initial_balance", None)}


if __name__ == "__main__":
    sys.exit(main())
