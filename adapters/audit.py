"""Auditor checks over the raw log: hash chains, stream order, ledger invariants, seals.

Everything here reads stored events exactly as recorded (not through any read
model), so a finding points at the stored event itself: its stream, version
and log position.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from tradeledger.adapters.eventstore import GENESIS, ChainedMapper, LedgerStore, chain_digest, split_state
from tradeledger.domain.account import Account

PAGE = 5000


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


class Seal(msgspec.Struct, frozen=True, kw_only=True):
    """What an auditor keeps to detect a truncated tail later."""

    head_position: int
    streams: dict[str, StreamHead]


class VerifyReport(msgspec.Struct, kw_only=True):
    ok: bool
    events: int
    streams: int
    findings: list[Finding]


def read_log(store: LedgerStore, after: int = 0, page: int = PAGE) -> Iterator[Notification]:
    """Every stored event after a position, in log order, read in large pages."""
    while True:
        batch = store.recorder.select_notifications(start=after, limit=page, inclusive_of_start=False)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].id


class ChainChecker:
    """Follows every stream through the log and checks its versions and digests."""

    def __init__(self) -> None:
        self.heads: dict[UUID, StreamHead] = {}

    def check(self, n: Notification) -> Finding | None:
        oid = n.originator_id if isinstance(n.originator_id, UUID) else UUID(str(n.originator_id))
        head = self.heads.get(oid)
        expected = 1 if head is None else head.version + 1
        digest, payload = split_state(n.state)
        previous = GENESIS if head is None else bytes.fromhex(head.digest)
        self.heads[oid] = StreamHead(n.originator_version, n.id, digest.hex())
        if n.originator_version != expected:
            return _finding("order", n, f"expected version {expected} of this stream, found {n.originator_version}"
                            " (an event was removed or reordered)")
        if chain_digest(previous, oid, n.originator_version, n.topic, payload) != digest:
            return _finding("hash", n, "digest does not match the event and its predecessor (the event was altered)")
        return None


class LedgerChecker:
    """Folds each Account from its events and checks the double-entry invariants after each one."""

    def __init__(self) -> None:
        self.accounts: dict[UUID, Account] = {}

    def check(self, n: Notification, event: Any) -> Finding | None:
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


def verify_log(store: LedgerStore, seal: Seal | None = None) -> VerifyReport:
    chains, ledger = ChainChecker(), LedgerChecker()
    findings: list[Finding] = []
    count = 0
    for n in read_log(store):
        count += 1
        finding = chains.check(n) or ledger.check(n, _decode(n, findings))
        if finding is not None:
            findings.append(finding)
    if seal is not None:
        findings.extend(check_seal(seal, chains.heads))
    return VerifyReport(ok=not findings, events=count, streams=len(chains.heads), findings=findings)


def _decode(n: Notification, findings: list[Finding]) -> Any:
    try:
        return ChainedMapper.decode(n.topic, n.originator_id, n.originator_version, split_state(n.state)[1])
    except Exception as error:  # noqa: BLE001 - an undecodable event is reported, not raised
        findings.append(_finding("decode", n, f"stored event cannot be decoded: {error}"))
        return None


def make_seal(store: LedgerStore) -> Seal:
    chains = ChainChecker()
    for n in read_log(store):
        chains.check(n)
    head = max((h.position for h in chains.heads.values()), default=0)
    return Seal(head_position=head, streams={str(k): v for k, v in chains.heads.items()})


def check_seal(seal: Seal, heads: dict[UUID, StreamHead]) -> list[Finding]:
    findings = []
    for stream, sealed in seal.streams.items():
        current = heads.get(UUID(stream))
        if current is None or current.version < sealed.version:
            findings.append(Finding(check="seal", stream=stream, version=sealed.version, position=sealed.position,
                                    message="the sealed head event is missing (the stream was truncated)"))
        elif current.version == sealed.version and current.digest != sealed.digest:
            findings.append(Finding(check="seal", stream=stream, version=sealed.version, position=sealed.position,
                                    message="the head event differs from the sealed one"))
    return findings


def _finding(check: str, n: Notification, message: str) -> Finding:
    return Finding(check=check, stream=str(n.originator_id), version=n.originator_version, position=n.id,
                   message=message)
