"""Debian's chromium, headless, driven over the DevTools protocol with the `websockets` package.

No downloaded browsers and no browser driver: the test talks CDP JSON over one WebSocket to a
page target (flat sessions), and collects the page's uncaught exceptions and console errors.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0", "--window-size=1400,1100"]
DEVTOOLS = re.compile(rb"DevTools listening on (ws://\S+)")
POLL_SECONDS = 0.1
LOAD_DEADLINE = 60


class Page:
    def __init__(self, socket: ClientConnection, session: str) -> None:
        self.socket = socket
        self.session = session
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.errors: list[str] = []

    async def send(self, method: str, **params: Any) -> Any:
        command_id = next(self.ids)
        reply = self.pending[command_id] = asyncio.get_running_loop().create_future()
        try:
            await self.socket.send(json.dumps({"id": command_id, "sessionId": self.session, "method": method,
                                               "params": params}))
            return await reply
        finally:
            del self.pending[command_id]

    async def dispatch(self) -> None:
        async for raw in self.socket:
            message = json.loads(raw)
            if "id" in message and message["id"] in self.pending:
                future = self.pending[message["id"]]
                if "error" in message:
                    future.set_exception(RuntimeError(f"CDP error: {message['error']}"))
                else:
                    future.set_result(message.get("result"))
            elif message.get("method") == "Runtime.exceptionThrown":
                self.errors.append(json.dumps(message["params"]["exceptionDetails"])[:2000])
            elif message.get("method") == "Runtime.consoleAPICalled" and message["params"]["type"] == "error":
                self.errors.append(json.dumps(message["params"]["args"])[:2000])

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, deadline: float, what: str) -> Any:
        """Poll a JS expression until it is truthy; fail naming `what` after `deadline` seconds."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + deadline
        while not (value := await self.evaluate(expression)):
            if loop.time() > give_up:
                raise AssertionError(f"the dashboard never showed {what} ({expression!r} stayed falsy); "
                                     f"page errors: {self.errors}")
            await asyncio.sleep(POLL_SECONDS)
        return value

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@asynccontextmanager
async def open_page(url: str) -> AsyncIterator[Page]:
    """A fresh headless chromium (own profile) showing `url`, with error collection on from the start."""
    assert CHROMIUM is not None
    # Chromium's helper processes may still be writing the profile as it exits: ignore that at cleanup.
    with tempfile.TemporaryDirectory(prefix="tradeledger-chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            browser_url = await asyncio.to_thread(_devtools_url, process)
            async with connect(browser_url, max_size=64 * 1024 * 1024) as socket:
                page = await _attach(socket)
                dispatcher = asyncio.create_task(page.dispatch())
                try:
                    await page.send("Runtime.enable")
                    await page.send("Page.enable")
                    await page.send("Page.navigate", url=url)
                    await page.wait_for("location.href !== 'about:blank' && document.readyState === 'complete'",
                                        LOAD_DEADLINE, "the loaded page")
                    yield page
                finally:
                    dispatcher.cancel()
        finally:
            process.terminate()
            process.wait()


def _devtools_url(process: subprocess.Popen[bytes]) -> str:
    """The browser's DevTools URL from its stderr, which is then drained: a full pipe would stall chromium."""
    assert process.stderr is not None
    stderr = process.stderr
    for line in stderr:
        match = DEVTOOLS.search(line)
        if match:
            threading.Thread(target=stderr.read, daemon=True).start()
            return match.group(1).decode()
    raise RuntimeError(f"chromium exited ({process.wait()}) without opening DevTools")


async def _attach(socket: ClientConnection) -> Page:
    async def call(command_id: int, method: str, **params: Any) -> Any:
        await socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while (reply := json.loads(await socket.recv())).get("id") != command_id:
            pass
        return reply["result"]

    targets = await call(1, "Target.getTargets")
    page = next(t for t in targets["targetInfos"] if t["type"] == "page")
    attached = await call(2, "Target.attachToTarget", targetId=page["targetId"], flatten=True)
    return Page(socket, attached["sessionId"])

