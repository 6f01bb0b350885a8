"""What the WebSocket tests share: a client's view of `/ws`, what the log says it must carry, a raw peer."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from websockets.asyncio.client import ClientConnection

from tradeledger.adapters.api.messages import Renderer
from tradeledger.adapters.composition import Composition

DEADLINE = 60  # seconds a test may wait for a message before it is declared hung (not a timing assertion)

Message = dict[str, Any]
PING = '{"type":"ping"}'


def ws_url(base: str, after: int | None = None) -> str:
    return base.replace("http://", "ws://") + "/ws" + ("" if after is None else f"?after={after}")


async def receive(ws: ClientConnection) -> Message:
    return json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))


async def receive_type(ws: ClientConnection, kind: str) -> Message:
    """The next message of a kind, skipping the live updates in between."""
    while (message := await receive(ws))["type"] != kind:
        pass
    return message


async def receive_until(ws: ClientConnection, last: int) -> list[Message]:
    """Every log message up to position `last`: until a heartbeat says the server has sent that far."""
    received: list[Message] = []
    while (message := await receive(ws))["type"] != "heartbeat" or message["position"] < last:
        if message["type"] not in ("heartbeat", "pong", "subscribed"):
            received.append(message)
    return received


async def collect(ws: ClientConnection, received: list[Message], last: asyncio.Future[int]) -> None:
    """Every log message the client gets, until a pong says the server has queued everything up to `last`.

    Set `last` and send a ping; a pong from before the server had got that far asks again.
    """
    while True:
        message = await receive(ws)
        if message["type"] not in ("pong", "heartbeat"):
            received.append(message)
        elif message["type"] == "pong" and message["position"] >= last.result():
            return
        elif message["type"] == "pong":
            await ws.send(PING)


def expected(container: Composition, after: int) -> list[tuple[int, str]]:
    """What the log says the stream must carry after `after`: (position, type) in order."""
    renderer = Renderer(lambda _market: ("ETH/BTC", "5m"))
    messages = renderer.render(container.feed.read(after, 1_000_000))
    return [(m.position, str(m.__struct_config__.tag)) for m in messages]


def sent(messages: list[Message]) -> list[tuple[int, str]]:
    return [(m["position"], m["type"]) for m in messages]


def raw_peer(base: str, path: str = "/ws", *, receive_buffer: int | None = None) -> socket.socket:
    """A peer that completes the WebSocket handshake and then does only what the test makes it do."""
    host, port = base.removeprefix("http://").split(":")
    peer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connecting, so the window it advertises is that small
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    peer.settimeout(DEADLINE)
    peer.connect((host, int(port)))
    peer.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    return peer
