"""Text that reaches the log is checked at the boundary: control characters and oversize text are refused.

The reported failure: `POST /api/control/resume {"reason": "nul\\u0000here"}` on
PostgreSQL was recorded, and every read model then stopped on it for good. Both
boundaries that take free text (the API's control reasons, Telegram messages)
refuse such input with a message naming the field, record nothing, and the read
models keep advancing. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tradeledger.adapters import eventlog
from tradeledger.adapters.composition import Composition
from tradeledger.domain.account import Account
from tradeledger.domain.text import MAX_PEER, MAX_REASON, InvalidText, recordable
from tradeledger.settings import SettingsError, load_settings
from tests.composing import composed
from tests.apisupport import TOKEN, api_settings, project, serving, trade
from tests.fakebotapi import FakeBotApi, wait_until
from tests.telegram_support import CHAT, STRANGER, container, fake, running_bot  # noqa: F401 - fixtures
from tests.wssupport import ws_url

AUTH = {"Authorization": f"Bearer {TOKEN}"}
# NUL (what PostgreSQL refuses), an escape sequence, a carriage return, backspace, DEL and a C1 control.
REFUSED = {"nul\u0000here": "U+0000", "red \u001b[31malert": "U+001B", "over\rwritten": "U+000D",
           "back\u0008space": "U+0008", "del\u007f": "U+007F", "next line\u0085": "U+0085"}
ACCEPTED = "maintenance:\tdatabase move\nback at 10:00 (ünïcödé ✓)"


def read_models_at_head(container: Composition) -> None:
    """Every projection has applied the whole log, and none has stopped on an error."""
    project(container)
    report = container.health.report()
    head = container.store.head_position()
    assert [(p.name, p.position, p.error) for p in report.projections] == [
        (p.name, head, None) for p in report.projections]


def test_the_validator_names_the_field_and_the_character() -> None:
    assert recordable("reason", ACCEPTED, max_length=100) == ACCEPTED
    with pytest.raises(InvalidText, match=r"^reason: control character U\+0000 at character 4 "):
        recordable("reason", "nul\u0000here", max_length=100)
    with pytest.raises(InvalidText, match=r"U\+D800"):  # a lone surrogate cannot be stored as UTF-8
        recordable("reason", "half \ud800 a pair", max_length=100)
    with pytest.raises(InvalidText, match="at most 5 characters are accepted, got 6"):
        recordable("reason", "x" * 6, max_length=5)


@pytest.fixture
def api(store_url: str) -> Iterator[tuple[Composition, httpx.Client]]:
    with composed(api_settings(store_url)) as built:
        trade(built, 30)
        project(built)
        with serving(built) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            yield built, http


def test_api_refuses_control_characters_in_a_reason_and_records_nothing(
        api: tuple[Composition, httpx.Client]) -> None:
    container, http = api
    assert http.post("/api/control/halt", json={"reason": "before"}).status_code == 200
    head = container.store.head_position()
    for reason, character in REFUSED.items():
        for action in ("resume", "halt"):
            response = http.post(f"/api/control/{action}", json={"reason": reason})
            assert response.status_code == 400, (reason, response.text)
            body = response.json()
            assert body["field"] == "reason" and body["detail"].startswith(f"reason: control character {character}")
    too_long = http.post("/api/control/resume", json={"reason": "x" * (MAX_REASON + 1)})
    assert too_long.status_code == 400 and too_long.json()["field"] == "reason"
    assert container.store.head_position() == head, "nothing was appended"
    resumed = http.post("/api/control/resume", json={"reason": ACCEPTED})
    assert resumed.status_code == 200, resumed.text
    trade(container, 30, skip=30)
    read_models_at_head(container)
    (recorded,) = [e for e in eventlog.audit_page(container.feed, types=["TradingResumed"]) if e.data["by"] == "api"]
    assert recorded.data["reason"] == ACCEPTED


def test_a_websocket_whose_peer_address_cannot_be_recorded_is_refused(sqlite_url: str) -> None:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: the client then names its own address."""
    with composed(api_settings(sqlite_url)) as built, serving(built) as url:
        head = built.store.head_position()

        async def refused() -> int | None:
            async with connect(ws_url(url), additional_headers={"X-Forwarded-For": "h" * MAX_PEER}) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                return closed.value.rcvd.code if closed.value.rcvd else None

        assert asyncio.run(refused()) == 1008
        assert built.store.head_position() == head, "no session was recorded"


def test_telegram_refuses_control_characters_and_records_nothing(container: Composition, fake: FakeBotApi) -> None:
    container.store.save(Account.open("paper", "BTC", Decimal(1), at=datetime.now(timezone.utc)))
    head = container.store.head_position()
    sent = {f"/halt {reason}": character for reason, character in REFUSED.items()}
    sent |= {"/sta\u0000tus": "U+0000", "/resume half \ud800 a pair": "U+D800"}
    with running_bot(container, fake):
        started = container.store.head_position()  # the bot's Gateway and its chat sessions
        replies = {text: reply_to(fake, CHAT, text) for text in sent}
        stranger = reply_to(fake, STRANGER, "/halt \u0000")
        too_long = reply_to(fake, CHAT, "/halt " + "x" * (MAX_REASON + 1))
        assert container.store.head_position() == started, "nothing was appended, not even a refusal"
        halted = reply_to(fake, CHAT, f"/halt {ACCEPTED}")
    for text, character in sent.items():
        assert replies[text].startswith(f"refused, nothing was done: message: control character {character} at "), \
            (text, replies[text])
    assert stranger.startswith("refused, nothing was done: message: control character U+0000")
    assert too_long == (f"refused, nothing was done: reason: at most {MAX_REASON} characters are accepted, "
                        f"got {MAX_REASON + 1}")
    assert halted.startswith("trading halted: no new entries")
    assert head < started
    read_models_at_head(container)
    (recorded,) = eventlog.audit_page(container.feed, types=["TradingHalted"])
    assert recorded.data["reason"] == " ".join(ACCEPTED.split())  # the command's words, as Telegram splits them


def reply_to(fake: FakeBotApi, chat: int, text: str) -> str:
    message_id = fake.send_command(chat, text)
    reply: str = wait_until(lambda: fake.reply(chat, message_id), what=f"the reply to {text!r}")
    return reply


def test_text_settings_that_would_be_recorded_refuse_control_characters() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(overrides={"trading.account": "pa\u0000per", "trading.symbols": "ETH/BTC,\u001b[1m"},
                      environ={})
    assert [issue.key for issue in refused.value.errors] == ["trading.account", "trading.symbols"]
