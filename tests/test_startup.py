"""Command start-up: the commands that only read the log import none of the slow libraries.

Measured as behaviour, not time: a fresh interpreter runs the command and lists which of the slow
packages it imported (polars for reading candle files, Litestar to serve, python-telegram-bot for the
bot, river for river models, ccxt for exchanges, plotly for charts, alembic to migrate a schema or to tell
an old one from a newer release's); each is imported only where used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLOW = ("polars", "litestar", "telegram", "river", "ccxt", "plotly", "alembic")
PROBE = """
import contextlib, io, json, sys
from tradeledger.adapters.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(%r))))
""" % (SLOW,)


def imported_by(*argv: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", [("--help",), ("health", "--database", "{url}"), ("events", "--database", "{url}")])
def test_reading_commands_import_no_slow_library(argv: tuple[str, ...], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "db", "upgrade", "--database", url], cwd=ROOT,
                   check=True, capture_output=True)
    assert imported_by(*(a.format(url=url) for a in argv)) == []


def test_reading_a_candle_file_is_where_polars_comes_in() -> None:
    # The probe sees imports at all: reading candles does import polars.
    data = ROOT.parent / "shared" / "data" / "candles" / "ETH_BTC-5m.csv"
    probe = (f"import sys; from tradeledger.adapters.marketdata import load_candles; load_candles({str(data)!r}); "
             "print('polars' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
