"""The model scoreboard: its scoring rules, and on a live run the API's figures against the exported log.

The live run is the real agent on a paced real file (ETH/BTC 5m) with the ensemble predictor, the
projection runner on its thread and the API over a real socket. `GET /api/models` must list every
ensemble member with a hit rate and a Brier score equal to what polars recomputes, independently,
from `tradeledger export`'s signals, candles, orders and trades (docs/models.md has the rules).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import msgspec
import polars as pl
import pytest

from tradeledger.adapters.composition import Composition
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import open_store
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services.trading import run_live
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle, Decision, MemberPrediction, Prediction, Side
from tradeledger.projections import sql
from tradeledger.projections.alerts import signed
from tradeledger.projections.fold import Recorded
from tradeledger.projections.models import MODELS_PROJECTION, bucket, hit
from tradeledger.projections.models_rows import WINDOW
from tradeledger.projections.models_view import ModelsView, scoreboard
from tradeledger.projections.replay import ReadModels, pages
from tradeledger.projections.runner import ProjectionRunner
from tradeledger.projections.verify import first_mismatch, verify_projections
from tests.apisupport import api_settings, serving
from tests.backtested import ETH, cli
from tests.browser import CHROMIUM, open_page
from tests.composing import composed
from tests.fakebotapi import FakeBotApi
from tests.telegram_support import CHAT, TOKEN, running_bot, telegram_settings
from tests.test_telegram_commands import ask, traded

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
FIVE = timedelta(minutes=5)
CANDLES = 600  # of the real file, paced
DEADLINE = 120.0  # seconds before a wait is declared hung; no assertion depends on timing


# -- the rules ---------------------------------------------------------------------------------------


def test_a_call_is_a_hit_only_when_the_next_close_moves_strictly_its_way_and_hold_calls_nothing() -> None:
    one, up, down = Decimal("1"), Decimal("1.01"), Decimal("0.99")
    assert [hit(Prediction.UP, one, c) for c in (up, one, down)] == [True, False, False]
    assert [hit(Prediction.DOWN, one, c) for c in (up, one, down)] == [False, False, True]
    assert hit(Prediction.HOLD, one, up) is None


def test_confidences_fall_in_tenths_with_one_in_the_last_bucket() -> None:
    assert [bucket(c) for c in (0.0, 0.0999, 0.1, 0.55, 0.9, 0.999, 1.0)] == [0, 0, 1, 5, 9, 9, 9]


class Script:
    """A market and an account driven by hand: candles, signals with members, orders on those signals."""

    def __init__(self) -> None:
        self.market = Market.list("ETH/BTC", "5m", at=T0)
        self.account = Account.open("paper", "BTC", Decimal(1), at=T0)
        self.candles = 0
        self.events: list[Any] = []

    def candle(self, close: str) -> None:
        price = Decimal(close)
        self.market.close_candle(Candle(symbol="ETH/BTC", timeframe="5m", open_time=T0 + self.candles * FIVE,
                                        open=price, high=price, low=price, close=price, volume=Decimal(1)))
        self.candles += 1
        self.collect()

    def signal(self, own: tuple[Prediction, float], **members: tuple[Prediction, float]) -> None:
        self.market.generate_signal(
            Decision(prediction=own[0], confidence=own[1], model_name="ens", model_version="1",
                     members=tuple(MemberPrediction(name=n, prediction=p, confidence=c) for n, (p, c) in members.items())),
            is_actionable=True, data_quality=1.0, features_used=(), feature_values={})
        self.collect()

    def order(self, side: Side, quantity: str) -> Any:
        ref = f"ETH/BTC 5m {(T0 + (self.candles - 1) * FIVE).isoformat()}"
        self.account.place_order("ETH/BTC", side, Decimal(quantity), at=T0 + self.candles * FIVE, signal_ref=ref)
        self.collect()
        return list(self.account.orders)[-1]

    def fill(self, order_id: Any, price: str, fee: str) -> None:
        order = self.account.orders[order_id]
        self.account.fill_order(order_id, price=Decimal(price), quantity=order.quantity, fee=Decimal(fee),
                                at=T0 + self.candles * FIVE)
        self.collect()

    def collect(self) -> None:
        """The events so far, in the order they happened (each step changes one aggregate)."""
        for aggregate in (self.account, self.market):
            self.events.extend(aggregate.collect_events())

    def board(self) -> ModelsView:
        self.collect()
        models = ReadModels((MODELS_PROJECTION,))
        models.apply([Recorded(n, e) for n, e in enumerate(self.events, start=1)])
        return scoreboard(models.tables.rows)


def test_each_call_is_scored_at_the_next_close_with_its_brier_term_and_bucket() -> None:
    up, down, hold = Prediction.UP, Prediction.DOWN, Prediction.HOLD
    s = Script()
    s.candle("1.00")
    s.signal((up, 0.8), a=(up, 0.6), b=(down, 0.7))
    s.candle("1.10")  # up was right, down wrong
    s.signal((hold, 0.0), a=(down, 0.9), b=(hold, 0.0))
    s.candle("1.10")  # flat: down is a miss
    s.signal((up, 0.3), a=(up, 1.0), b=(up, 0.2))  # not scored: no next candle yet
    by_name = {m.model: m for m in s.board().models}
    assert list(by_name) == ["ens", "a", "b"] and by_name["ens"].role == "predictor"
    ens, a, b = by_name["ens"], by_name["a"], by_name["b"]
    assert (ens.predictions, ens.calls, ens.holds, ens.hits, ens.hit_rate) == (2, 1, 1, 1, 1.0)
    assert ens.brier == pytest.approx(0.2 ** 2)
    assert (a.calls, a.up_calls, a.down_calls, a.hits, a.hit_rate) == (2, 1, 1, 1, 0.5)
    assert a.brier == pytest.approx((0.4 ** 2 + 0.9 ** 2) / 2) and a.window_brier == a.brier
    assert (b.calls, b.hits, b.hit_rate, b.brier) == (1, 0, 0.0, pytest.approx(0.49))
    assert [(k.count, k.mean_confidence, k.observed) for k in a.calibration if k.count] == [(1, 0.6, 1.0),
                                                                                           (1, 0.9, 0.0)]
    assert len(a.calibration) == 10 and a.last_candle_time == T0 + FIVE


def test_a_round_trip_is_credited_to_the_models_that_called_up_on_its_entry_signal() -> None:
    up, down = Prediction.UP, Prediction.DOWN
    s = Script()
    s.candle("1.00")
    s.signal((up, 0.5), a=(up, 0.9), b=(down, 0.4))
    entry = s.order(Side.BUY, "0.5")
    s.candle("1.00")
    s.fill(entry, "1.00", "0.001")
    s.signal((down, 0.5), a=(down, 0.9), b=(down, 0.4))
    s.fill(s.order(Side.SELL, "0.5"), "1.20", "0.001")  # +0.1 realised, 0.002 fees
    s.candle("1.20")
    s.signal((up, 0.5), a=(down, 0.9), b=(up, 0.9))
    s.account.cancel_order(s.order(Side.BUY, "0.1"), reason="dropped", at=T0 + s.candles * FIVE)
    by_name = {m.model: m for m in s.board().models}
    assert [(n, m.trades, m.wins, m.pnl) for n, m in by_name.items()] == [
        ("ens", 1, 1, Decimal("0.098")), ("a", 1, 1, Decimal("0.098")), ("b", 0, 0, 0)]
    assert by_name["a"].window_pnl == Decimal("0.098") and by_name["b"].window_trades == 0


def trading_script() -> Script:
    """Calls, a round trip voted for, an entry left open, another cancelled: every table has rows."""
    up, down = Prediction.UP, Prediction.DOWN
    s = Script()
    for n, close in enumerate(("1.00", "1.05", "1.05", "0.98", "1.10", "1.20")):
        s.candle(close)
        s.signal((up if n % 2 else down, 0.25 + n / 10), a=(up, 0.9), b=(down if n % 3 else up, 0.55))
        if n == 1:
            s.fill(s.order(Side.BUY, "0.4"), close, "0.0004")
        if n == 3:
            s.fill(s.order(Side.SELL, "0.4"), close, "0.0004")
        if n == 4:
            s.account.cancel_order(s.order(Side.BUY, "0.1"), reason="dropped", at=T0 + s.candles * FIVE)
            s.fill(s.order(Side.BUY, "0.1"), close, "0.0001")  # a round trip in progress
        if n == 5:
            s.order(Side.BUY, "0.2")  # an entry not filled yet
    s.collect()
    return s


def test_a_runner_restarted_after_every_event_stores_the_rows_of_one_fold(store_url: str) -> None:
    events = trading_script().events
    upgrade(store_url)
    store, engine = open_store(store_url), create_db_engine(store_url)
    try:
        feed = EventLog(store, engine)
        for event in events:
            store.append([event])
            ProjectionRunner(feed, engine, (MODELS_PROJECTION,)).catch_up()  # restores the fold from the rows
        models = ReadModels((MODELS_PROJECTION,))
        models.apply([Recorded(r.position, e) for r, e in zip([r for p in pages(feed) for r in p], events,
                                                               strict=True)])
        with engine.connect() as conn:
            stored = sql.row_source(conn)
            assert all(models.tables.rows(t) for t in MODELS_PROJECTION.tables)
            assert first_mismatch(models.tables.rows, stored, MODELS_PROJECTION.tables) is None
    finally:
        store.close()
        engine.dispose()


def test_the_window_keeps_each_models_last_calls() -> None:
    s = Script()
    s.candle("1")
    for n in range(WINDOW + 5):
        s.signal((Prediction.UP, 0.5))
        s.candle(str(2 + n) if n < 5 else "1")  # the first five calls are hits, the rest misses
    (ens,) = s.board().models
    assert (ens.calls, ens.hits, ens.window_calls) == (WINDOW + 5, 5, WINDOW)
    assert ens.window_hit_rate == 0.0 and ens.hit_rate == pytest.approx(5 / (WINDOW + 5))


# -- a live run ----------------------------------------------------------------------------------------


class LiveRun(NamedTuple):
    container: Composition
    base: str
    url: str
    out: Path


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    """What `tradeledger run --data FILE` runs, in this process: projections, the paced agent, the API."""
    root = tmp_path_factory.mktemp("scoreboard")
    data = root / "ETH_BTC-5m.csv"
    data.write_text("".join(ETH.read_text().splitlines(keepends=True)[:CANDLES + 1]))
    url = f"sqlite:///{root / 'ledger.sqlite'}"
    settings = api_settings(url, **{"predictor.name": "ensemble", "trading.update_interval": "0.001"})
    with composed(settings) as container:
        runner = ProjectionRunner(container.feed, container.engine, poll_interval=0.05)
        runner.start()
        _, paced = container.paced_settings(str(data))
        session = container.agent(paced)
        session.resume()
        agent = threading.Thread(target=run_live, args=(session, paced, threading.Event()),
                                 kwargs={"data": str(data), "components": ("agent", "projections", "api")})
        try:
            with serving(container) as base:
                agent.start()
                wait_for(base, lambda board: any(m.calls for m in board.models), "a scored call")
                agent.join(DEADLINE)
                assert not agent.is_alive(), "the agent did not finish its file"
                head = container.feed.head()
                wait_for(base, lambda board: board.position == head, "the scoreboard at the head")
                yield LiveRun(container, base, url, root)
        finally:
            runner.stop()


def models(base: str) -> ModelsView:
    return msgspec.json.decode(httpx.get(f"{base}/api/models").content, type=ModelsView)


def wait_for(base: str, done: Any, what: str) -> ModelsView:
    deadline = datetime.now(timezone.utc) + timedelta(seconds=DEADLINE)
    while datetime.now(timezone.utc) < deadline:
        board = models(base)
        if done(board):
            return board
        threading.Event().wait(0.05)  # a poll interval, not a synchronisation: the condition decides
    raise AssertionError(f"timed out waiting for {what}")


def recomputed(out: Path) -> dict[str, dict[str, Any]]:
    """Every model's figures from the exported tables alone (polars; no code of the projection)."""
    candles = (pl.read_parquet(out / "candles.parquet").sort("position")
               .with_columns(next_close=pl.col("close").shift(-1).over("symbol", "timeframe"))
               .select("symbol", "timeframe", pl.col("open_time").alias("candle_time"), "close", "next_close"))
    signals = pl.read_parquet(out / "signal_history.parquet")
    member = pl.Struct({"name": pl.String, "prediction": pl.String, "confidence": pl.Float64})
    members = (signals.select("symbol", "timeframe", "candle_time",
                              pl.col("individual_predictions").str.json_decode(pl.List(member)).alias("m"))
               .explode("m").drop_nulls("m").unnest("m").rename({"name": "model"}).with_columns(role=pl.lit("member")))
    own = signals.select("symbol", "timeframe", "candle_time", pl.col("model_name").alias("model"),
                         pl.col("prediction").cast(pl.String), "confidence", role=pl.lit("predictor"))
    calls = pl.concat([own, members.select(own.columns)])
    scored = (calls.join(candles, on=["symbol", "timeframe", "candle_time"]).drop_nulls("next_close")
              .filter(pl.col("prediction") != "hold")
              .with_columns(hit=((pl.col("prediction") == "up") & (pl.col("next_close") > pl.col("close")))
                            | ((pl.col("prediction") == "down") & (pl.col("next_close") < pl.col("close"))))
              .with_columns(term=(pl.col("confidence") - pl.col("hit").cast(pl.Float64)) ** 2)
              .sort("candle_time"))
    figures = {row["model"]: row for row in scored.group_by("model").agg(
        calls=pl.len(), hits=pl.col("hit").sum(), brier=pl.col("term").mean(),
        window_hit_rate=pl.col("hit").tail(WINDOW).mean(), window_brier=pl.col("term").tail(WINDOW).mean(),
    ).to_dicts()}
    trades = trade_figures(out, calls)
    return {model: row | trades.get(model, {}) for model, row in figures.items()}


def trade_figures(out: Path, calls: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Round trips joined to their entry's buy order, its signal_ref to the signal, up callers credited."""
    entries = (pl.read_parquet(out / "orders.parquet").filter(pl.col("side") == "buy", pl.col("status") == "filled")
               .select("symbol", pl.col("closed_at").alias("entry_time"), "signal_ref"))
    trades = pl.read_parquet(out / "trades.parquet").join(entries, on=["symbol", "entry_time"])
    keyed = calls.with_columns(
        signal_ref=pl.format("{} {} {}", "symbol", "timeframe",
                             pl.col("candle_time").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")))
    voted = trades.join(keyed.filter(pl.col("prediction") == "up"), on="signal_ref")
    return {row["model"]: row for row in voted.group_by("model").agg(
        trades=pl.len(), pnl=pl.col("pnl").sum(), wins=(pl.col("pnl") > 0).sum()).to_dicts()}


def test_api_models_lists_every_ensemble_member_with_figures_equal_to_a_recomputation_from_the_export(
        live_run: LiveRun) -> None:
    board = models(live_run.base)
    code, _ = cli(live_run.url, "export", "--out", str(live_run.out / "export"), "--format", "parquet")
    assert code == 0
    signals = pl.read_parquet(live_run.out / "export" / "signal_history.parquet")
    names = {m["name"] for row in signals["individual_predictions"].to_list() for m in msgspec.json.decode(row)}
    assert len(names) >= 2 and [m.model for m in board.models] == ["ensemble", *sorted(names)]
    expected = recomputed(live_run.out / "export")
    for model in board.models:
        want = expected[model.model]
        assert (model.calls, model.hits) == (want["calls"], want["hits"]), model.model
        assert model.hit_rate == pytest.approx(want["hits"] / want["calls"], abs=1e-12)
        assert model.brier == pytest.approx(want["brier"], abs=1e-12)
        assert model.window_hit_rate == pytest.approx(want["window_hit_rate"], abs=1e-12)
        assert model.window_brier == pytest.approx(want["window_brier"], abs=1e-12)
        assert (model.trades, model.wins, model.pnl) == (want.get("trades", 0), want.get("wins", 0),
                                                         want.get("pnl", 0)), model.model
    assert board.models[0].trades > 0, "the run traded: the ensemble voted up on every entry"


def test_rebuild_gives_the_same_rows_and_verify_finds_them_equal_to_a_fresh_fold(live_run: LiveRun) -> None:
    engine = live_run.container.engine

    def stored() -> dict[str, list[Any]]:
        with engine.connect() as conn:
            rows = sql.row_source(conn)
            return {t.name: rows(t) for t in MODELS_PROJECTION.tables}

    before, board = stored(), models(live_run.base)
    assert before["models_scores"] and before["models_calibration"]
    code, _ = cli(live_run.url, "rebuild", "models")
    assert code == 0
    assert stored() == before
    assert models(live_run.base).models == board.models
    (check,) = verify_projections(engine, live_run.container.feed, (MODELS_PROJECTION,))
    assert check.ok and check.compared


def test_telegram_models_answers_with_each_models_figures(sqlite_url: str) -> None:
    fake = FakeBotApi(TOKEN).start()
    try:
        with composed(telegram_settings(sqlite_url, fake)) as container:
            traded(container, load_candles(ETH).candles, 400)
            with running_bot(container, fake):
                (reply,) = ask(fake, CHAT, "/models")
            (model,) = models_of(container)
    finally:
        fake.stop()
    assert reply == (f"sma_cross (predictor): {model.hit_rate:.1%} hits of {model.calls} calls, "
                     f"Brier {model.brier:.3f}; last {model.window_calls}: {model.window_hit_rate:.1%}, "
                     f"Brier {model.window_brier:.3f}; {model.trades} trades voted for, net PnL {signed(model.pnl)}")


def models_of(container: Composition) -> list[Any]:
    with container.engine.connect() as conn:
        return scoreboard(sql.row_source(conn)).models


def test_the_dashboard_shows_every_model_with_the_apis_figures(live_run: LiveRun) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    board = models(live_run.base)
    shown = asyncio.run(dashboard_models(live_run.base + "/", len(board.models)))
    assert shown == [[m.model, f"{100 * m.hit_rate:.1f} %", f"{m.brier:.3f}"] for m in board.models]


async def dashboard_models(url: str, count: int) -> Any:
    rows = "[...document.querySelectorAll('#models tr[data-model]')]"
    async with open_page(url) as page:
        await page.wait_for(f"{rows}.length === {count}", DEADLINE, "the models panel")
        shown = await page.evaluate(f"{rows}.map(r => [r.dataset.model, "
                                    "r.querySelector('[data-field=hit_rate]').textContent, "
                                    "r.querySelector('[data-field=brier]').textContent])")
        assert page.errors == []
        return shown
