"""Deterministic stream ids: every process derives the same id from a readable key."""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("5d0b2f5e-8a51-4b38-9a7e-7c6f3f0d2a11")


def account_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"account:{name}")


def market_id(symbol: str, timeframe: str) -> UUID:
    return uuid5(NAMESPACE, f"market:{symbol}:{timeframe}")


def agent_run_id(key: str) -> UUID:
    return uuid5(NAMESPACE, f"agent-run:{key}")


def gateway_id(key: str) -> UUID:
    return uuid5(NAMESPACE, f"gateway:{key}")


def order_id(account: str, sequence: int) -> UUID:
    return uuid5(NAMESPACE, f"order:{account}:{sequence}")
