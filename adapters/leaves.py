"""The leaf of the Merkle tree for one stored event: the exact bytes docs/log-format.md documents.

`b"tradeledger-leaf-v1" || position u64 || stream id (16 bytes) || version u64 || topic length u16 || topic
UTF-8 || business time i64 || recorded time i64 || payload length u32 || payload`, integers big-endian, times
in microseconds since the Unix epoch (UTC); the payload is the stored state without its chain digest.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tradeledger.adapters.eventlog import StoredRow
from tradeledger.adapters.eventstore import DIGEST_SIZE, recorded_times
from tradeledger.adapters.merkle import leaf_hash

PREFIX = b"tradeledger-leaf-v1"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    return (at - EPOCH) // MICROSECOND


def leaf_data(row: StoredRow) -> bytes:
    """The leaf data of a stored row; ValueError when the row is malformed (no UUID, no state, no times)."""
    if row.state is None or len(row.state) < DIGEST_SIZE or not hasattr(row.stream, "bytes"):
        raise ValueError(f"the stored event at position {row.position} is malformed")
    payload = row.state[DIGEST_SIZE:]
    times = recorded_times(payload)
    topic = row.topic.encode()
    return b"".join((PREFIX, row.position.to_bytes(8, "big"), row.stream.bytes, row.version.to_bytes(8, "big"),
                     len(topic).to_bytes(2, "big"), topic, micros(times.timestamp).to_bytes(8, "big", signed=True),
                     micros(times.recorded).to_bytes(8, "big", signed=True), len(payload).to_bytes(4, "big"),
                     payload))


def row_leaf_hash(row: StoredRow) -> bytes:
    """The leaf hash of a row; a malformed row hashes its raw fields, so it still differs from any signed leaf."""
    try:
        return leaf_hash(leaf_data(row))
    except Exception:  # noqa: BLE001 - a row no leaf can be built from is still a leaf that matches nothing
        return leaf_hash(b"malformed" + repr(tuple(row)).encode())
