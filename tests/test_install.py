"""A plain `pip install .` (no extras) is enough to serve live WebSocket updates.

The test environment also holds the test extra (the `websockets` client among it), so a server started here
could work only because of a test dependency. `serve` therefore runs with every installed distribution that
the main dependencies do not pull in hidden from imports: it sees what a plain install would give it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from websockets.asyncio.client import connect

from tests.conftest import ROOT
from tests.wssupport import DEADLINE, receive, ws_url

INSTALLER = {"pip", "setuptools"}  # what a fresh virtual environment holds before `pip install .`
# Runs the CLI with the standard path finder blind to the modules and distributions given as the first two
# arguments: importing one fails and `importlib.util.find_spec` answers None, as when it is not installed.
PLAIN_INSTALL_LAUNCHER = """
import importlib.machinery, re, runpy, sys

modules, distributions = (frozenset(sys.argv.pop(1).split(",")) for _ in range(2))
PathFinder = importlib.machinery.PathFinder

class PlainInstall(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.partition(".")[0] in modules else super().find_spec(name, path, target)

    @classmethod
    def find_distributions(cls, *args, **kwargs):
        return (d for d in super().find_distributions(*args, **kwargs)
                if re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() not in distributions)

sys.meta_path[sys.meta_path.index(PathFinder)] = PlainInstall
runpy.run_module("tradeledger.adapters.cli", run_name="__main__", alter_sys=True)
"""


def plain_install() -> set[str]:
    """The distributions `pip install .` brings: this project, its dependencies and theirs (installed metadata)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(r) for r in project["dependencies"]]
    seen: set[tuple[str, str]] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = {"", *requirement.extras}
        new = {(name, extra) for extra in extras} - seen
        if not new:
            continue
        seen |= new
        for declared in metadata.requires(name) or []:
            dependency = Requirement(declared)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for _, e in new):
                pending.append(dependency)
    return {canonicalize_name(project["name"]), *(name for name, _ in seen), *INSTALLER}


def not_installed() -> tuple[list[str], list[str]]:
    """The top-level modules and the distributions here that a plain install would not have."""
    installed = plain_install()
    distributions = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()} - installed
    modules = [module for module, providers in metadata.packages_distributions().items()
               if not {canonicalize_name(p) for p in providers} & installed]
    return sorted(modules), sorted(distributions)


def test_serve_from_a_plain_install_pushes_live_updates_over_websocket(sqlite_url: str) -> None:
    modules, distributions = not_installed()
    assert "hypothesis" in modules and "hypothesis" in distributions, "what only the test extra installs is hidden"
    command = [sys.executable, "-c", PLAIN_INSTALL_LAUNCHER, ",".join(modules), ",".join(distributions),
               "--database", sqlite_url, "serve", "--port", "0"]
    env = {**os.environ, "TRADELEDGER_AGENT__HEARTBEAT_INTERVAL": "0.2"}
    with subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as serve:
        assert serve.stdout is not None and serve.stderr is not None
        try:
            line = serve.stdout.readline()
            assert line.startswith("dashboard: "), serve.stderr.read()
            base = line.removeprefix("dashboard: ").strip().rstrip("/")
            first = asyncio.run(first_message(ws_url(base, after=0)))
        finally:
            serve.terminate()
            serve.wait(DEADLINE)
        stderr = serve.stderr.read()
    assert first["position"] == 1, f"the log's first event (the server's own start) is pushed: {first}"
    assert "WebSocket" not in stderr, stderr


async def first_message(url: str) -> dict[str, object]:
    async with connect(url) as ws:
        return await receive(ws)
