"""Auditor checks: the raw log (hash chains, stream order, ledger invariants, each event's own figures:
`audit_facts`) and the read models.

The log checks read stored events exactly as recorded (not through any read
model), so a finding points at the stored event itself: its stream, version
and log position. The read-model check compares each projection's tables with
a fresh fold of the log (projections.verify) and turns a failure into a finding.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa

from tradeledger.adapters.eventlog import EventLog, StoredRow, decode
from tradeledger.adapters.eventstore import DIGEST_SIZE, GENESIS, chain_digest, split_state
from tradeledger.adapters.services.audit_facts import FactsChecker
from tradeledger.domain.account import Account
from tradeledger.projections.runner import EventFeed
from tradeledger.projections.verify import ProjectionCheck, verify_projections


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    check: str
    stream: str
    version: int | None
    position: int | None
    message: str

    def __str__(self) -> str:
        where = f"stream {self.stream} version {self.version} at position {self.position}"
        return f"[{self.check}] {where}: {self.message}"


class StreamHead(msgspec.Struct, frozen=True):
    version: int
    position: int
    digest: str


class VerifyReport(msgspec.Struct, kw_only=True):
    ok: bool
    events: int
    streams: int
    findings: list[Finding]


class ChainChecker:
    """Follows every stream through the log and checks its versions and digests."""

    def __init__(self) -> None:
        self.heads: dict[UUID, StreamHead] = {}

    def check(self, n: StoredRow) -> Finding | None:
        problem = malformed(n)
        if problem is not None:
            return _finding("malformed", n, problem)
        assert isinstance(n.stream, UUID) and n.state is not None  # what `malformed` checked
        head = self.heads.get(n.stream)
        expected = 1 if head is None else head.version + 1
        digest, payload = split_state(n.state)
        previous = GENESIS if head is None else bytes.fromhex(head.digest)
        self.heads[n.stream] = StreamHead(n.version, n.position, digest.hex())
        if n.version != expected:
            return _finding("order", n, f"expected version {expected} of this stream, found {n.version}"
                            " (an event was removed or reordered)")
        if chain_digest(previous, n.stream, n.version, n.topic, payload) != digest:
            return _finding("hash", n, "digest does not match the event and its predecessor (the event was altered)")
        return None


def malformed(n: StoredRow) -> str | None:
    """Why a stored row cannot be one of our events at all (the database allows it, our appends never write it)."""
    if not isinstance(n.stream, UUID):
        return f"originator_id {n.stream!r} is not a UUID"
    if not isinstance(n.version, int) or n.version < 1:
        return f"originator_version {n.version!r} is not a version (an integer from 1)"
    if not isinstance(n.topic, str) or not n.topic:
        return f"topic {n.topic!r} names no event type"
    if n.state is None:
        return "state is NULL"
    if len(n.state) < DIGEST_SIZE:
        return f"state is {len(n.state)} bytes, shorter than its {DIGEST_SIZE}-byte digest"
    return None


class LedgerChecker:
    """Folds each Account from its events and checks the double-entry invariants after each one."""

    def __init__(self) -> None:
        self.accounts: dict[UUID, Account] = {}

    def check(self, n: StoredRow, event: Any) -> Finding | None:
        if not isinstance(event, Account.Opened | Account.Event):
            return None
        try:
            account = event.mutate(self.accounts.get(event.originator_id))
        except Exception as error:  # noqa: BLE001 - any failure to apply is the finding
            return _finding("ledger", n, f"event cannot be applied to the account: {error!r}")
        self.accounts[event.originator_id] = account
        journal = getattr(event, "journal", ())
        if sum((line.amount for line in journal), Decimal(0)) != 0:
            return _finding("ledger", n, "journal entries of this event do not balance")
        if account.trial_balance() != 0:
            return _finding("ledger", n, f"trial balance is {account.trial_balance()}, not zero")
        if account.cash < 0:
            return _finding("ledger", n, f"cash went negative: {account.cash}")
        negative = [s for s, p in account.positions.items() if p.quantity < 0]
        if negative:
            return _finding("ledger", n, f"spot position went negative: {', '.join(negative)}")
        return None


def verify_log(log: EventLog) -> VerifyReport:
    chains, ledger, facts = ChainChecker(), LedgerChecker(), FactsChecker()
    findings: list[Finding] = []
    count = 0
    for n in log.scan_stored():
        count += 1
        finding = chains.check(n)
        if finding is None:
            event = _decode(n, findings)
            finding = ledger.check(n, event)
            findings.extend(_finding("facts", n, message) for message in facts.check(event))
        if finding is not None:
            findings.append(finding)
    return VerifyReport(ok=not findings, events=count, streams=len(chains.heads), findings=findings)


def _decode(n: StoredRow, findings: list[Finding]) -> Any:
    try:
        return decode(n.topic, n.stream, n.version, n.state)
    except Exception as error:  # noqa: BLE001 - an undecodable event is reported, not raised
        findings.append(_finding("decode", n, f"stored event cannot be decoded: {error}"))
        return None


def _finding(check: str, n: StoredRow, message: str) -> Finding:
    return Finding(check=check, stream=str(n.stream), version=n.version, position=n.position,
                   message=message)


def verify_read_models(engine: sa.Engine, feed: EventFeed) -> tuple[list[ProjectionCheck], list[Finding]]:
    """Each projection's check, and the failures as audit findings (first failing row named)."""
    head = feed.head()
    checks = verify_projections(engine, feed)
    return checks, [f for c in checks for f in (*beyond_head(c, head), *read_model_findings(c))]


def beyond_head(check: ProjectionCheck, head: int) -> list[Finding]:
    """A projection that claims events the log does not have: the log lost its tail, or the tables are another's."""
    if check.position <= head:
        return []
    return [Finding(check="tracking", stream=check.name, version=None, position=check.position,
                    message=f"the projection is tracked at position {check.position}, beyond the log's head {head}")]


def read_model_findings(check: ProjectionCheck) -> list[Finding]:
    def finding(kind: str, stream: str, message: str, position: int | None = check.position) -> Finding:
        return Finding(check=kind, stream=stream, version=None, position=position, message=message)

    found = []
    if check.error is not None:
        found.append(finding("projection", check.name, f"stopped on the event at position {check.error_position}: "
                             f"{check.error}", check.error_position))
    if check.fold_error is not None:
        found.append(finding("projection", check.name, f"a fresh fold of the log fails: {check.fold_error}"))
    if check.mismatch is not None:
        found.append(finding("projection", f"{check.name}/{check.mismatch.table}",
                             f"row {check.mismatch.key} differs from a fresh fold: {check.mismatch.message}"))
    if check.unreconciled is not None:
        found.append(finding("reconcile", f"{check.name}/{check.unreconciled.table}", str(check.unreconciled)))
    return found
