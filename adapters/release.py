"""The release this code is: the installed distribution's version, `version` in pyproject.toml."""

from __future__ import annotations

from importlib.metadata import version

VERSION = version("tradeledger")
