"""Running the app under uvicorn: in the foreground (CLI) or in a background thread (tests, benchmarks).

WebSocket limits set here, with the protocol-level meaning:
- frames over WS_MAX_SIZE close the connection (1009); smaller frames over
  the app's own limit (adapters.api.websocket.MAX_FRAME_BYTES) only get an
  error message, so a client mistake does not cost it its connection;
- the server pings every connection each heartbeat interval and closes a
  peer that has not answered within PING_TIMEOUT_INTERVALS intervals (a dead
  peer); a busy but live client gets that much slack;
- per-message compression is off: with many clients the CPU it costs is
  worth more than the bandwidth it saves on small JSON messages;
- the protocol is uvicorn's own (websockets, sans-I/O), extended so the app
  can tell whether a send would wait and can drop a peer that stopped reading
  (adapters.api.wsprotocol).

Once listening, the server moves everything allocated so far (modules, the app,
caches) out of the garbage collector's reach (`gc.freeze`): with 1,000 open
connections a full collection paused the process for about 94 ms, the largest
part of the append-to-delivery p99; after freezing, about 30 ms.
"""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from tradeledger.adapters.api.wsprotocol import AbortableWebSocketProtocol

if TYPE_CHECKING:
    from litestar import Litestar

WS_MAX_SIZE = 1024 * 1024
PING_TIMEOUT_INTERVALS = 3
GRACEFUL_SHUTDOWN_SECONDS = 10


def server_config(app: Litestar, *, host: str, port: int, heartbeat_interval: float) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_level="warning", access_log=False,
        ws_max_size=WS_MAX_SIZE, ws_ping_interval=heartbeat_interval,
        ws_ping_timeout=PING_TIMEOUT_INTERVALS * heartbeat_interval,
        ws_per_message_deflate=False, ws=AbortableWebSocketProtocol,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


class Server(uvicorn.Server):
    """uvicorn's server, telling the caller when it is listening; `stop` and a signal stop it, both ways.

    A signal sets `stop` (so the process's other components stop too); `stop` set by anyone else (a
    component of `tradeledger run` that died) shuts the server down as a signal would, within a tick (0.1 s).
    """

    def __init__(self, config: uvicorn.Config, *, on_started: Callable[[], None] = lambda: None,
                 stop: threading.Event | None = None) -> None:
        super().__init__(config)
        self.on_started = on_started
        self.stop = stop or threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            gc.collect()
            gc.freeze()
            self.on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stop.set()
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.stop.is_set():
            self.should_exit = True
        return await super().on_tick(counter)


def bind(host: str, port: int, send_buffer: int | None = None) -> socket.socket:
    """A listening socket; port 0 picks a free one (read it back with getsockname).

    `send_buffer` fixes the kernel's send buffer of every accepted connection (bytes; the
    default lets the kernel grow it to megabytes): tests use it to reach a full buffer quickly.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    # Accepted connections inherit it. Without it, a response written in two parts waits for the
    # client's delayed ACK: measured 44 ms per request instead of under 1 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


@contextmanager
def background_server(app: Litestar, *, host: str = "127.0.0.1", port: int = 0, heartbeat_interval: float = 5.0,
                      send_buffer: int | None = None) -> Iterator[str]:
    """Serve `app` in a thread until the block ends; yields the base URL (http://host:port)."""
    sock = bind(host, port, send_buffer)
    settled = threading.Event()  # listening, or failed to start
    server = Server(server_config(app, host=host, port=sock.getsockname()[1],
                                  heartbeat_interval=heartbeat_interval), on_started=settled.set)

    def run() -> None:
        try:
            server.run(sockets=[sock])
        finally:
            settled.set()

    thread = threading.Thread(target=run, name="uvicorn", daemon=True)
    thread.start()
    settled.wait()
    if not server.started:
        thread.join()
        raise RuntimeError("the API server did not start (see the log above)")
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def serve_foreground(app: Litestar, *, host: str, port: int, heartbeat_interval: float,
                     on_started: Callable[[str], None], stop: threading.Event) -> None:
    """Serve in this (main) thread until SIGINT/SIGTERM or `stop`; `on_started(url)` once listening.

    uvicorn handles the signal (closing every WebSocket with a close frame, then
    running the app's shutdown), then re-raises it into the handler that was
    installed before, so install one (adapters.progress.stop_on_signals) first.
    """
    sock = bind(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}/"
    server = Server(server_config(app, host=host, port=sock.getsockname()[1], heartbeat_interval=heartbeat_interval),
                    on_started=lambda: on_started(url), stop=stop)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
