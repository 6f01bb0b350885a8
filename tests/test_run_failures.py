"""`tradeledger run` when one of its components dies: the process stops the others cleanly and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys

from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.gateway import Gateway
from tradeledger.domain.market import Market
from tradeledger.projections.sql import TRACKING
from tests.apisupport import api_settings, events
from tests.composing import composed
from tests.conftest import ROOT

DEADLINE = 120  # seconds before the process is declared hung
CANDLES_BEFORE_FAILING = 20
# The CLI in a subprocess whose market data feed breaks after a few candles: the agent's thread dies with it.
BREAKING_FEED = f"""
import sys
from tradeledger.adapters import cli, feeds

real_feed = feeds.synthetic_feed

def breaking_feed(*args, **kwargs):
    feed = real_feed(*args, **kwargs)
    for _ in range({CANDLES_BEFORE_FAILING}):
        yield next(feed)
    raise RuntimeError("the market data feed broke")

feeds.synthetic_feed = breaking_feed
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_component_that_dies_stops_run_with_one_line_and_a_clean_shutdown_of_the_rest(sqlite_url: str) -> None:
    env = {**os.environ, "TRADELEDGER_TRADING__SPEED": "6000", "TRADELEDGER_API__TOKEN": ""}
    process = subprocess.run(
        [sys.executable, "-c", BREAKING_FEED, "--database", sqlite_url, "run", "--port", "0", "--predictor",
         "sma_cross"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=DEADLINE)
    assert process.returncode == 1, process.stderr
    assert process.stdout.startswith("dashboard: http://127.0.0.1:")
    assert "Traceback" not in process.stderr
    assert process.stderr.splitlines() == [
        "tradeledger run: the agent component failed: RuntimeError: the market data feed broke"]
    with composed(api_settings(sqlite_url)) as root:
        (stopped,) = events(root, AgentRun.Stopped)
        assert not stopped.clean and "the market data feed broke" in stopped.reason
        assert events(root, Market.CandleClosed), "the agent traded before its feed broke"
        (gateway_stopped,) = events(root, Gateway.Stopped)
        assert gateway_stopped.reason == "server stopped", "the API shut down as on SIGTERM"
        with root.engine.connect() as conn:
            positions = {row.name: row.position for row in conn.execute(TRACKING.select())}
        assert set(positions.values()) == {root.store.head_position()}, "the projector caught up before exiting"
