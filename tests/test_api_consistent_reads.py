"""REST answers that combine read-model tables read them as of one commit, on SQLite and PostgreSQL.

The reported failure: an `/api/portfolio` answer mixed rows from two commits
(unrealised PnL 0 while the position was open). Here the real agent trades,
the projection runner follows it and clients ask `/api/portfolio` as fast as
the server answers, over real sockets, for the whole run: in every answer cash
plus the value of the open positions is the equity, exactly as the fold
computes it, and the position each client sees never goes back.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import sqlalchemy as sa

from tradeledger.adapters.services.queries import ReadModelQueries
from tradeledger.projections.runner import ProjectionRunner
from tests.composing import composed
from tests.apisupport import api_settings, project, serving, trade

CLIENTS = 4


def hammer(url: str, writer: threading.Thread) -> list[dict[str, Any]]:
    """One client's answers, asked back to back until the writer is done."""
    answers = []
    with httpx.Client(base_url=url, timeout=30) as http:
        while writer.is_alive():
            response = http.get("/api/portfolio")
            assert response.status_code == 200, response.text
            answers.append(response.json())
    return answers


def test_portfolio_answers_are_one_snapshot_during_a_live_run(store_url: str) -> None:
    with composed(api_settings(store_url)) as container:
        trade(container, 30)
        project(container)  # the account is open before the first request
        runner = ProjectionRunner(container.feed, container.engine, poll_interval=0.05)
        runner.start()
        writer = threading.Thread(target=trade, args=(container, 800), kwargs={"skip": 30})
        try:
            with serving(container) as url, ThreadPoolExecutor(CLIENTS) as pool:
                writer.start()
                per_client = list(pool.map(lambda _i: hammer(url, writer), range(CLIENTS)))
        finally:
            writer.join()
            runner.stop()
    answers = [a for client in per_client for a in client]
    broken = [a for a in answers if Decimal(a["cash"]) + Decimal(a["position_value"]) != Decimal(a["equity"])]
    assert not broken, f"{len(broken)} of {len(answers)} answers mixed two commits, e.g. {broken[0]}"
    for client in per_client:
        positions = [a["position"] for a in client]
        assert positions == sorted(positions)
    assert len({a["position"] for a in answers}) > 50, "the read model moved all along the run"
    assert any(Decimal(a["position_value"]) > 0 for a in answers), "positions were open during the run"


def test_a_commit_between_the_reads_of_one_answer_is_not_in_it(store_url: str) -> None:
    """The same race, made certain: a projection step commits while the answer is being read."""
    with composed(api_settings(store_url)) as container:
        trade(container, 50)  # a position is open at the end (and after the next 10 candles)
        project(container)
        before = container.store.head_position()
        trade(container, 10, skip=50)  # recorded, not yet projected
        runner = ProjectionRunner(container.feed, container.engine)
        stepped: list[int] = []

        def step_before_positions(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if "FROM portfolio_positions" in statement and not stepped:
                stepped.append(before)  # first: the step's own statements come through here too
                stepped.append(runner.catch_up())  # commits on another connection, in the middle of the answer

        sa.event.listen(container.engine, "before_cursor_execute", step_before_positions)
        view = ReadModelQueries(container.engine, "paper").portfolio()
        sa.event.remove(container.engine, "before_cursor_execute", step_before_positions)
        after = ReadModelQueries(container.engine, "paper").portfolio()
    assert stepped[1] > 0 and view is not None and after is not None
    assert view.position == before and view.position_value > 0, "an open position, as of the first commit"
    assert view.cash + view.position_value == view.equity
    assert after.position > before and after.equity != view.equity, "the step moved the portfolio"
