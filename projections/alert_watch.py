"""Alerts that are not in the log: read from the health view and the portfolio read model.

The watcher appends nothing. Each check reads the read models, compares them
with the alerts the outbox already holds, and returns the alerts to queue.
Their ids are deterministic, so a repeated check, a restart or a second
watcher can never queue one twice (the outbox ignores an id it has):

- `agent_stale:<run>:<last beat>`: the latest agent run has been silent for
  longer than the health view allows (`projections.health_rule`); one alert per
  silence, named by the last heartbeat (or the start) before it.
- `agent_recovered:<run>:<last beat>`: a silence alerted earlier has ended:
  that run beats again, or a newer run is running. It names the silence it ends.
- `feed_down:<run>:<last candle>`: the running agent's feed is `down` (an exchange outage longer
  than `exchange.outage_alert_after`, docs/exchange.md); one alert per outage, named by the last
  candle before it. `feed_recovered:<run>:<last candle>`: that outage has ended (the feed is live or
  lagging again, back-filling); it names the outage it ends.
- `projection_stuck:<name>:error:<position>`: a projection stopped on the event
  at that position; `projection_stuck:<name>:at:<position>`: a projection has
  stayed at that position for `stuck_after` seconds while the log is ahead.
- `daily_summary:<account>:<day>`: a UTC day the portfolio has closed (its
  mark day has moved past it), with the portfolio's daily PnL for the day and
  the closing equity (initial balance plus every day's PnL so far). The first
  summary for an account is only for its latest closed day, so a bot started
  on a long history does not send one message per past day.

An alert's position is the log head when it was observed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import msgspec
import sqlalchemy as sa

from tradeledger.projections.alerts import AlertKind, percent, shown, signed
from tradeledger.projections.health_rows import AGENT_RUNS
from tradeledger.projections.health_rule import AgentHealth, agent_health, latest_run, stopped_text
from tradeledger.projections.outbox import NewAlert
from tradeledger.projections.portfolio_rows import ACCOUNTS, DAILY_PNL, AccountRow, DailyPnlRow
from tradeledger.projections.sql import TRACKING, Tracking

STALE = "agent_stale:"
RECOVERED = "agent_recovered:"
STUCK = "projection_stuck:"
FEED_DOWN = "feed_down:"
FEED_RECOVERED = "feed_recovered:"
DAILY = "daily_summary:"

Known = Callable[[str], set[str]]  # the queued alert ids that start with a prefix
Found = tuple[str, AlertKind, str]  # (alert id, kind, text)


class AlertWatcher:
    def __init__(self, engine: sa.Engine, known: Known, *, heartbeat_interval: float, stuck_after: float) -> None:
        self.engine = engine
        self.known = known
        self.heartbeat_interval = heartbeat_interval
        self.stuck_after = stuck_after
        self.unmoved_since: dict[str, tuple[int, datetime]] = {}  # projection -> (position, first seen there)

    def check(self, *, now: datetime, head: int) -> list[NewAlert]:
        with self.engine.connect() as conn:
            run = latest_run(AGENT_RUNS.from_rows(conn.execute(sa.select(AGENT_RUNS.table))))
            tracking = msgspec.convert(list(conn.execute(sa.select(TRACKING).order_by(TRACKING.c.name))),
                                       list[Tracking], from_attributes=True)
            accounts = ACCOUNTS.from_rows(conn.execute(sa.select(ACCOUNTS.table)))
            days = DAILY_PNL.from_rows(conn.execute(sa.select(DAILY_PNL.table).order_by(DAILY_PNL.table.c.day)))
        health = agent_health(run, now=now, heartbeat_interval=self.heartbeat_interval)
        return [NewAlert(alert_id=alert_id, position=head, kind=kind, text=text) for alert_id, kind, text in (
            *self.agent(health),
            *self.feed(health),
            *(alert for t in tracking for alert in self.projection(t, head=head, now=now)),
            *(alert for a in accounts for alert in self.daily(a, [d for d in days if d.account == a.account])),
        )]

    def agent(self, health: AgentHealth) -> list[Found]:
        alerts: list[Found] = []
        if health.status == "stale":
            last = health.last_heartbeat_at or health.started_at
            assert last is not None and health.run_id is not None
            alerts.append((f"{STALE}{health.run_id}:{last.isoformat()}", "agent_stale",
                           f"agent run {str(health.run_id)[:8]} on {health.host} (pid {health.pid}) is silent: "
                           f"no heartbeat for {health.heartbeat_age:.0f}s, the last at {last:%Y-%m-%d %H:%M:%S} UTC"))
        if health.status == "running":
            recovered = self.known(RECOVERED)
            for silence in sorted(self.known(STALE)):
                subject = silence.removeprefix(STALE)
                if RECOVERED + subject not in recovered:
                    alerts.append((RECOVERED + subject, "agent_recovered", recovery_text(subject, health)))
        return alerts

    def feed(self, health: AgentHealth) -> list[Found]:
        if health.status != "running":
            return []  # a silent or stopped agent has its own alerts
        if health.feed == "down":
            last = health.last_candle_at.isoformat() if health.last_candle_at else "none"
            return [(f"{FEED_DOWN}{health.run_id}:{last}", "feed_down",
                     f"market data feed {health.feed_source} is DOWN: no candle for {health.feed_lag or 0:.0f}s "
                     f"(the last closed at {last}); the agent retries and back-fills when it answers")]
        recovered = self.known(FEED_RECOVERED)
        return [(FEED_RECOVERED + subject, "feed_recovered",
                 f"market data feed {health.feed_source} is {health.feed} again (down since the candle of "
                 f"{subject.partition(':')[2]}); missed candles are back-filled")
                for subject in sorted(s.removeprefix(FEED_DOWN) for s in self.known(FEED_DOWN))
                if FEED_RECOVERED + subject not in recovered]

    def projection(self, t: Tracking, *, head: int, now: datetime) -> list[Found]:
        if t.error is not None:
            return [(f"{STUCK}{t.name}:error:{t.error_position}", "projection_stuck",
                     f"projection {t.name} {stopped_text(t.error, t.error_position, t.error_at)}")]
        position, since = self.unmoved_since.get(t.name, (None, now))
        if position != t.position or t.position >= head:
            self.unmoved_since[t.name] = (t.position, now)
            return []
        if (now - since).total_seconds() < self.stuck_after:
            return []
        return [(f"{STUCK}{t.name}:at:{t.position}", "projection_stuck",
                 f"projection {t.name} has not moved from position {t.position} for "
                 f"{(now - since).total_seconds():.0f}s; the log is at {head}")]

    def daily(self, account: AccountRow, days: list[DailyPnlRow]) -> list[Found]:
        prefix = f"{DAILY}{account.account}:"
        closed = [d for d in days if account.mark_day is not None and d.day < account.mark_day]
        summarised = [date.fromisoformat(i.removeprefix(prefix)) for i in self.known(prefix)]
        due = [d for d in closed if d.day > max(summarised)] if summarised else closed[-1:]
        equity = account.initial_balance + sum((d.pnl for d in days if due and d.day < due[0].day), Decimal(0))
        alerts: list[Found] = []
        for day in due:
            equity += day.pnl
            alerts.append((f"{prefix}{day.day.isoformat()}", "daily_summary",
                           f"{account.account}: {day.day.isoformat()} closed with PnL {signed(day.pnl)} "
                           f"{account.quote_currency} ({percent(day.pnl, equity - day.pnl)}), "
                           f"equity {shown(equity)} {account.quote_currency}"))
        return alerts


def recovery_text(subject: str, health: AgentHealth) -> str:
    run, _, since = subject.partition(":")
    if run == str(health.run_id):
        return f"agent run {run[:8]} is beating again (silent since {since})"
    return f"agent is running again as run {str(health.run_id)[:8]} (run {run[:8]} went silent at {since})"
