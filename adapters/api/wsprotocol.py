"""uvicorn's WebSocket protocol, plus what a connection's sender needs to know and to do.

uvicorn writes nothing to a connection, not even a close frame, while its
transport is paused: when a peer stops reading and every buffer in between is
full, `websocket.close` waits as long as the peer does (possibly forever) and
the socket stays open. This protocol adds, as the ASGI scope extension
EXTENSION:
- `writable()`: whether the transport takes data now, so a send will not wait
  (the sender then needs no deadline, adapters.api.sendqueue);
- the ASGI message `{"type": ABORT}`: the socket is closed with a zero linger
  time, so the kernel discards what is buffered and resets the connection (a
  plain close would queue its FIN behind data the peer never takes, and the
  kernel would keep the socket); uvicorn then reports the disconnect as it does
  for any lost connection.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from tradeledger.adapters.api.sendqueue import ABORT, EXTENSION


class AbortableWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: dict[str, Any] | None = getattr(self, "scope", None)  # set only when the handshake succeeded
        if scope is not None:
            scope["extensions"][EXTENSION] = {"writable": self.writable.is_set}

    async def send(self, message: Any) -> None:
        if message["type"] == ABORT:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
            return
        await super().send(message)
