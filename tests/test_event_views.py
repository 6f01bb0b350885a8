"""A fold that reads a few fields of an event gets them from the stored payload alone (`event_view`).

The scoreboard (projections/models.py) reads five fields of every signal; decoding all of them (the
features are most of the payload) was half of a rebuild's cost. It must give the same rows as the full
event, and never decode a signal in full.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tradeledger.adapters import eventlog
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import open_store
from tradeledger.domain.market import Market
from tradeledger.projections.fold import Recorded
from tradeledger.projections.models import MODELS_PROJECTION, ModelsFold
from tradeledger.projections.replay import ReadModels
from tests.builders import one_of_each


def stored_page(url: str) -> list[Recorded]:
    upgrade(url)
    store, engine = open_store(url), create_db_engine(url)
    try:
        store.append([e for aggregate in one_of_each() for e in aggregate.collect_events()])
        return EventLog(store, engine).read(0, 1000)
    finally:
        engine.dispose()
        store.close()


def scoreboard(page: list[Recorded]) -> dict[str, list[Any]]:
    models = ReadModels((MODELS_PROJECTION,))
    models.apply(page)
    return {table.name: sorted(map(repr, models.tables.rows(table))) for table in MODELS_PROJECTION.tables}


def test_the_scoreboard_never_decodes_a_signal_in_full(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: Counter[str] = Counter()
    full = eventlog.decode

    def counting(topic: str, *rest: Any) -> Any:
        decoded[topic.rsplit(".", 1)[-1]] += 1
        return full(topic, *rest)

    monkeypatch.setattr(eventlog, "decode", counting)
    page = stored_page(sqlite_url)
    assert any(r.type is Market.SignalGenerated for r in page)
    scoreboard(page)
    assert decoded["SignalGenerated"] == 0 and decoded["CandleClosed"] > 0


def test_the_view_gives_the_rows_the_full_event_gives(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_views = scoreboard(stored_page(sqlite_url))
    monkeypatch.setattr(ModelsFold, "views", {})
    assert scoreboard(stored_page(sqlite_url.replace("ledger.sqlite", "again.sqlite"))) == with_views
    assert any(with_views.values())


def test_a_view_of_a_decoded_or_in_memory_event_is_read_from_the_event(sqlite_url: str) -> None:
    view_type = ModelsFold.views[Market.SignalGenerated]
    signal = next(r for r in stored_page(sqlite_url) if r.type is Market.SignalGenerated)
    from_payload = signal.view(view_type)
    assert signal.event.model_name == "ensemble"  # decoded now: the next view is read from the event
    from_event = signal.view(view_type)
    in_memory = Recorded(signal.position, signal.event).view(view_type)
    assert from_payload == from_event == in_memory
    assert from_payload.originator_id == signal.stream and from_payload.model_name == "ensemble"
