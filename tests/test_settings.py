"""Settings: layering, typing, validation in one pass, secrets and the config digest."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from tradeledger.settings import Settings, SettingsError, load_settings


def write(tmp_path: Path, text: str, name: str = "user.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(**kwargs: Any) -> SettingsError:
    kwargs.setdefault("environ", {})
    with pytest.raises(SettingsError) as caught:
        load_settings(**kwargs)
    return caught.value


def flat(settings: Settings) -> dict[str, Any]:
    return {
        f"{section}.{name}": value
        for section, values in settings.redacted().items()
        for name, value in values.items()
    }


def test_defaults_load_with_exact_types() -> None:
    s = load_settings(environ={})
    assert s.database.url == "sqlite:///var/tradeledger.sqlite"
    assert (s.trading.account, s.trading.quote_currency) == ("paper", None)  # auto: the symbols' quote
    assert s.market.calendar == "24/7"
    assert s.trading.symbols == ("ETH/BTC",)
    assert s.trading.timeframe == "5m"
    for value, expected in [
        (s.trading.initial_balance, "1"),
        (s.trading.fee_rate, "0.001"),
        (s.trading.slippage_bps, "5"),
        (s.trading.position_size, "0.5"),
        (s.risk.max_daily_loss_percent, "5"),
        (s.risk.max_drawdown_percent, "20"),
    ]:
        assert type(value) is Decimal and str(value) == expected
    for value in (s.trading.update_interval, s.agent.heartbeat_interval, s.projections.poll_interval):
        assert type(value) is float
    assert (s.trading.update_interval, s.agent.heartbeat_interval, s.projections.poll_interval) == (1.0, 5.0, 0.5)
    assert (s.risk.max_consecutive_losses, s.risk.cooldown_candles, s.risk.exit_on_drawdown) == (5, 12, True)
    assert (s.predictor.name, s.predictor.seed, s.predictor.fast, s.predictor.slow) == ("ensemble", 42, 10, 20)
    assert (s.api.host, s.api.port, s.api.token) == ("127.0.0.1", 8000, None)
    assert (s.telegram.token, s.telegram.allowed_chat_ids) == (None, ())
    assert s.telegram.base_url == "https://api.telegram.org/bot"
    assert s.projections.health_file is None


def test_user_file_overrides_defaults_and_replaces_lists(tmp_path: Path) -> None:
    path = write(tmp_path, '[trading]\nsymbols = ["LTC/BTC"]\nfee_rate = 0.1\n[api]\nport = 9000\n')
    s = load_settings(path, environ={})
    assert s.trading.symbols == ("LTC/BTC",)  # replaced, not merged with the default list
    assert s.trading.fee_rate == Decimal("0.1") and str(s.trading.fee_rate) == "0.1"
    assert s.api.port == 9000
    assert s.trading.account == "paper" and s.api.host == "127.0.0.1"


def test_env_overrides_file_and_overrides_beat_env(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///file.sqlite"\n[predictor]\nname = "logistic"\n')
    environ = {
        "TRADELEDGER_DATABASE__URL": "sqlite:///env.sqlite",
        "TRADELEDGER_PREDICTOR__NAME": "hoeffding_tree",
        "TRADELEDGER_TRADING__FEE_RATE": "0",
    }
    s = load_settings(path, environ=environ)
    assert (s.database.url, s.predictor.name, s.trading.fee_rate) == ("sqlite:///env.sqlite", "hoeffding_tree", 0)
    s = load_settings(
        path,
        overrides={"database.url": "sqlite:///x.sqlite", "predictor.name": "sma_cross", "trading.fee_rate": None},
        environ=environ,
    )
    assert (s.database.url, s.predictor.name) == ("sqlite:///x.sqlite", "sma_cross")
    assert s.trading.fee_rate == 0  # a None override is ignored, env still applies


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADELEDGER_API__PORT", "8123")
    assert load_settings().api.port == 8123
    assert load_settings(environ={}).api.port == 8000


def test_numbers_given_as_strings_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, '[trading]\nposition_size = "0.25"\nupdate_interval = "2.5"\n[api]\nport = "300"\n')
    environ = {
        "TRADELEDGER_RISK__COOLDOWN_CANDLES": "0",
        "TRADELEDGER_TELEGRAM__ALLOWED_CHAT_IDS": "1, -100200",
        "TRADELEDGER_TRADING__SYMBOLS": "ETH/BTC,LTC/BTC",
    }
    s = load_settings(path, environ=environ)
    assert s.trading.position_size == Decimal("0.25") and s.trading.update_interval == 2.5
    assert s.api.port == 300 and s.risk.cooldown_candles == 0
    assert s.telegram.allowed_chat_ids == (1, -100200)
    assert s.trading.symbols == ("ETH/BTC", "LTC/BTC")
    assert load_settings(path, environ={}, overrides={"telegram.allowed_chat_ids": ["7"]}).telegram.allowed_chat_ids == (7,)


def test_booleans_are_not_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "[api]\nport = true\n[trading]\nfee_rate = false\nupdate_interval = true\n")
    assert {e.key for e in error_of(settings_file=path).errors} == {
        "api.port",
        "trading.fee_rate",
        "trading.update_interval",
    }


def test_exit_on_drawdown_is_a_boolean_in_every_layer(tmp_path: Path) -> None:
    assert load_settings(environ={}).risk.exit_on_drawdown is True
    assert load_settings(write(tmp_path, "[risk]\nexit_on_drawdown = false\n"), environ={}).risk.exit_on_drawdown is False
    for text, expected in [("false", False), ("0", False), ("True", True), ("yes", True)]:
        assert load_settings(environ={"TRADELEDGER_RISK__EXIT_ON_DRAWDOWN": text}).risk.exit_on_drawdown is expected
    [issue] = error_of(environ={"TRADELEDGER_RISK__EXIT_ON_DRAWDOWN": "maybe"}).errors
    assert issue.describe() == "risk.exit_on_drawdown: expected true or false, got 'maybe'"


def test_every_bad_key_is_reported_in_one_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[trading]\nfee_rate = "abc"\nsymbols = []\nfee_rat = 0.1\n'
        '[api]\nport = 70000\n[predictor]\nfast = 20\nslow = 20\n',
    )
    error = error_of(settings_file=path)
    assert [e.key for e in error.errors] == [
        "trading.symbols",
        "trading.fee_rate",
        "api.port",
        "predictor.slow",
        "trading.fee_rat",
    ]
    lines = str(error).splitlines()
    assert len(lines) == 5
    assert "trading.fee_rate: expected a decimal >= 0 and < 1, got 'abc'" in lines
    assert "api.port: expected an integer from 0 to 65535, got 70000" in lines
    assert any(line.startswith("predictor.slow: expected an integer > predictor.fast") for line in lines)
    assert any(line.startswith("trading.fee_rat: unknown key") for line in lines)


def test_unknown_env_key_is_reported_and_foreign_names_are_ignored() -> None:
    environ = {"TRADELEDGER_TRADING__FEE_RAT": "0", "TRADELEDGER_HOME": "/x", "OTHER__KEY": "1"}
    error = error_of(environ=environ)
    assert [(e.key, e.expected.split(" (")[0]) for e in error.errors] == [("trading.fee_rat", "unknown key")]


def test_unknown_override_key_is_reported() -> None:
    assert [e.key for e in error_of(overrides={"predictor.nmae": "x"}).errors] == ["predictor.nmae"]


@pytest.mark.parametrize("name", ["missing.toml", "missing.yaml", "settings.ini"])
def test_missing_or_unsupported_file_names_the_path(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".ini"):
        path.write_text("[trading]\n")
    error = error_of(settings_file=path)
    assert str(path) in str(error) and error.errors[0].key == "settings_file"
    assert "expected an existing .toml, .yaml, .yml file" in str(error)


def test_malformed_toml_is_a_settings_error(tmp_path: Path) -> None:
    error = error_of(settings_file=write(tmp_path, "[trading\n"))
    assert "valid TOML" in str(error)


def test_bad_database_scheme_and_timeframe(tmp_path: Path) -> None:
    environ = {"TRADELEDGER_DATABASE__URL": "mysql://x", "TRADELEDGER_TRADING__TIMEFRAME": "5s"}
    assert {e.key for e in error_of(environ=environ).errors} == {"database.url", "trading.timeframe"}
    ok = {"TRADELEDGER_DATABASE__URL": "postgresql+psycopg://u@h/db", "TRADELEDGER_TRADING__TIMEFRAME": "1h"}
    assert load_settings(environ=ok).trading.timeframe == "1h"


@pytest.mark.parametrize("path", ["/tmp/a?b/s.sqlite", "/tmp/a#b/s.sqlite"])
def test_a_sqlite_path_with_a_uri_character_is_refused(path: str) -> None:
    # SQLAlchemy would read '?' as the query and '#' as the fragment and open (or create) another file.
    error = error_of(environ={"TRADELEDGER_DATABASE__URL": f"sqlite:///{path}"})
    assert [e.key for e in error.errors] == ["database.url"]


@pytest.mark.parametrize("token", ["007", "123456", "1e3", "true"])
def test_secrets_stay_exact_strings(tmp_path: Path, token: str) -> None:
    s = load_settings(environ={"TRADELEDGER_API__TOKEN": token, "TRADELEDGER_TELEGRAM__TOKEN": token})
    assert s.api.token == token and s.telegram.token == token
    path = write(tmp_path, f'[api]\ntoken = "{token}"\n')
    assert load_settings(path, environ={}).api.token == token
    assert load_settings(environ={}, overrides={"telegram.token": token}).telegram.token == token


def test_secrets_never_appear_in_errors_or_redacted(tmp_path: Path) -> None:
    path = write(tmp_path, "[telegram]\ntoken = 424242\n")  # unquoted: rejected, but not echoed
    environ = {
        "TRADELEDGER_API__TOKEN": "s3cr3t-api",
        "TRADELEDGER_API__TOKN": "s3cr3t-typo",
        "TRADELEDGER_DATABASE__URL": "mysql://user:s3cr3t-db@host/db",
        "TRADELEDGER_API__PORT": "-1",
    }
    error = error_of(settings_file=path, environ=environ)
    text = str(error) + repr(error.errors)
    assert "telegram.token: expected a non-empty string (quoted in a file) or unset, got <secret>" in str(error)
    for secret in ("s3cr3t", "424242"):
        assert secret not in text

    environ["TRADELEDGER_DATABASE__URL"] = "postgresql://user:s3cr3t-db@host/db?password=s3cr3t-q"
    del environ["TRADELEDGER_API__TOKN"], environ["TRADELEDGER_API__PORT"]
    s = load_settings(environ=environ)
    redacted = s.redacted()
    assert redacted["api"]["token"] == "<secret>" and redacted["telegram"]["token"] is None
    assert redacted["database"]["url"] == "postgresql://user:<secret>@host/db?password=<secret>"
    assert "s3cr3t" not in repr(redacted)
    assert s.database.url.endswith("password=s3cr3t-q")  # the real value stays usable


def test_settings_are_immutable() -> None:
    s = load_settings(environ={})
    with pytest.raises(AttributeError):
        s.trading.fee_rate = Decimal("0.5")  # type: ignore[misc]
    with pytest.raises(AttributeError):
        s.api = s.api  # type: ignore[misc]
    assert isinstance(s.trading.symbols, tuple) and isinstance(s.telegram.allowed_chat_ids, tuple)


def test_every_value_round_trips_through_overrides() -> None:
    # Guards the loader's key table against drifting from the Settings sections.
    s = load_settings(environ={"TRADELEDGER_API__TOKEN": "t"})
    values = flat(s) | {"api.token": "t"}
    assert load_settings(environ={}, overrides=values) == s


fee_rates = st.decimals(min_value=0, max_value=1, allow_nan=False, allow_infinity=False).filter(lambda d: d < 1)


@hypothesis_settings(max_examples=60, deadline=None)
@given(fee_rates)
def test_any_fee_rate_in_range_round_trips_exactly(rate: Decimal) -> None:
    text = str(rate)
    loaded = load_settings(environ={"TRADELEDGER_TRADING__FEE_RATE": text}).trading.fee_rate
    assert str(loaded) == text and loaded == Decimal(text)


@hypothesis_settings(max_examples=30, deadline=None)
@given(st.one_of(st.decimals(max_value=Decimal("-0.0000001")), st.decimals(min_value=1)))
def test_any_fee_rate_out_of_range_is_rejected(rate: Decimal) -> None:
    error = error_of(environ={"TRADELEDGER_TRADING__FEE_RATE": str(rate)})
    assert [e.key for e in error.errors] == ["trading.fee_rate"]


def test_digest_is_stable_and_ignores_only_secrets() -> None:
    base = load_settings(environ={}).digest()
    assert len(base) == 64 and base == load_settings(environ={}).digest()
    assert load_settings(environ={}, overrides={"trading.fee_rate": "0.0010"}).digest() == base
    assert load_settings(environ={}, overrides={"trading.fee_rate": "0.002"}).digest() != base
    assert load_settings(environ={}, overrides={"trading.symbols": "ETH/BTC,LTC/BTC"}).digest() != base
    secret_only = {"TRADELEDGER_API__TOKEN": "a", "TRADELEDGER_TELEGRAM__TOKEN": "b"}
    assert load_settings(environ=secret_only).digest() == base
    pg = "postgresql://user:{}@host/db"
    first = load_settings(environ={}, overrides={"database.url": pg.format("one")}).digest()
    assert first != base
    assert load_settings(environ={}, overrides={"database.url": pg.format("two")}).digest() == first
