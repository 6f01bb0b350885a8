"""What the traded markets fix before anything is decided: the account's currency and the sessions.

A symbol `BASE/QUOTE` is priced in QUOTE, so the account's cash is QUOTE:
`ETH/BTC` books in BTC, `XRP/ETH` in ETH. `trading.quote_currency = auto`
(the default) takes that quote; a currency set there must agree with every
`BASE/QUOTE` symbol, or the run is refused naming both. A symbol without a
quote (a stock such as `GOOG`) is booked in `trading.quote_currency`, which
must then be set.

`market.calendar = auto` becomes the sessions inferred from the market data
(`adapters.calendars`), so the settings a run records and replays are the
resolved ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from tradeledger.adapters.calendars import sessions_for
from tradeledger.adapters.errors import Refused
from tradeledger.adapters.exchange import MarketRules
from tradeledger.adapters.candlefiles import Given, load_files
from tradeledger.adapters.marketdata import MarketData
from tradeledger.settings import Settings


class MarketSettingsError(Refused, ValueError):
    pass


def quote_of(symbol: str) -> str | None:
    """`ETH/BTC` -> `BTC` (a settlement suffix such as `BTC/USDT:USDT` is not part of it); `GOOG` -> None."""
    _, slash, quote = symbol.partition("/")
    return (quote.partition(":")[0] or None) if slash else None


def quote_currency(configured: str | None, symbols: Iterable[str]) -> str:
    """The account currency for trading `symbols` with `trading.quote_currency = configured` (None: auto)."""
    quotes = {symbol: quote_of(symbol) for symbol in symbols}
    if configured is not None:
        for symbol, quote in quotes.items():
            if quote not in (None, configured):
                raise MarketSettingsError(f"{symbol} is quoted in {quote}, but trading.quote_currency is "
                                          f"{configured}: set it to {quote} or to auto")
        return configured
    unquoted = [symbol for symbol, quote in quotes.items() if quote is None]
    if unquoted:
        raise MarketSettingsError(f"{', '.join(unquoted)} names no quote currency (no BASE/QUOTE): "
                                  "set trading.quote_currency, e.g. USD")
    found = sorted({quote for quote in quotes.values() if quote is not None})
    if len(found) != 1:
        raise MarketSettingsError(f"{', '.join(quotes)} are quoted in different currencies ({', '.join(found)}); "
                                  "an account holds one: trade them in separate stores")
    return found[0]


def market_settings(settings: Settings, symbols: Iterable[str], calendar: str | None = None) -> Settings:
    """`settings` for trading `symbols`: those symbols, the quote currency resolved, and the calendar
    (`calendar` when given, e.g. what `auto` inferred from a file; else the setting, `auto` as 24/7)."""
    symbols = tuple(symbols)
    trading = msgspec.structs.replace(settings.trading, symbols=symbols,
                                      quote_currency=quote_currency(settings.trading.quote_currency, symbols))
    market = msgspec.structs.replace(settings.market, calendar=calendar or sessions_for(settings.market.calendar).name)
    return msgspec.structs.replace(settings, trading=trading, market=market)


def with_exchange_rules(settings: Settings, rules: Mapping[str, MarketRules]) -> Settings:
    """`settings` trading under the exchange's rules for these symbols: each `market.*` rule left unset
    becomes the exchange's, by symbol, and (`exchange.use_market_fee`) the fee rate the market's taker fee
    (the highest of the symbols', when they differ)."""
    market = settings.market
    stated = {name: {symbol: getattr(rule, name) for symbol, rule in rules.items() if getattr(rule, name)}
              for name in ("amount_step", "price_step", "min_amount", "min_notional")}
    market = msgspec.structs.replace(market, **{name: by_symbol or None for name, by_symbol in stated.items()
                                                if getattr(market, name) is None})
    trading = settings.trading
    fees = [rule.taker_fee for rule in rules.values() if rule.taker_fee is not None]
    if settings.exchange.use_market_fee and fees:
        trading = msgspec.structs.replace(trading, fee_rate=max(fees))
    return msgspec.structs.replace(settings, market=market, trading=trading)


def data_settings(settings: Settings, markets: Sequence[MarketData]) -> Settings:
    """`settings` for trading the markets of these files; their sessions must agree (one calendar per run)."""
    calendars = {m.report.calendar for m in markets}
    if len(calendars) > 1:
        found = ", ".join(f"{m.symbol} {m.report.calendar}" for m in markets)
        raise MarketSettingsError(f"the files' markets keep different sessions ({found}): set market.calendar")
    return market_settings(settings, [m.symbol for m in markets], calendars.pop())


def feed_settings(settings: Settings, data: Given) -> Settings:
    """The settings of the paced agent: for the files replayed as if live, or for the synthetic market."""
    if not data:
        return market_settings(settings, settings.trading.symbols)
    return data_settings(settings, load_files(data, calendar=settings.market.calendar).markets)
