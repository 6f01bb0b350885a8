"""The `tradeledger` command line. Every command has --help; --json gives machine output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from adapters import audit, eventlog
from adapters.container import Container
from settings import SettingsError, load_settings

Handler = Callable[[argparse.Namespace, Container], int]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = handler
        return handler

    return register


def emit(args: argparse.Namespace, value: Any, text: str) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


@command("db upgrade")
def db_upgrade(args: argparse.Namespace, container: Container) -> int:
    emit(args, {"upgraded": True, "database": _redacted_url(container)}, f"database is at head: {_redacted_url(container)}")
    return 0


@command("events")
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


@command("verify")
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


@command("seal")
def seal(args: argparse.Namespace, container: Container) -> int:
    value = audit.make_seal(container.store)
    data = msgspec.json.format(msgspec.json.encode(value))
    if args.out:
        Path(args.out).write_bytes(data)
    emit(args, value, f"sealed {len(value.streams)} streams at position {value.head_position}"
         + (f" -> {args.out}" if args.out else "\n" + data.decode()))
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    db = sub.add_parser("db", parents=[common], help="database schema").add_subparsers(dest="db_command", required=True)
    add_json(db.add_parser("upgrade", parents=[common], help="alembic upgrade head (also done on every start)"))

    ev = sub.add_parser("events", parents=[common], help="the audit log, paged")
    ev.add_argument("--after", type=int, default=0, metavar="N", help="only events after log position N")
    ev.add_argument("--limit", type=int, default=100, metavar="N", help="at most N events (default 100)")
    ev.add_argument("--type", action="append", metavar="T", help="only events of type T (repeatable), e.g. OrderFilled")
    add_json(ev)

    ve = sub.add_parser("verify", parents=[common],
                        help="check hash chains and ledger invariants; exit 0 only if all hold")
    ve.add_argument("--seal", metavar="FILE", help="also check the stream heads recorded in a seal file")
    add_json(ve)

    se = sub.add_parser("seal", parents=[common], help="export every stream's head hash (detects truncation later)")
    se.add_argument("--out", metavar="FILE", help="write the seal to FILE")
    add_json(se)
    return parser


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def command_name(args: argparse.Namespace) -> str:
    return f"db {args.db_command}" if args.command == "db" else args.command


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(getattr(args, "settings", None), overrides=overrides(args))
    except SettingsError as error:
        print(f"tradeledger: invalid settings\n{error}", file=sys.stderr)
        return 2
    with Container(settings) as container:
        return COMMANDS[command_name(args)](args, container)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"database.url": getattr(args, "database", None)}


if __name__ == "__main__":
    sys.exit(main())
