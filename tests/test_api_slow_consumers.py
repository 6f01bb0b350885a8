"""Slow WebSocket consumers, over real sockets: a peer that stops reading is closed within the documented bound.

The peer completes the handshake and then reads nothing, with a small receive
buffer; the server's send buffer is fixed small too (`send_buffer`), so the
buffers in between fill after about a hundred kilobytes instead of megabytes.
The test waits for the server to reset the peer's socket (poll: POLLHUP), then
checks the close recorded in the peer's session, that the session is gone from
the connections read model, and that a client that keeps up received every
message of the same run, in order.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
from typing import Any, NamedTuple

from websockets.asyncio.client import connect

from tradeledger.adapters import eventlog
from tradeledger.adapters.composition import Composition
from tradeledger.projections.connections_rows import SESSIONS
from tradeledger.projections.sql import row_source
from scripts.synthetic_history import HistoryBuilder
from tests.composing import composed
from tests.apisupport import api_settings, project, serving
from tests.wssupport import DEADLINE, PING, Message, collect, expected, raw_peer, sent, ws_url

SEND_BUFFER = 16 * 1024  # the server's kernel send buffer per connection (the kernel doubles it)
RECEIVE_BUFFER = 4 * 1024  # the stalled peer's
SLACK = 4.0  # seconds a busy machine may add to a bound (scheduling, the append in flight)


def settings(url: str, **limits: str) -> Any:
    # Heartbeats (and uvicorn's pings, which would close a dead peer) far beyond the test's length.
    return api_settings(url, **{"agent.heartbeat_interval": "60", **limits})


def wait_for_reset(peer: socket.socket) -> None:
    """Block until the server has closed the connection, reading nothing."""
    poller = select.poll()
    poller.register(peer, select.POLLHUP | select.POLLERR)  # POLLIN is set all along: the buffer is full
    assert poller.poll(DEADLINE * 1000), "the server never closed the stalled peer"


class Writer:
    """Appends synthetic ticks on a thread, a few per transaction, until told to stop or `ticks` are written."""

    def __init__(self, builder: HistoryBuilder, ticks: int) -> None:
        self.builder, self.ticks = builder, ticks
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="writer")

    def run(self) -> None:
        for _ in range(self.ticks // 5):
            if self.stopping.is_set():
                return
            self.builder.extend(5, ticks_per_save=5)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


def peer_session(container: Composition, after: int, peer: socket.socket) -> tuple[str, dict[str, Any]]:
    """The stalled peer's session id and its ClientDisconnected, found by its address."""
    address = f"127.0.0.1:{peer.getsockname()[1]}"
    (connected,) = [e for e in eventlog.audit_page(container.feed, after=after, types=["ClientConnected"])
                    if e.data["peer"] == address]
    session = connected.data["session_id"]
    (disconnected,) = [e for e in eventlog.audit_page(container.feed, after=after, types=["ClientDisconnected"])
                       if e.data["session_id"] == session]
    return session, disconnected.data


class Run(NamedTuple):
    peer: socket.socket
    received: list[Message]  # by the client that kept up
    start: int  # the head when the clients connected
    last: int  # the head when the writer stopped
    open_sessions: list[str]  # WebSocket sessions in the connections read model, that client still connected


def open_websocket_sessions(container: Composition) -> list[str]:
    project(container)
    with container.engine.connect() as conn:
        return [s.session_id for s in row_source(conn)(SESSIONS) if s.channel == "websocket"]


def run_stalled(container: Composition, url: str, peer_path: str, writer: Writer) -> Run:
    """A client that keeps up and a peer that stalls, while `writer` appends."""
    start = container.store.head_position()

    async def scenario() -> Run:
        async with connect(ws_url(url, after=start), max_queue=None) as live:
            received: list[Message] = []
            last: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            collecting = asyncio.create_task(collect(live, received, last))
            peer = raw_peer(url, peer_path, receive_buffer=RECEIVE_BUFFER)
            writer.thread.start()
            await asyncio.to_thread(wait_for_reset, peer)
            await asyncio.to_thread(writer.stop)
            last.set_result(container.store.head_position())
            await live.send(PING)
            await collecting
            return Run(peer, received, start, last.result(), await asyncio.to_thread(open_websocket_sessions,
                                                                                    container))

    return asyncio.run(scenario())


def check_the_others(container: Composition, run: Run, gone: str) -> None:
    """The client that kept up got every message of the run, in order; `gone`'s session is closed, not its."""
    assert sent(run.received) == [m for m in expected(container, run.start) if m[0] <= run.last]
    assert gone not in run.open_sessions and len(run.open_sessions) == 1, run.open_sessions


def test_a_peer_that_stops_reading_is_dropped_after_the_send_timeout(sqlite_url: str) -> None:
    """`?after=0` on a history larger than every buffer: the catch-up stalls, the send timeout drops it (4001)."""
    # A send queue larger than all the writer can append (10,000 ticks), so that only the timeout can trip.
    limits = {"api.ws_send_timeout": "1", "api.ws_send_queue": "1000000"}
    with composed(settings(sqlite_url, **limits)) as container:
        builder = HistoryBuilder(container.store)
        builder.extend(300)  # about 700 KB of messages
        with serving(container, send_buffer=SEND_BUFFER) as url:
            run = run_stalled(container, url, "/ws?after=0", Writer(builder, ticks=10_000))
            session, closed = peer_session(container, run.start, run.peer)
            check_the_others(container, run, session)
        run.peer.close()
    assert closed["reason"] == "closed 4001: stopped reading: a send waited 1s (api.ws_send_timeout)"
    assert 1.0 <= closed["duration"] <= 1.0 + SLACK, closed


def test_a_peer_that_falls_behind_the_send_queue_is_closed(sqlite_url: str) -> None:
    """Live only: once the buffers are full, the next `api.ws_send_queue` messages close it (4000)."""
    limits = {"api.ws_send_queue": "200", "api.ws_send_timeout": "2"}
    with composed(settings(sqlite_url, **limits)) as container:
        builder = HistoryBuilder(container.store)
        builder.extend(1)
        with serving(container, send_buffer=SEND_BUFFER) as url:
            # 400 ticks are about 1 MB: several times what the buffers and the queue hold.
            run = run_stalled(container, url, "/ws", Writer(builder, ticks=400))
            session, closed = peer_session(container, run.start, run.peer)
            check_the_others(container, run, session)
        run.peer.close()
    assert closed["reason"] == "closed 4000: fell behind: 200 messages were waiting (api.ws_send_queue)"
    # It fell behind within moments of connecting; its close frame then waited the send timeout in vain.
    assert 2.0 <= closed["duration"] <= 2.0 + SLACK, closed
