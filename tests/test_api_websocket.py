"""`/ws` over real sockets: the `websockets` client against uvicorn on 127.0.0.1, ephemeral port."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tradeledger.adapters.api.follower import LAGGED, Subscription, Update
from tradeledger.adapters.composition import Composition
from tradeledger.domain.gateway import Gateway
from tradeledger.projections.connections_rows import SESSIONS
from tradeledger.projections.sql import row_source
from scripts.synthetic_history import HistoryBuilder
from tests.composing import composed
from tests.apisupport import api_settings, events, project, serving, trade
from tests.wssupport import (
    PING,
    Message,
    collect,
    expected,
    raw_peer,
    receive,
    receive_type,
    receive_until,
    sent,
    ws_url,
)


class OtherProcess:
    """An agent on its own store: to the API its appends come from another process."""

    def __init__(self, settings: Any) -> None:
        self.container = Composition(settings)

    def trade(self, candles: int, skip: int) -> threading.Thread:
        thread = threading.Thread(target=trade, args=(self.container, candles), kwargs={"skip": skip})
        thread.start()
        return thread

    def close(self) -> None:
        self.container.close()


def test_envelope_ping_subscribe_and_bad_frames_keep_the_connection(sqlite_url: str) -> None:
    with composed(api_settings(sqlite_url)) as container, serving(container) as url:
        async def scenario() -> None:
            async with connect(ws_url(url)) as ws, connect(ws_url(url)) as other:
                await ws.send('{"type":"ping"}')
                pong = await receive_type(ws, "pong")
                assert set(pong) == {"type", "position", "at", "data"} and pong["data"] == {}
                bad_frames: dict[str | bytes, str] = {
                    "not json": "not JSON",
                    '{"type":"dance"}': "$.type",
                    '{"type":"subscribe","topics":"fills"}': "$.topics",
                    '{"type":"subscribe","topics":["weather"]}': "$.topics[0]",
                    '{"topics":["fills"]}': "type",
                    '{"type":"ping","extra":1}': "extra",
                    "x" * 5000: "frame too large",
                    b'{"type":"ping"}': "binary frames",
                }
                for frame, problem in bad_frames.items():
                    await ws.send(frame)
                    error = await receive_type(ws, "error")
                    assert problem in error["data"]["message"], (frame, error)
                await other.send('{"type":"ping"}')
                assert (await receive_type(other, "pong"))["type"] == "pong"
                await ws.send('{"type":"subscribe","topics":["fills"]}')
                assert (await receive_type(ws, "subscribed"))["data"]["topics"] == ["fills"]
                writer = threading.Thread(target=trade, args=(container, 120))
                writer.start()
                await asyncio.to_thread(writer.join)
                last = container.store.head_position()
                everything = await receive_until(other, last)
                fills = [m for m in everything if m["type"] == "fill"]
                assert fills, "the agent should have traded"
                await ws.send('{"type":"ping"}')  # everything before the pong has been sent
                only = []
                while (message := await receive(ws))["type"] != "pong":
                    only.append(message)
                assert [m for m in only if m["type"] != "heartbeat"] == fills

        asyncio.run(scenario())


def test_after_bad_value_is_refused_with_a_reason(sqlite_url: str) -> None:
    with composed(api_settings(sqlite_url)) as container, serving(container) as url:
        async def scenario() -> None:
            async with connect(ws_url(url).replace("/ws", "/ws?after=ten")) as ws:
                error = await receive(ws)
                assert error["type"] == "error" and error["data"]["field"] == "after"
                with pytest.raises(ConnectionClosed) as closed:
                    await receive(ws)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

        asyncio.run(scenario())


def test_after_n_replays_then_follows_live_with_no_gap_or_duplicate(store_url: str) -> None:
    settings = api_settings(store_url)
    with composed(settings) as container:
        trade(container, 100)
        history = container.store.head_position()
        other = OtherProcess(settings)
        try:
            with serving(container) as url:
                async def scenario() -> list[Message]:
                    async with connect(ws_url(url, after=history // 2)) as ws:
                        writer = other.trade(100, skip=100)
                        await asyncio.to_thread(writer.join)
                        return await receive_until(ws, container.store.head_position())

                received = asyncio.run(scenario())
        finally:
            other.close()
        assert sent(received) == expected_while_serving(container, history // 2)


def expected_while_serving(container: Composition, after: int) -> list[tuple[int, str]]:
    """All but the last message: the API's own Gateway.Stopped, recorded after its clients left."""
    return expected(container, after)[:-1]


def test_catch_up_racing_live_appends_sends_each_position_once_in_order(sqlite_url: str) -> None:
    """Clients join with `?after=0` one after another while the log grows: each catch-up (many pages)
    reads events that the follower also queues for it meanwhile, and only the connection's cursor
    check keeps them from being sent twice."""
    with composed(api_settings(sqlite_url)) as container:
        builder = HistoryBuilder(container.store)
        builder.extend(1500)  # about 9,000 events: a catch-up of many pages
        with serving(container) as url:
            async def client(connected: asyncio.Event, last: asyncio.Future[int]) -> list[Message]:
                async with connect(ws_url(url, after=0), max_queue=None) as ws:
                    connected.set()
                    received: list[Message] = []
                    collecting = asyncio.create_task(collect(ws, received, last))
                    await last
                    await ws.send(PING)
                    await collecting
                    return received

            async def scenario() -> tuple[int, list[list[Message]]]:
                last: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                writing = asyncio.create_task(asyncio.to_thread(
                    lambda: [builder.extend(2, ticks_per_save=2) for _ in range(300)]))
                clients = []
                for _ in range(4):  # each joins once the previous one is connected, all while the writer appends
                    connected = asyncio.Event()
                    clients.append(asyncio.create_task(client(connected, last)))
                    await connected.wait()
                await writing
                last.set_result(container.store.head_position())
                return last.result(), await asyncio.gather(*clients)

            last, results = asyncio.run(scenario())
        log = expected(container, 0)
    covered = sum(1 for position, _type in log if position <= last)
    for received in results:
        assert sent(received) == log[:len(received)], "each position once, in order, with no gap"
        assert len(received) >= covered


def test_hundreds_of_clients_get_every_update_in_order_and_sessions_return_to_zero(store_url: str) -> None:
    # One process runs the server and all the clients: give the clients' pongs some slack.
    settings = api_settings(store_url, **{"agent.heartbeat_interval": "3"})
    clients, abrupt = 300, 100
    with composed(settings) as container:
        trade(container, 40)
        start = container.store.head_position()
        other = OtherProcess(settings)
        try:
            with serving(container) as url:
                async def client(index: int, everyone_in: asyncio.Event, joined: list[int],
                                 done: asyncio.Future[int]) -> list[Message]:
                    async with connect(ws_url(url, after=start)) as ws:
                        joined.append(index)
                        if len(joined) == clients:
                            everyone_in.set()
                        if index < abrupt:
                            for _ in range(random.Random(index).randint(1, 40)):
                                await receive(ws)
                            ws.transport.abort()  # gone without a close frame, like a crashed browser
                            return []
                        return await receive_until(ws, await done)

                async def scenario() -> list[list[Message]]:
                    everyone_in, joined = asyncio.Event(), list[int]()
                    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                    tasks = [asyncio.create_task(client(i, everyone_in, joined, done)) for i in range(clients)]
                    await everyone_in.wait()
                    await asyncio.to_thread(other.trade(60, skip=40).join)
                    done.set_result(container.store.head_position())
                    return await asyncio.gather(*tasks)

                results = asyncio.run(scenario())
        finally:
            other.close()
        want = expected_while_serving(container, start)
        complete = [sent(r) for r in results if r]
        assert len(complete) == clients - abrupt
        assert all(received == want for received in complete)
        disconnects = events(container, Gateway.ClientDisconnected)
        assert len(events(container, Gateway.ClientConnected)) == len(disconnects) == clients
        reasons = Counter(d.reason for d in disconnects)
        assert reasons == {"connection lost without a close frame (code 1005)": abrupt,
                           "client closed (code 1000)": clients - abrupt}
        project(container)
        with container.engine.connect() as conn:
            assert row_source(conn)(SESSIONS) == []


def test_shutdown_closes_sockets_with_a_close_frame_and_stops_the_gateway(sqlite_url: str) -> None:
    with composed(api_settings(sqlite_url)) as container:
        async def scenario(url: str, stopping: threading.Event) -> int:
            async with connect(ws_url(url)) as ws:
                await ws.send('{"type":"ping"}')
                await receive_type(ws, "pong")
                stopping.set()
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await receive(ws)
                assert closed.value.rcvd is not None
                return closed.value.rcvd.code

        stopping = threading.Event()
        codes: list[int] = []
        with serving(container) as url:
            client = threading.Thread(target=lambda: codes.append(asyncio.run(scenario(url, stopping))))
            client.start()
            stopping.wait()
        client.join()
        assert codes[0] in (1001, 1012)
        (gateway_stopped,) = events(container, Gateway.Stopped)
        (disconnect,) = events(container, Gateway.ClientDisconnected)
        assert disconnect.reason == "server shutting down (code 1012)" and gateway_stopped.reason == "server stopped"


def test_dead_peer_is_closed_and_its_session_recorded(sqlite_url: str) -> None:
    """A peer that completes the handshake and then never answers a ping."""
    with composed(api_settings(sqlite_url, **{"agent.heartbeat_interval": "0.2"})) as container:
        with serving(container) as url:
            with raw_peer(url) as peer:
                while peer.recv(65536):  # read pings and heartbeats, answer nothing, until the server hangs up
                    pass
        (disconnect,) = events(container, Gateway.ClientDisconnected)  # recorded by the handler, before Stopped
        assert disconnect.reason.startswith("connection lost without a close frame")


def test_a_full_queue_marks_the_connection_lagged_without_blocking() -> None:
    async def scenario() -> None:
        subscription = Subscription(limit=2)
        for last in (1, 2, 3, 4):
            subscription.offer(Update(last, ()))
        assert subscription.lagged
        assert await subscription.next() is LAGGED  # and what was queued is dropped: the log has it
        subscription.offer(Update(5, ()))
        assert await subscription.next() == Update(5, ())

    asyncio.run(scenario())
