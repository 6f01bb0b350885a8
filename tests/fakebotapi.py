"""A local fake of the Telegram Bot API, so python-telegram-bot is tested offline with its real client.

It serves `/bot<token>/<method>` on 127.0.0.1 (an ephemeral port): getMe,
getUpdates (long polling over queued updates), deleteWebhook, setMyCommands
and sendMessage. sendMessage records every message it accepts and can be
scripted to answer the next calls with a failure instead: flood control
(429 with retry_after), a server error, "bot blocked" (403), a dropped
connection, or accepting the message and running a hook before answering
(to kill the sender between Telegram's acceptance and its acknowledgement).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "tradeledger", "username": "tradeledger_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}
LONG_POLL_CAP = 0.5  # seconds a getUpdates is held open at most, whatever timeout the client asked for


class Flood(NamedTuple):
    retry_after: int


class ServerError(NamedTuple):
    status: int = 500


class Blocked(NamedTuple):
    description: str = "Forbidden: bot was blocked by the user"


class Drop(NamedTuple):
    """Close the connection without answering."""


class AcceptThen(NamedTuple):
    """Accept the message (it counts as delivered), run `hook`, then answer."""

    hook: Callable[[], None]


Scripted = Flood | ServerError | Blocked | Drop | AcceptThen


class Message(NamedTuple):
    chat_id: int
    text: str
    message_id: int
    reply_to: int | None  # the message it answers (a command), None for an alert


class Call(NamedTuple):
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    outcome: str  # "ok" or the scripted failure's name


class FakeBotApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.messages: list[Message] = []
        self.calls: list[Call] = []
        self.script: deque[Scripted] = deque()
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 1
        self.changed = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-bot-api", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bot"

    def start(self) -> FakeBotApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Take the server down: from now on connections are refused."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    # -- what tests do ------------------------------------------------------------

    def fail_next(self, *failures: Scripted) -> None:
        with self.changed:
            self.script.extend(failures)

    def send_command(self, chat_id: int, text: str, *, user_id: int | None = None) -> int:
        """A user in `chat_id` sends `text` (a command: "/status ...") to the bot; returns its message id."""
        command = text.split()[0]
        with self.changed:
            message_id = self.next_update_id
            self.updates.append({"update_id": self.next_update_id, "message": {
                "message_id": message_id, "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": user_id or chat_id, "is_bot": False, "first_name": "trader"},
                "text": text, "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
            }})
            self.next_update_id += 1
            self.changed.notify_all()
        return message_id

    def texts(self, chat_id: int) -> list[str]:
        """What the bot sent to the chat that answers no command: its alerts."""
        with self.changed:
            return [m.text for m in self.messages if m.chat_id == chat_id and m.reply_to is None]

    def reply(self, chat_id: int, message_id: int) -> str | None:
        """The bot's answer to the chat's message `message_id`, once sent."""
        with self.changed:
            return next((m.text for m in self.messages if m.chat_id == chat_id and m.reply_to == message_id), None)

    def sends(self) -> list[Call]:
        with self.changed:
            return [c for c in self.calls if c.method == "sendMessage"]

    def polled(self) -> bool:
        """A client has started long polling (its start-up, dropping pending updates, is over)."""
        with self.changed:
            return any(c.method == "getUpdates" for c in self.calls)

    # -- the API ------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any] | None, str]:
        """(HTTP status, JSON body or None to drop the connection, outcome)."""
        if method == "getMe":
            return 200, ok(BOT_USER), "ok"
        if method == "deleteWebhook":
            if str(params.get("drop_pending_updates", "")).lower() == "true":
                with self.changed:
                    self.updates.clear()
            return 200, ok(True), "ok"
        if method == "setMyCommands":
            return 200, ok(True), "ok"
        if method == "getUpdates":
            return 200, ok(self.get_updates(int(params.get("offset") or 0), float(params.get("timeout") or 0))), "ok"
        if method == "sendMessage":
            replying = json.loads(params.get("reply_parameters") or "null")
            return self.send_message(int(params["chat_id"]), str(params["text"]),
                                     replying["message_id"] if replying else None)
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}, "unknown"

    def get_updates(self, offset: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + min(timeout, LONG_POLL_CAP)
        with self.changed:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]  # older ones are confirmed
            while not self.updates and (left := deadline - time.monotonic()) > 0:
                self.changed.wait(left)
            return list(self.updates)

    def send_message(self, chat_id: int, text: str, reply_to: int | None) -> tuple[int, dict[str, Any] | None, str]:
        with self.changed:
            scripted = self.script.popleft() if self.script else None
        match scripted:
            case Flood(retry_after):
                return 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after "
                             f"{retry_after}", "parameters": {"retry_after": retry_after}}, "Flood"
            case ServerError(status):
                return status, {"ok": False, "error_code": status, "description": "Internal Server Error"}, \
                    "ServerError"
            case Blocked(description):
                return 403, {"ok": False, "error_code": 403, "description": description}, "Blocked"
            case Drop():
                return 0, None, "Drop"
        message = self.accept(chat_id, text, reply_to)
        if isinstance(scripted, AcceptThen):
            scripted.hook()
        return 200, ok({"message_id": message.message_id, "date": int(time.time()), "text": text,
                        "chat": {"id": chat_id, "type": "private"}, "from": BOT_USER}), "ok"

    def accept(self, chat_id: int, text: str, reply_to: int | None) -> Message:
        with self.changed:
            message = Message(chat_id, text, len(self.messages) + 1, reply_to)
            self.messages.append(message)
            self.changed.notify_all()
            return message

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                params = parse_body(self.headers.get("Content-Type", ""), self.rfile.read(length))
                token, _, method = self.path.removeprefix("/bot").partition("/")
                if token != fake.token:
                    status, body, outcome = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, \
                        "Unauthorized"
                else:
                    status, body, outcome = fake.call(method, params)
                with fake.changed:
                    fake.calls.append(Call(method, params, time.monotonic(), outcome))
                    fake.changed.notify_all()
                if body is None:
                    self.close_connection = True
                    return
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client is gone (a killed sender): nobody to answer

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                pass  # the tests read `calls`; a line per request on stderr helps nobody

        return Handler


def ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(body)
    return {key: values[-1] for key, values in parse_qs(body.decode()).items()}


def wait_until(condition: Callable[[], Any], *, timeout: float = 20.0, what: str = "the condition") -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
