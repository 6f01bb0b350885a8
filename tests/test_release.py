"""The release number has one source: pyproject.toml, read back from the installed distribution."""

from __future__ import annotations

import tomllib

from tradeledger.adapters.release import VERSION
from tests.conftest import ROOT


def test_the_version_recorded_and_served_is_the_one_in_pyproject() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        assert VERSION == tomllib.load(file)["project"]["version"]
