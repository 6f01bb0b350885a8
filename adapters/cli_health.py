"""`health`: what a probe runs often, so it imports the health view and nothing it does not read."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tradeledger.adapters.cliargs import command, emit
from tradeledger.projections.health_rule import HealthReport, stopped_text

if TYPE_CHECKING:
    from tradeledger.adapters.composition import Composition


@command("health", reads="log and read models")
def health_command(args: argparse.Namespace, container: Composition) -> int:
    report = container.health.report()
    emit(args, report, describe_health(report))
    return report.exit_code


def describe_health(report: HealthReport) -> str:
    agent = report.agent
    lines = [
        f"{report.status.upper()}" + (f": {'; '.join(report.reasons)}" if report.reasons else ""),
        f"  event store: {'reachable, head ' + str(report.head) if report.store_reachable else 'UNREACHABLE'}",
        f"  agent: {agent.status}" + (f" (pid {agent.pid} on {agent.host}, last heartbeat "
                                      f"{agent.heartbeat_age:.0f}s ago)" if agent.heartbeat_age is not None else ""),
        *(f"  projection {p.name}: position {p.position}, lag {p.lag}"
          + (f", {stopped_text(p.error, p.error_position, p.error_at)}" if p.error else "")
          for p in report.projections),
        f"  open connections: {report.open_connections}",
    ]
    return "\n".join(lines)
