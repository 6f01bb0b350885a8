"""The projections' names, in the registry's order, importable without their folds: the health view reads
the tracking rows by these names in a process that folds nothing (`tradeledger health`). The registry's
projections carry the same names (tests/test_projections_runner.py checks it)."""

from __future__ import annotations

NAMES = ("portfolio", "signals", "health", "activity", "connections", "alerts", "models")
