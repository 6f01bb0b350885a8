"""Runs one parsed command: its settings, its store, the composition root, and the CLI's error policy."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from tradeledger.adapters import database
from tradeledger.adapters.cliargs import COMMANDS, fail
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.database import StoreUnavailable
from tradeledger.adapters.errors import Refused
from tradeledger.settings import SettingsError, load_settings, with_params


def execute(args: argparse.Namespace) -> int:
    try:
        settings = with_params(load_settings(getattr(args, "settings", None), overrides=overrides(args)),
                               getattr(args, "param", None))
    except SettingsError as error:
        print(f"tradeledger: invalid settings\n{error}", file=sys.stderr)  # every bad key, one per line
        return 2
    spec = COMMANDS[args.command_name]
    try:
        if spec.reads is not None:
            database.check_store(settings.database.url, need_head=spec.reads == "log and read models")
        container = Composition(settings, read_only=spec.reads is not None, durable=spec.durable)
        if spec.reads is None and spec.store:
            container.migrate()  # the first thing that needs the database
    except SQLAlchemyError as error:
        # Exit 2 like any other unusable input; for `health` that is "unhealthy: store unreachable".
        return fail(args.command_name, f"cannot open the database {settings.redacted()['database']['url']}: "
                                       f"{getattr(error, 'orig', None) or error}")
    except StoreUnavailable as error:
        return fail(args.command_name, str(error))
    with container:
        try:
            return spec.handler(args, container)
        except Refused as error:
            # The data is unusable, does not fit the settings, or the store's history cannot be continued
            # by this agent (exit 2); or a finding, such as a history decided by other code (exit 1).
            fail(args.command_name, str(error))
            return error.exit_code


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"database.url": getattr(args, "database", None), "predictor.name": getattr(args, "predictor", None),
            "api.host": getattr(args, "host", None), "api.port": getattr(args, "port", None),
            "trading.speed": getattr(args, "speed", None),
            "exchange.name": getattr(args, "exchange", None), "exchange.api_url": getattr(args, "api_url", None),
            "strategy.path": getattr(args, "strategy", None),
            "trading.fee_rate": getattr(args, "fee", None), "trading.slippage_bps": getattr(args, "slippage_bps", None),
            "trading.initial_balance": getattr(args, "initial_balance", None)}
