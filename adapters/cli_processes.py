"""The long-running processes: `run` (the embedded system) and the scale-out ones, `agent`, `serve`,
`project` and `telegram`, each until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import TYPE_CHECKING

from tradeledger.adapters.cliargs import (PAGE_SIZES, PARAM, PORTS, PREDICTOR, SECONDS, STRATEGY, command, integer,
                                          number, option, redacted_url)
from tradeledger.adapters.progress import stop_on_signals
from tradeledger.adapters.services import readmodels
from tradeledger.adapters.services.trading import run_live

if TYPE_CHECKING:
    from tradeledger.adapters.composition import Composition

LIVE_DATA = option("--data", action="append", metavar="PATH",
                   help="replay this candle file (repeatable, or a directory of them) as if live instead of the "
                        "synthetic market")
LIVE_EXCHANGE = option("--exchange", metavar="NAME",
                       help="trade this exchange's closed candles as they close (overrides exchange.name)")
LIVE_SPEED = option("--speed", type=number(1, 1_000_000), metavar="N",
                    help="the synthetic demo: N candle times per candle time, never ahead of the wall clock "
                         "(overrides trading.speed, default 1)")
LIVE_API_URL = option("--api-url", metavar="URL", help="the exchange's REST base URL (overrides exchange.api_url)")
HOST = option("--host", metavar="HOST", help="listen address (overrides api.host, default 127.0.0.1)")
PORT = option("--port", type=integer(*PORTS), metavar="PORT",
              help="listen port (overrides api.port; 0 picks a free one)")


@command("agent", LIVE_DATA, LIVE_EXCHANGE, LIVE_API_URL, LIVE_SPEED, PREDICTOR, STRATEGY, PARAM, json=False)
def agent_command(args: argparse.Namespace, container: Composition) -> int:
    stop = stop_on_signals()
    exchange, settings = container.paced_settings(args.data)
    agent = container.agent(settings)
    agent.resume()
    run_live(agent, settings, stop, data=args.data, exchange=exchange, components=("agent",))
    container.checkpoint_on_stop()
    return 0


@command("serve", HOST, PORT, json=False)
def serve_command(args: argparse.Namespace, container: Composition) -> int:
    return serve(container, stop_on_signals())


@command("run", LIVE_DATA, LIVE_EXCHANGE, LIVE_API_URL, LIVE_SPEED, PREDICTOR, STRATEGY, PARAM, HOST, PORT,
         json=False)
def run_command(args: argparse.Namespace, container: Composition) -> int:
    failure = container.run(data=args.data, stop=stop_on_signals(), on_started=dashboard_started)
    if failure is not None:
        print(f"tradeledger run: {failure}", file=sys.stderr)
        return 1
    return 0


def serve(container: Composition, stop: threading.Event) -> int:
    try:
        container.serve(stop=stop, on_started=dashboard_started)
    except OSError as error:
        api = container.settings.api
        print(f"tradeledger: cannot listen on {api.host}:{api.port}: {error}", file=sys.stderr)
        return 2
    return 0


def dashboard_started(url: str) -> None:
    print(f"dashboard: {url}", flush=True)


@command("project",
         option("--every", type=number(*SECONDS), default=5.0, metavar="S",
                help="report progress at most every S seconds"),
         option("--page-size", type=integer(*PAGE_SIZES), default=readmodels.PAGE_SIZE, metavar="N",
                help=f"events per transaction while catching up (default {readmodels.PAGE_SIZE})"),
         json=False)
def project_command(args: argparse.Namespace, container: Composition) -> int:
    stop = stop_on_signals()
    readmodels.bulk_gc()
    print(f"projecting {redacted_url(container.settings)}", flush=True)
    container.run_projector(stop=stop, every=args.every, page_size=args.page_size,
                             report=lambda line: print(line, flush=True))
    return 0


@command("telegram", json=False)
def telegram_command(args: argparse.Namespace, container: Composition) -> int:
    if container.settings.telegram.token is None:
        print("tradeledger telegram: telegram.token is not set (settings file or TRADELEDGER_TELEGRAM__TOKEN)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return container.telegram_bot().serve(stop_on_signals())
