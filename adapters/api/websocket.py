"""`/ws`: live updates from the event log, one handler per connection.

Protocol (docs/api.md has the full description):
- every server message is `{"type", "position", "at", "data"}`; `position`
  is the log position that produced it (for pong, heartbeat, subscribed and
  error: the last position this connection has been brought up to);
- `?after=N` first sends every message after position N, read from the log,
  then live ones: each position once, in order, with no gap;
- the client may send `{"type": "ping"}` and `{"type": "subscribe",
  "topics": [...]}` (replaces the topics; all topics until then);
- a bad frame gets an `error` message naming the problem; the connection stays
  open. Frames over MAX_FRAME_BYTES are refused the same way (uvicorn closes
  the connection only above its own `ws_max_size`, see adapters.api.server).

Each connection runs four tasks (receive, push, heartbeat, and the writer of
its bounded send queue, adapters.api.sendqueue: a message goes straight to the
socket while the peer keeps up); the first to end ends the connection, and its
reason is recorded in the Gateway's ClientDisconnected.
A peer that does not keep up is closed with 4000 (fell behind by
`api.ws_send_queue` messages) or dropped with 4001 recorded (took no data for
`api.ws_send_timeout` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect

from tradeledger.adapters.api.follower import LAGGED, FollowerStopped, LogFollower, LogReader, Subscription, Update
from tradeledger.adapters.services.views import ALL_TOPICS, MAX_POSITION, Topic
from tradeledger.adapters.api.sendqueue import ABORT, CLOSE_STOPPED_READING, EXTENSION, SendQueue, SlowConsumer, never
from tradeledger.adapters.services.gateway import GatewayClosed, GatewaySessions
from tradeledger.domain.text import MAX_PEER, InvalidText, recordable

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4096
CLOSE_GOING_AWAY = 1001
NO_STATUS = 1005
ABNORMAL = 1006
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
SERVICE_RESTART = 1012


class Ping(msgspec.Struct, tag="ping", tag_field="type", forbid_unknown_fields=True):
    pass


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="type", forbid_unknown_fields=True):
    topics: list[Topic]


_decode_frame = msgspec.json.Decoder(Ping | Subscribe).decode
_encoder = msgspec.json.Encoder()
_FIELD = re.compile(r"at `\$\.?([^`]*)`")


class Notice(msgspec.Struct):
    """A server message that is not from the log."""

    type: Literal["pong", "heartbeat", "subscribed", "error"]
    position: int
    at: datetime
    data: dict[str, Any]


def notice_text(kind: Literal["pong", "heartbeat", "subscribed", "error"], position: int, at: datetime,
                data: dict[str, Any]) -> str:
    return _encoder.encode(Notice(kind, position, at, data)).decode()


class BadInput(Exception):
    """A refused frame or `after` parameter; the message names the problem, `field` the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)

    def data(self) -> dict[str, Any]:
        return {"message": str(self), "field": self.field}


@dataclass(frozen=True)
class LiveStream:
    """What every connection handler shares: the follower, the log reader, the session log, the limits."""

    follower: LogFollower
    reader: LogReader
    sessions: GatewaySessions
    heartbeat_interval: float
    send_queue: int  # api.ws_send_queue
    send_timeout: float  # api.ws_send_timeout
    clock: Callable[[], datetime]


class SendFailed(Exception):
    pass


class Connection:
    def __init__(self, socket: WebSocket, stream: LiveStream, cursor: int) -> None:
        self.socket = socket
        self.stream = stream
        self.cursor = cursor  # every message up to this position has been queued or filtered out
        self.topics: frozenset[str] = ALL_TOPICS
        self.server: dict[str, Any] | None = (socket.scope.get("extensions") or {}).get(EXTENSION)
        self.outgoing = SendQueue(self.send, limit=stream.send_queue, timeout=stream.send_timeout,
                                  writable=self.server["writable"] if self.server else never)

    async def run(self, subscription: Subscription) -> str:
        """Serve until the client leaves, the server stops, the peer does not keep up or a send fails; why."""
        receiving = asyncio.create_task(self.receive())
        tasks = [receiving, asyncio.create_task(self.push(subscription)), asyncio.create_task(self.beat()),
                 asyncio.create_task(self.outgoing.write())]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        errors = [error for task in done if (error := task.exception()) is not None]
        if receiving in done and receiving.exception() is None:
            return receiving.result()  # the client's own close explains a failed send at the same moment
        stopped = next((e for e in errors if isinstance(e, FollowerStopped)), None)
        if stopped is not None:
            await self.close(CLOSE_GOING_AWAY, "server shutting down")
            return f"server stopped: {stopped.reason}"
        slow = next((e for e in errors if isinstance(e, SlowConsumer)), None)
        if slow is not None:
            # A peer that stopped reading cannot take a close frame either: drop it at once.
            await (self.abort() if slow.code == CLOSE_STOPPED_READING else self.close(slow.code, slow.reason))
            return str(slow)
        return f"connection lost: {errors[0]}"

    async def close(self, code: int, reason: str) -> None:
        """A close frame; when the peer takes none within the send timeout, the connection is dropped."""
        try:
            async with asyncio.timeout(self.stream.send_timeout):
                await self.socket.close(code, reason)
        except TimeoutError:
            await self.abort()
        except Exception:  # noqa: BLE001 - the peer is gone already: nothing left to close
            log.debug("closing a connection that had ended", exc_info=True)

    async def abort(self) -> None:
        if self.server is None:
            log.warning("cannot drop a WebSocket connection: the server does not offer %s", EXTENSION)
            return
        with contextlib.suppress(Exception):  # already gone: nothing to drop
            await self.socket.send({"type": ABORT})  # type: ignore[typeddict-item]

    # -- server to client ---------------------------------------------------

    async def push(self, subscription: Subscription) -> None:
        while True:
            update = await subscription.next()
            if update is LAGGED:
                await self.catch_up()
            else:
                assert isinstance(update, Update)
                await self.deliver(update)

    async def deliver(self, update: Update) -> None:
        """A live update: sent or queued now, or the connection ends (it fell behind)."""
        for text in self.unsent(update):
            await self.outgoing.put(text)
        self.cursor = max(self.cursor, update.last)

    async def catch_up(self) -> None:
        """Send everything after the cursor from the log, up to the head as it is now, at the peer's pace."""
        while True:
            update = await asyncio.to_thread(self.stream.reader.read, self.cursor)
            if update.last <= self.cursor:
                return
            for text in self.unsent(update):
                await self.outgoing.put_paced(text)
            self.cursor = update.last  # only now: a notice queued meanwhile must not claim the whole page

    def unsent(self, update: Update) -> list[str]:
        # Positions at or before the cursor were already queued (by the catch-up or an
        # earlier page): skipping them is what makes catch-up + live gap- and duplicate-free.
        return [message.text for message in update.messages
                if message.position > self.cursor and not message.topics.isdisjoint(self.topics)]

    async def beat(self) -> None:
        # A random phase: connections opened together (a server restart, a load test) must not
        # all beat in the same instant, which delays the updates behind that burst.
        await asyncio.sleep(random.uniform(0, self.stream.heartbeat_interval))
        while True:
            await self.notice("heartbeat", {})
            await asyncio.sleep(self.stream.heartbeat_interval)

    async def notice(self, kind: Literal["pong", "heartbeat", "subscribed", "error"], data: dict[str, Any]) -> None:
        await self.outgoing.put(notice_text(kind, self.cursor, self.stream.clock(), data))

    async def send(self, text: str) -> None:
        try:
            await self.socket.send_text(text)
        except (WebSocketDisconnect, OSError, RuntimeError) as error:
            raise SendFailed(f"send failed: {type(error).__name__}") from error

    # -- client to server ---------------------------------------------------

    async def receive(self) -> str:
        while True:
            message = await self.socket.receive()
            if message["type"] == "websocket.disconnect":
                return disconnect_reason(message.get("code", NO_STATUS))
            try:
                await self.handle(frame_of(message))
            except BadInput as error:
                await self.notice("error", error.data())

    async def handle(self, frame: Ping | Subscribe) -> None:
        if isinstance(frame, Ping):
            await self.notice("pong", {})
        else:
            self.topics = frozenset(frame.topics)
            await self.notice("subscribed", {"topics": sorted(self.topics)})


def disconnect_reason(code: int) -> str:
    # uvicorn reports a connection that ended without a close frame as 1005 (after the
    # handshake) or 1006 (a dead peer closed for not answering pings ends the same way),
    # and closes every connection with 1012 when the server shuts down.
    if code in (NO_STATUS, ABNORMAL):
        return f"connection lost without a close frame (code {code})"
    if code == SERVICE_RESTART:
        return f"server shutting down (code {code})"
    return f"client closed (code {code})"


def frame_of(message: Any) -> Ping | Subscribe:
    text = message.get("text")
    if text is None:
        raise BadInput("binary frames are not accepted: send JSON text")
    size = len(text.encode())
    if size > MAX_FRAME_BYTES:
        raise BadInput(f"frame too large: {size} bytes, the limit is {MAX_FRAME_BYTES}")
    try:
        return _decode_frame(text)
    except msgspec.ValidationError as error:
        match = _FIELD.search(str(error))
        raise BadInput(f"invalid message: {error}", match.group(1) if match else None) from None
    except msgspec.DecodeError as error:
        raise BadInput(f"not JSON: {error}") from None


def parse_after(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) > MAX_POSITION:
        raise BadInput(f"after: expected a log position (an integer from 0 to {MAX_POSITION}), got {raw!r}",
                       "after")
    return int(raw)


@websocket("/ws")
async def live_updates(socket: WebSocket, stream: NamedDependency[LiveStream]) -> None:
    await socket.accept()
    client = socket.client
    try:  # recorded in the session: behind a proxy, the host is what X-Forwarded-For says
        peer = recordable("peer", f"{client.host}:{client.port}" if client else "unknown", max_length=MAX_PEER)
    except InvalidText as error:
        log.warning("refused a WebSocket connection: %s", error)
        await socket.close(CLOSE_POLICY, "invalid peer address")
        return
    try:
        session = await stream.sessions.connect(channel="websocket", peer=peer)
    except Exception:
        log.exception("could not record the connection of %s", peer)
        await socket.close(CLOSE_INTERNAL, "the session could not be recorded")
        return
    reason = "handler failed"
    try:
        reason = await serve(socket, stream)
    finally:
        await record_disconnect(stream.sessions, session, reason)


async def serve(socket: WebSocket, stream: LiveStream) -> str:
    """One recorded session; returns why it ended."""
    try:
        after = parse_after(socket.query_params.get("after"))
    except BadInput as error:
        await socket.send_text(notice_text("error", 0, stream.clock(), error.data()))
        await socket.close(CLOSE_POLICY, "invalid after")
        return f"refused: {error}"
    with stream.follower.subscribe() as subscription:
        connection = Connection(socket, stream, stream.follower.position if after is None else after)
        if after is not None:
            subscription.request_catch_up()
        return await connection.run(subscription)


async def record_disconnect(sessions: GatewaySessions, session: str, reason: str) -> None:
    # Not lost if this fails: the Gateway's Stopped closes every session still open.
    try:
        await sessions.disconnect(session, reason)
    except GatewayClosed:
        log.info("session %s ended after the gateway stopped (%s)", session, reason)
    except Exception:
        log.exception("could not record the disconnect of session %s", session)
