"""The REST API over real HTTP (uvicorn on an ephemeral port), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import QueuePool

from tradeledger.adapters.composition import Composition
from tradeledger.domain.account import Account
from tradeledger.domain.ids import account_id
from tradeledger.domain.market import Market
from tests.composing import composed
from tests.apisupport import TOKEN, api_settings, events, project, serving, trade

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Api(NamedTuple):
    container: Composition
    http: httpx.Client
    projected: int  # the log head the read models were brought up to


@pytest.fixture
def api(store_url: str) -> Iterator[Api]:
    """A store with 300 traded candles, projected, served."""
    with composed(api_settings(store_url)) as container:
        trade(container, 300, batch_size=25)
        project(container)
        projected = container.store.head_position()
        with serving(container) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield Api(container, http, projected)


def get(api: Api, path: str, **params: Any) -> Any:
    response = api.http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_read_models_agree_with_the_ledger(api: Api) -> None:
    account: Account = api.container.store.repository.get(account_id("paper"))
    portfolio = get(api, "/api/portfolio")
    assert Decimal(portfolio["cash"]) == account.cash
    assert Decimal(portfolio["fees"]) == account.fees_paid
    assert Decimal(portfolio["realised_pnl"]) == Decimal(portfolio["gross_pnl"]) == account.realised_pnl
    assert Decimal(portfolio["net_pnl"]) == Decimal(portfolio["gross_pnl"]) - Decimal(portfolio["fees"])
    assert portfolio["position"] == api.projected
    positions = get(api, "/api/positions")
    assert {p["symbol"]: Decimal(p["quantity"]) for p in positions} == \
        {s: p.quantity for s, p in account.positions.items()}
    fills = events(api.container, Account.OrderFilled)
    listed = get(api, "/api/fills", limit=1000)
    assert [f["position"] for f in listed] == sorted((f["position"] for f in listed), reverse=True)
    assert len(listed) == len(fills) > 4
    assert {f["order_id"] for f in listed} == {str(f.order_id) for f in fills}
    filled = get(api, "/api/orders", status="filled", limit=1000)
    assert {o["order_id"] for o in filled} == {str(f.order_id) for f in fills}
    trades = get(api, "/api/trades")
    assert trades and all(t["entry_time"] < t["exit_time"] for t in trades)
    assert all(Decimal(t["net_pnl"]) == Decimal(t["gross_pnl"]) - Decimal(t["fees"]) == Decimal(t["pnl"])
               for t in trades)
    assert portfolio["trades_closed"] == len(trades)


def test_answers_follow_the_read_models_as_they_move(api: Api) -> None:
    """Answers are cached per read-model position: a projection step must show on the next request."""
    before = get(api, "/api/portfolio")
    assert get(api, "/api/portfolio") == before
    trade(api.container, 100, skip=300)
    assert get(api, "/api/portfolio") == before, "the read model has not moved yet"
    project(api.container)
    after = get(api, "/api/portfolio")
    account: Account = api.container.store.repository.get(account_id("paper"))
    assert after["position"] > before["position"] and Decimal(after["cash"]) == account.cash
    assert len(get(api, "/api/equity", limit=10_000)) == len(events(api.container, Market.CandleClosed))


def test_money_is_exact_decimal_strings_and_days_sum_to_the_return(api: Api) -> None:
    portfolio = get(api, "/api/portfolio")
    assert all(isinstance(portfolio[k], str) for k in ("cash", "equity", "fees", "realised_pnl"))
    days = get(api, "/api/pnl/daily")
    total = sum((Decimal(d["pnl"]) for d in days), Decimal(0))
    assert total == Decimal(portfolio["equity"]) - Decimal(portfolio["initial_balance"])


def test_equity_curve_from_to_and_limit(api: Api) -> None:
    curve = get(api, "/api/equity", limit=10_000)
    candles = events(api.container, Market.CandleClosed)
    assert len(curve) == len(candles)
    assert [p["time"] for p in curve] == sorted(p["time"] for p in curve)
    start, end = curve[10]["time"], curve[20]["time"]
    assert get(api, "/api/equity", **{"from": start, "to": end}) == curve[10:21]
    assert get(api, "/api/equity", limit=5) == curve[-5:]


def test_signals_the_prediction_response_and_symbol_in_the_path(api: Api) -> None:
    (latest,) = get(api, "/api/signals")
    last = events(api.container, Market.SignalGenerated)[-1]
    expected = {"symbol", "prediction", "confidence", "is_actionable", "timestamp", "individual_predictions",
                "data_quality", "model_name", "features_used", "fresh_until"}
    assert expected <= set(latest)
    assert latest["symbol"] == "ETH/BTC" and latest["prediction"] == last.prediction.value
    assert get(api, "/api/signals/ETH-BTC") == latest == get(api, "/api/signals/ETH-BTC", timeframe="5m")
    missing = api.http.get("/api/signals/ETH-USDT")
    assert missing.status_code == 404 and "ETH-USDT" in missing.json()["detail"]


def test_event_log_pages_and_filters(api: Api) -> None:
    first = get(api, "/api/events", limit=50)
    assert [e["position"] for e in first] == list(range(1, 51))
    candle = next(e for e in first if e["type"] == "CandleClosed")
    assert candle["at"].startswith("2024-01-01") and not candle["recorded_at"].startswith("2024"), \
        "the market's time and the wall clock at append"
    following = get(api, "/api/events", after=50, limit=50)
    assert following[0]["position"] == 51
    only = get(api, "/api/events", type=["OrderFilled", "OrderPlaced"], limit=1000)
    assert {e["type"] for e in only} == {"OrderFilled", "OrderPlaced"}
    assert len(only) == len(events(api.container, Account.OrderFilled, Account.OrderPlaced))


def test_activity_health_readiness_and_connections(api: Api) -> None:
    activity = get(api, "/api/activity", limit=5)
    assert activity[0]["text"] == "agent stopped (clean): test done"
    health = get(api, "/api/health")
    assert health["store_reachable"] and health["agent"]["status"] == "stopped"
    assert {p["name"] for p in health["projections"]} >= {"portfolio", "signals", "health", "activity"}
    ready = get(api, "/api/ready")
    assert ready["ready"] and ready["head"] == api.container.store.head_position()
    assert get(api, "/api/connections")["open"] == 0


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/api/events", {"limit": "0"}, "limit"),
    ("/api/events", {"limit": "many"}, "limit"),
    ("/api/events", {"after": "-1"}, "after"),
    ("/api/events", {"type": "NoSuchEvent"}, "type"),
    ("/api/fills", {"limit": "100000"}, "limit"),
    ("/api/orders", {"status": "sideways"}, "status"),
    ("/api/equity", {"from": "yesterday"}, "from"),
    ("/api/equity", {"from": "2024-01-01T00:00:00"}, "from"),
    ("/api/equity", {"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "to"),
    ("/api/pnl/daily", {"to": "2024-13-01"}, "to"),
    ("/api/updates", {"topic": "weather"}, "topic"),
])
def test_bad_input_gets_400_naming_the_field(sqlite_url: str, path: str, params: dict[str, str],
                                              field: str) -> None:
    with composed(api_settings(sqlite_url)) as container, serving(container) as url:
        response = httpx.get(url + path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field and body["detail"].startswith(f"{field}:")


def test_serves_before_any_agent_or_projection_ran(sqlite_url: str) -> None:
    with composed(api_settings(sqlite_url)) as container, serving(container) as url:
        health = httpx.get(url + "/api/health").json()
        assert health["status"] == "degraded" and health["agent"]["status"] == "none"
        assert httpx.get(url + "/api/ready").json()["ready"] is True
        portfolio = httpx.get(url + "/api/portfolio")
        assert portfolio.status_code == 404 and "has not been opened yet" in portfolio.json()["detail"]
        assert httpx.get(url + "/api/signals").json() == []
        assert httpx.get(url + "/api/equity").json() == []


def test_control_needs_the_token_and_records_who_halted(api: Api) -> None:
    http = api.http
    assert http.post("/api/control/halt", json={"reason": "x"}).status_code == 401
    wrong = http.post("/api/control/halt", json={"reason": "x"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    bad = http.post("/api/control/halt", json={"reason": ""}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["field"] == "reason"
    halted = http.post("/api/control/halt", json={"reason": "maintenance"}, headers=AUTH)
    assert halted.status_code == 200
    again = http.post("/api/control/halt", json={"reason": "twice"}, headers=AUTH)
    assert again.status_code == 409 and "already halted" in again.json()["detail"]
    resumed = http.post("/api/control/resume", json={"reason": "done"}, headers=AUTH)
    assert resumed.status_code == 200 and resumed.json()["position"] > halted.json()["position"]
    (halt,) = [e for e in events(api.container, Account.TradingHalted) if e.by == "api"]
    (resume,) = [e for e in events(api.container, Account.TradingResumed) if e.by == "api"]
    assert (halt.rule, halt.by, halt.reason) == ("manual", "api", "maintenance")
    assert (resume.by, resume.reason) == ("api", "done")


def test_control_is_disabled_without_a_token(sqlite_url: str) -> None:
    with composed(api_settings(sqlite_url, **{"api.token": ""})) as container, serving(container) as url:
        response = httpx.post(url + "/api/control/halt", json={"reason": "x"}, headers=AUTH)
    assert response.status_code == 403 and "control is disabled" in response.json()["detail"]


def test_control_commands_and_agent_ticks_lose_no_update(store_url: str) -> None:
    """Halts and resumes over HTTP while the agent appends to the same Account stream."""
    with composed(api_settings(store_url)) as container, serving(container) as url:
        trade(container, 30)
        writer = threading.Thread(target=trade, args=(container, 400), kwargs={"skip": 30})
        writer.start()
        accepted = []
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            for i in range(20):
                response = http.post(f"/api/control/{'halt' if i % 2 == 0 else 'resume'}", json={"reason": f"#{i}"})
                assert response.status_code == 200, response.text
                accepted.append(response.json()["position"])
        writer.join()
        commands = [e for e in events(container, Account.TradingHalted, Account.TradingResumed) if e.by == "api"]
        assert [e.reason for e in commands] == [f"#{i}" for i in range(20)]
        account: Account = container.store.repository.get(account_id("paper"))
        assert not account.is_halted and account.trial_balance() == 0


def test_every_request_returns_its_database_connection(sqlite_url: str) -> None:
    """Thousands of requests, including 400s, 404s, 401s and queries that fail, leave the pool empty."""
    with composed(api_settings(sqlite_url)) as container:
        trade(container, 60, batch_size=30)
        project(container)
        with serving(container) as url, httpx.Client(base_url=url, timeout=30) as http:
            paths = ["/api/portfolio", "/api/fills?limit=5", "/api/equity?from=bad", "/api/signals/NOPE-X",
                     "/api/events?limit=0", "/api/health", "/api/orders?limit=3", "/api/connections"]
            statuses = {http.get(paths[i % len(paths)]).status_code for i in range(2000)}
            statuses.add(http.post("/api/control/halt", json={"reason": "x"}).status_code)
            with container.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE portfolio_fills"))  # from now on the query itself fails
            failing = [http.get("/api/fills").status_code for _ in range(200)]
            assert statuses == {200, 400, 401, 404} and set(failing) == {500}
            pool = container.engine.pool
            assert isinstance(pool, QueuePool) and pool.checkedout() == 0
