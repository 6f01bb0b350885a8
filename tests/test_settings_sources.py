"""Settings as the replaced bot's users have them: a YAML file, dynaconf-style quoted environment values."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tradeledger.settings import SettingsError, load_settings
from tests.conftest import ROOT

# Shaped like the replaced bot's config/config.yaml: comments, block and flow lists, bare
# numbers, a quoted token, null for "unset".
OLD_BOT_CONFIG = """\
# config/config.yaml
database:
  url: sqlite:///var/bot.sqlite
trading:
  account: paper
  quote_currency: BTC
  initial_balance: 1.5        # BTC
  symbols:
    - ETH/BTC
    - LTC/BTC
  timeframe: 5m
  update_interval: 2
  fee_rate: 0.001
  slippage_bps: 5
  position_size: 0.25
risk:
  max_daily_loss_percent: 5
  max_drawdown_percent: 20.5
  max_consecutive_losses: 3
predictor:
  name: sma_cross
  fast: 10
  slow: 30
api:
  host: 0.0.0.0
  port: 8080
  token: null
telegram:
  token: "007"
  allowed_chat_ids: [12345, -100200]
"""


def config_yaml(tmp_path: Path, text: str = OLD_BOT_CONFIG, name: str = "config.yaml") -> Path:
    path = tmp_path / "config" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def settings_error(path: Path | None = None, **environ: str) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ=environ)
    return caught.value


@pytest.mark.parametrize("name", ["config.yaml", "config.yml"])
def test_the_old_bots_yaml_file_loads_with_exact_types(tmp_path: Path, name: str) -> None:
    s = load_settings(config_yaml(tmp_path, name=name), environ={})
    assert s.database.url == "sqlite:///var/bot.sqlite"
    assert s.trading.symbols == ("ETH/BTC", "LTC/BTC") and s.trading.timeframe == "5m"
    for value, text in [(s.trading.initial_balance, "1.5"), (s.trading.fee_rate, "0.001"),
                        (s.trading.slippage_bps, "5"), (s.trading.position_size, "0.25"),
                        (s.risk.max_drawdown_percent, "20.5")]:
        assert type(value) is Decimal and str(value) == text  # a YAML float reaches Decimal as written
    assert s.trading.update_interval == 2.0 and type(s.trading.update_interval) is float
    assert (s.risk.max_consecutive_losses, s.risk.cooldown_candles) == (3, 12)  # unset keys keep defaults
    assert (s.predictor.name, s.predictor.fast, s.predictor.slow) == ("sma_cross", 10, 30)
    assert (s.api.host, s.api.port, s.api.token) == ("0.0.0.0", 8080, None)
    assert s.telegram.token == "007" and s.telegram.allowed_chat_ids == (12345, -100200)


def test_yaml_and_toml_files_with_the_same_values_give_the_same_settings(tmp_path: Path) -> None:
    toml = tmp_path / "same.toml"
    toml.write_text('[trading]\nsymbols = ["LTC/BTC"]\nfee_rate = 0.002\n[api]\nport = 9000\ntoken = "t"\n')
    yaml = config_yaml(tmp_path, "trading:\n  symbols: [LTC/BTC]\n  fee_rate: 0.002\napi:\n  port: 9000\n  token: t\n")
    assert load_settings(yaml, environ={}) == load_settings(toml, environ={})


def test_every_bad_key_of_a_yaml_file_is_reported_at_once_with_its_expected_type(tmp_path: Path) -> None:
    text = ("trading:\n  fee_rate: abc\n  symbols: []\n  fee_rat: 0.1\napi:\n  port: 70000\n"
            "telegram:\n  token: 424242\n")  # an unquoted token is a number: refused, never echoed
    error = settings_error(config_yaml(tmp_path, text))
    assert str(error).splitlines() == [
        "trading.symbols: expected a non-empty list of symbols, got []",
        "trading.fee_rate: expected a decimal >= 0 and < 1, got 'abc'",
        "api.port: expected an integer from 0 to 65535, got 70000",
        "telegram.token: expected a non-empty string (quoted in a file) or unset, got <secret>",
        "trading.fee_rat: unknown key (did you mean trading.fee_rate?)",
    ]


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trading: [1, 2\n", "settings_file: expected valid YAML (expected ',' or ']', but got '<stream end>' at line 2)"),
        ("- trading\n- risk\n", "settings_file: expected a YAML mapping of sections (trading:, risk:, ...)"),
        ("just text\n", "settings_file: expected a YAML mapping of sections"),
        ("base: &base {fee_rate: 0.1}\ntrading:\n  <<: *base\n", "expected a YAML file without aliases (*base at line 3)"),
        (ALIAS_BOMB, "expected a YAML file without aliases (*a at line 2)"),  # dynaconf hung on this
        ("trading:\n  symbols: " + "[" * 100_000 + "]" * 100_000 + "\n",
         "expected values that are scalars or lists of scalars (nested at line 2)"),
        ("x: !!python/object/apply:os.system [echo hi]\n", "settings_file: expected valid YAML (could not determine a constructor for the tag"),
        ("trading:\n  fee_rate: 1\n  fee_rate: 2\n", "settings_file: expected valid YAML (found duplicate key \"fee_rate\" with value \"2\" (original value: \"1\") at line 3)"),
    ],
)
def test_an_unusable_yaml_file_is_one_settings_error_line(tmp_path: Path, text: str, expected: str) -> None:
    path = config_yaml(tmp_path, text)
    [line] = str(settings_error(path)).splitlines()
    assert expected in line and line.endswith(f"got {str(path)!r}")


def test_a_toml_file_nested_beyond_the_recursion_limit_is_a_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("[trading]\nsymbols = " + "[" * 100_000 + "]" * 100_000 + "\n")
    [line] = str(settings_error(path)).splitlines()
    assert line.startswith("settings_file: expected valid TOML (nested deeper than a settings file needs)")


def test_a_deeply_nested_bad_value_is_reported_abbreviated(tmp_path: Path) -> None:
    path = tmp_path / "nested.toml"
    path.write_text("[trading]\nsymbols = " + "[" * 50 + '"x"' + "]" * 50 + "\n")
    [line] = str(settings_error(path)).splitlines()
    assert line == "trading.symbols: expected a non-empty list of symbols, got [[[[...]]]]"


def test_quoted_environment_values_are_read_as_dynaconf_reads_them() -> None:
    s = load_settings(environ={
        "TRADELEDGER_TRADING__INITIAL_BALANCE": '"1000"',
        "TRADELEDGER_TRADING__FEE_RATE": "'0.002'",
        "TRADELEDGER_API__PORT": '"8001"',
        "TRADELEDGER_TRADING__UPDATE_INTERVAL": '"0.25"',
        "TRADELEDGER_TRADING__SYMBOLS": '["ETH/BTC", "LTC/BTC"]',
        "TRADELEDGER_TELEGRAM__ALLOWED_CHAT_IDS": "[1, -100200]",
        "TRADELEDGER_API__TOKEN": '"007"',
        "TRADELEDGER_TELEGRAM__TOKEN": "123456",
    })
    assert s.trading.initial_balance == Decimal(1000) and str(s.trading.initial_balance) == "1000"
    assert str(s.trading.fee_rate) == "0.002" and s.api.port == 8001 and s.trading.update_interval == 0.25
    assert s.trading.symbols == ("ETH/BTC", "LTC/BTC") and s.telegram.allowed_chat_ids == (1, -100200)
    assert s.api.token == "007" and s.telegram.token == "123456"  # secrets stay exact strings


@pytest.mark.parametrize("text", ['"abc', '"a" = "b"', '"x"\nother = 1', "[", "[" * 900, "'1' '2'"])
def test_text_that_only_looks_quoted_is_taken_as_is(text: str) -> None:
    [issue] = settings_error(TRADELEDGER_TRADING__ACCOUNT="", TRADELEDGER_API__TOKEN=text).errors
    assert issue.key == "trading.account"  # the token was accepted, exactly as given
    assert load_settings(environ={"TRADELEDGER_API__TOKEN": text}).api.token == text


def test_bad_quoted_environment_values_are_all_reported_with_their_expected_type() -> None:
    error = settings_error(
        TRADELEDGER_TRADING__INITIAL_BALANCE='"abc"',
        TRADELEDGER_API__PORT='"70000"',
        TRADELEDGER_TRADING__SYMBOLS="[]",
        TRADELEDGER_API__TOKEN='["s3cr3t"]',
    )
    assert str(error).splitlines() == [
        "trading.initial_balance: expected a decimal from 1E-8 to 1E+12, got 'abc'",
        "trading.symbols: expected a non-empty list of symbols, got []",
        "api.port: expected an integer from 0 to 65535, got '70000'",
        "api.token: expected a non-empty string (quoted in a file) or unset, got <secret>",
    ]


def test_the_cli_reads_a_yaml_settings_file_and_a_quoted_environment_number(tmp_path: Path) -> None:
    database = tmp_path / "from-yaml.sqlite"
    path = config_yaml(tmp_path, f"database:\n  url: sqlite:///{database}\ntrading:\n  symbols: [ETH/BTC]\n")
    env = {"PATH": "/usr/bin:/bin", "TRADELEDGER_TRADING__INITIAL_BALANCE": '"1000"'}
    result = subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "--settings", str(path), "db", "upgrade", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["database"] == f"sqlite:///{database}" and database.exists()

    env["TRADELEDGER_TRADING__INITIAL_BALANCE"] = '"-1"'
    result = subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "--settings", str(path), "db", "upgrade"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["tradeledger: invalid settings",
                                          "trading.initial_balance: expected a decimal from 1E-8 to 1E+12, got '-1'"]
