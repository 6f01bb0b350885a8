"""Command start-up: each command imports what it uses, and the commands that only read import little.

Measured as behaviour, not time: a fresh interpreter runs the command and lists the modules it imported.
No command that only reads imports the slow libraries (polars for reading candle files, Litestar to serve,
python-telegram-bot for the bot, river for river models, ccxt for exchanges, plotly for charts, alembic to
migrate a schema or to tell an old one from a newer release's). `--help` imports no command's module and
no database library; `health` reads the head and the read models without the event store's classes, the
folds or the domain (docs/benchmarks.md has the times).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tradeledger.adapters.cli import main

ROOT = Path(__file__).resolve().parents[1]
SLOW = {"polars", "litestar", "telegram", "river", "ccxt", "plotly", "alembic"}
PROBE = """
import contextlib, io, json, sys
from tradeledger.adapters.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(*argv: str) -> set[str]:
    """Every module a fresh interpreter imported to run `tradeledger ARGV`, and each module's top package."""
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    modules = json.loads(result.stdout.splitlines()[-1])
    return {*modules, *(m.split(".")[0] for m in modules)}


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "db", "upgrade", "--database", url], cwd=ROOT,
                   check=True, capture_output=True)
    return url


@pytest.mark.parametrize("argv", [("--help",), ("health",), ("events",)])
def test_reading_commands_import_no_slow_library(argv: tuple[str, ...], store: str) -> None:
    assert imported_by(*argv, *(["--database", store] if argv != ("--help",) else [])) & SLOW == set()


def test_help_imports_no_command_and_no_database_library() -> None:
    imported = imported_by("--help")
    assert {m for m in imported if m.startswith("tradeledger.adapters.cli_")} == {"tradeledger.adapters.cli_commands"}
    assert imported & {"sqlalchemy", "dynaconf", "eventsourcing"} == set()


def test_health_reads_without_the_event_store_the_folds_or_the_domain(store: str) -> None:
    imported = imported_by("health", "--database", store)
    assert "tradeledger.adapters.services.health" in imported, "the probe saw the command run"
    assert imported & {"eventsourcing", "tradeledger.adapters.eventstore", "tradeledger.projections.registry",
                       "tradeledger.domain.account", "tradeledger.domain.agent_run"} == set()


def test_a_command_imports_its_own_module_only() -> None:
    imported = imported_by("backtest", "--help")
    assert {m for m in imported if m.startswith("tradeledger.adapters.cli_")} == {
        "tradeledger.adapters.cli_commands", "tradeledger.adapters.cli_backtest", "tradeledger.adapters.cli_report"}


def test_reading_a_candle_file_is_where_polars_comes_in() -> None:
    # The probe sees imports at all: reading candles does import polars.
    data = ROOT.parent / "shared" / "data" / "candles" / "ETH_BTC-5m.csv"
    probe = (f"import sys; from tradeledger.adapters.marketdata import load_candles; load_candles({str(data)!r}); "
             "print('polars' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"


def test_the_collector_is_back_on_when_the_command_runs(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start-up pauses the garbage collector and freezes what the imports made; the command runs with it on."""
    from tradeledger.adapters import cli_health

    seen: list[bool] = []
    describe = cli_health.describe_health
    monkeypatch.setattr(cli_health, "describe_health", lambda report: seen.append(gc.isenabled()) or describe(report))
    main(["health", "--database", store])
    assert seen == [True]
