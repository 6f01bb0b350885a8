"""The alert outbox: every alert once per chat, with its delivery state.

This is not a projection. What Telegram accepted is not in the log, so these
rows must survive `rebuild alerts` (which only recreates the `alerts` table,
with the same positions, so nothing is enqueued or sent again).

- `alert_chats`: every chat that receives alerts and how far the log's alerts
  have been copied for it (`enqueued_through`). A chat is registered at the
  log head of the moment it is first configured, so a new chat (or a bot
  started on an old database) gets what happens from then on, not the history.
- `alert_outbox`: one row per alert and chat; the key is the alert id and the
  chat id, so an alert can never be queued twice for a chat. Log alerts are
  `log:<position>`; the health watcher's are `<kind>:<subject>`. Status
  `pending` -> `sent` (Telegram accepted it: `message_id`, `sent_at`) or
  `failed` (Telegram refused it for good: `last_error` says why). While a
  sender attempts a row it holds a claim: `claimed_by` is the sender's
  `host:pid` and `next_attempt_at` the end of the claim, so two senders never
  send the same row at once, and a sender that died mid-attempt gives the row
  back when the claim ends (or at once, when a sender on the same host finds
  that the claimer's process is gone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tradeledger.projections.alerts import ALERTS, AlertRow
from tradeledger.projections.rows import RowTable

Status = Literal["pending", "sent", "failed"]
ENQUEUE_PAGE = 500


class NewAlert(msgspec.Struct, frozen=True, kw_only=True):
    alert_id: str
    position: int  # the log position that caused it, or the head when it was observed
    kind: str
    text: str


class OutboxRow(msgspec.Struct, kw_only=True):
    alert_id: str
    chat_id: int
    position: int
    kind: str
    text: str
    created_at: datetime
    status: Status
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    claimed_by: str | None
    sent_at: datetime | None
    message_id: int | None


class ChatRow(msgspec.Struct, kw_only=True):
    chat_id: int
    enqueued_through: int
    added_at: datetime


OUTBOX = RowTable.of(OutboxRow, "alert_outbox", primary_key=["alert_id", "chat_id"], types={"attempts": sa.Integer},
                     indexes=[sa.Index("alert_outbox_queue", "chat_id", "status", "position")])
CHATS = RowTable.of(ChatRow, "alert_chats", primary_key=["chat_id"])


def log_alert_id(position: int) -> str:
    return f"log:{position}"


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[conn.dialect.name](table)


class Outbox:
    """The outbox's SQL, one short transaction per call, for the alert chats of one bot."""

    def __init__(self, engine: sa.Engine, chat_ids: Sequence[int]) -> None:
        self.engine = engine
        self.chat_ids = tuple(chat_ids)
        self.o = OUTBOX.table.c

    # -- queueing -----------------------------------------------------------------

    def register_chats(self, *, head: int, at: datetime) -> None:
        """Start every configured chat not seen before at the log head (no history)."""
        if not self.chat_ids:
            return
        rows = [{"chat_id": chat, "enqueued_through": head, "added_at": at} for chat in self.chat_ids]
        with self.engine.begin() as conn:
            conn.execute(_insert(conn, CHATS.table).on_conflict_do_nothing(index_elements=["chat_id"]), rows)

    def enqueue(self, *, at: datetime) -> int:
        """Queue the log alerts each chat has not had yet; returns how many rows were queued."""
        queued = 0
        for chat in self.chat_ids:
            with self.engine.begin() as conn:
                through = conn.execute(sa.select(CHATS.table.c.enqueued_through)
                                       .where(CHATS.table.c.chat_id == chat)).scalar_one()
                alerts: list[AlertRow] = ALERTS.from_rows(conn.execute(
                    sa.select(ALERTS.table).where(ALERTS.table.c.position > through)
                    .order_by(ALERTS.table.c.position).limit(ENQUEUE_PAGE)))
                if not alerts:
                    continue
                queued += self._queue(conn, [NewAlert(alert_id=log_alert_id(a.position), position=a.position,
                                                       kind=a.kind, text=a.text) for a in alerts], [chat], at)
                conn.execute(CHATS.table.update().where(CHATS.table.c.chat_id == chat)
                             .values(enqueued_through=alerts[-1].position))
        return queued

    def add(self, alerts: Sequence[NewAlert], *, at: datetime) -> int:
        """Queue alerts that are not in the log (the health watcher's) for every chat, once."""
        if not alerts or not self.chat_ids:
            return 0
        with self.engine.begin() as conn:
            return self._queue(conn, alerts, self.chat_ids, at)

    def _queue(self, conn: sa.Connection, alerts: Sequence[NewAlert], chats: Iterable[int], at: datetime) -> int:
        rows = [
            {"alert_id": a.alert_id, "chat_id": chat, "position": a.position, "kind": a.kind, "text": a.text,
             "created_at": at, "status": "pending", "attempts": 0, "last_error": None, "next_attempt_at": at,
             "claimed_by": None, "sent_at": None, "message_id": None}
            for a in alerts for chat in chats
        ]
        result = conn.execute(_insert(conn, OUTBOX.table).on_conflict_do_nothing(
            index_elements=["alert_id", "chat_id"]), rows)
        return max(result.rowcount, 0)

    def known(self, prefix: str) -> set[str]:
        """The ids of queued alerts that start with `prefix`, whatever their status."""
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(self.o.alert_id).distinct()
                                    .where(self.o.alert_id.startswith(prefix, autoescape=True))).scalars())

    # -- delivery -----------------------------------------------------------------

    def due(self, now: datetime) -> list[OutboxRow]:
        """Per chat, its oldest pending alert if it may be attempted now: each chat gets its alerts in order."""
        due = []
        with self.engine.connect() as conn:
            for chat in self.chat_ids:
                head = OUTBOX.from_rows(conn.execute(
                    sa.select(OUTBOX.table).where(self.o.chat_id == chat, self.o.status == "pending")
                    .order_by(self.o.position, self.o.alert_id).limit(1)))
                if head and head[0].next_attempt_at <= now:
                    due.append(head[0])
        return due

    def claim(self, row: OutboxRow, *, by: str, now: datetime, until: datetime) -> bool:
        """Take the row for one attempt; False when another sender has it or it is no longer pending."""
        with self.engine.begin() as conn:
            result = conn.execute(self._where(row).where(self.o.status == "pending", self.o.next_attempt_at <= now)
                                  .values(attempts=self.o.attempts + 1, claimed_by=by, next_attempt_at=until))
        return result.rowcount == 1

    def sent(self, row: OutboxRow, *, message_id: int, at: datetime) -> None:
        self._update(row, status="sent", sent_at=at, message_id=message_id, claimed_by=None)

    def retry(self, row: OutboxRow, *, error: str, at: datetime) -> None:
        self._update(row, last_error=error, next_attempt_at=at, claimed_by=None)

    def failed(self, row: OutboxRow, *, error: str) -> None:
        self._update(row, status="failed", last_error=error, claimed_by=None)

    def claimers(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(self.o.claimed_by).distinct().where(
                self.o.status == "pending", self.o.claimed_by.is_not(None))).scalars())

    def release(self, claimers: Iterable[str], *, at: datetime) -> int:
        """Give back the pending rows these senders hold, due at once; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(OUTBOX.table.update().where(
                self.o.status == "pending", self.o.claimed_by.in_(list(claimers)))
                .values(claimed_by=None, next_attempt_at=at))
        return result.rowcount

    def rows(self) -> list[OutboxRow]:
        """Every row, in queue order (the `telegram` docs' outbox view, and tests)."""
        with self.engine.connect() as conn:
            return OUTBOX.from_rows(conn.execute(sa.select(OUTBOX.table).order_by(
                self.o.position, self.o.alert_id, self.o.chat_id)))

    def _where(self, row: OutboxRow) -> sa.Update:
        return OUTBOX.table.update().where(self.o.alert_id == row.alert_id, self.o.chat_id == row.chat_id)

    def _update(self, row: OutboxRow, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._where(row).values(**values))
