"""Every event type round-trips through the real stores with its exact types; appends are chained."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.persistence import IntegrityError
from hypothesis import given, settings, strategies as st

from tradeledger.adapters.database import create_db_engine
from tradeledger.adapters.eventlog import EVENT_TYPES, EventLog
from tradeledger.adapters.services.audit import verify_log
from tradeledger.adapters.eventstore import ChainedMapper, LedgerStore, chain_digest, split_state, store_environment
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tests.builders import START, one_of_each
from tradeledger.domain.values import Candle, Decision, MemberPrediction, Prediction, Side

def test_every_event_type_round_trips_with_its_types(store: LedgerStore) -> None:
    aggregates = one_of_each()
    pending = [e for a in aggregates for e in a.pending_events]
    assert {type(e).__name__ for e in pending} == set(EVENT_TYPES)
    store.save(*aggregates)

    for aggregate in aggregates:
        stored = list(store.events.get(aggregate.id))
        originals = [e for e in pending if e.originator_id == aggregate.id]
        assert [vars(e) for e in stored] == [vars(e) for e in originals]
        for before, after in zip(originals, stored):
            assert {k: type(v) for k, v in vars(after).items()} == {k: type(v) for k, v in vars(before).items()}
        reloaded = store.repository.get(aggregate.id)
        assert vars(reloaded) == vars(aggregate)


def test_str_enums_and_nested_values_keep_their_types(store: LedgerStore) -> None:
    account, market, *_ = one_of_each()
    store.save(account, market)
    signal = list(store.events.get(market.id))[-1]
    assert type(signal.prediction) is Prediction
    assert type(signal.individual_predictions[0]) is MemberPrediction
    assert type(signal.individual_predictions[0].prediction) is Prediction
    filled = [e for e in store.events.get(account.id) if isinstance(e, Account.OrderFilled)][0]
    assert type(filled.side) is Side and filled.journal[0].amount == Decimal("0.100000000000")
    assert filled.filled_at.tzinfo is not None and filled.filled_at.utcoffset() == timedelta(0)


def test_a_zoneinfo_time_is_stored_as_utc(store: LedgerStore) -> None:
    local = datetime(2024, 3, 1, 13, tzinfo=ZoneInfo("Europe/Berlin"))
    account = Account.open("paper", "BTC", Decimal(1), at=local)
    store.save(account)
    [opened] = store.events.get(account.id)
    assert opened.timestamp == local and opened.timestamp.tzinfo == timezone.utc


@settings(max_examples=60, deadline=None)
@given(amount=st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e9"), allow_nan=False, places=12),
       confidence=st.floats(min_value=0, max_value=1, allow_nan=False))
def test_decimals_and_floats_survive_the_codec_exactly(amount: Decimal, confidence: float) -> None:
    account = Account.open("x", "BTC", amount, at=START)
    [opened] = account.collect_events()
    stored = ChainedMapper().to_stored_event(opened)
    decoded = ChainedMapper.decode(stored.topic, stored.originator_id, 1, stored.state)
    assert decoded.initial_balance == opened.initial_balance
    assert str(decoded.initial_balance) == str(opened.initial_balance)
    decision = MemberPrediction(name="m", prediction=Prediction.UP, confidence=confidence)
    market = Market.list("A/B", "1m", at=START)
    market.close_candle(Candle(symbol="A/B", timeframe="1m", open_time=START, open=Decimal(1), high=Decimal(1),
                               low=Decimal(1), close=Decimal(1), volume=Decimal(0)))
    market.generate_signal(Decision(prediction=Prediction.UP, confidence=confidence, model_name="m",
                                    model_version="1", members=(decision,)),
                           is_actionable=False, data_quality=1.0, features_used=(), feature_values={})
    signal = market.collect_events()[-1]
    stored = ChainedMapper().to_stored_event(signal)
    assert ChainedMapper.decode(stored.topic, stored.originator_id, 3, stored.state).confidence == confidence


def test_each_event_is_chained_to_its_predecessor(store: LedgerStore) -> None:
    aggregates = one_of_each()
    store.save(*aggregates)
    previous: dict[UUID, bytes] = {}
    notifications = store.recorder.select_notifications(start=0, limit=1000, inclusive_of_start=False)
    assert notifications
    for n in notifications:
        digest, payload = split_state(n.state)
        expected = chain_digest(previous.get(n.originator_id, bytes(32)), n.originator_id, n.originator_version,
                                n.topic, payload)
        assert digest == expected
        previous[n.originator_id] = digest


def test_a_conflicting_append_is_refused_and_the_retry_chains_correctly(store: LedgerStore, store_url: str) -> None:
    account = Account.open("paper", "BTC", Decimal(1), at=START)
    store.save(account)
    other = LedgerStore(env=store_environment(store_url))
    try:
        theirs = other.repository.get(account.id)
        theirs.halt_trading(rule="manual", reason="api", metrics={}, by="api", at=START)
        other.save(theirs)
        account.place_order("ETH/BTC", Side.BUY, Decimal(1), at=START)
        with pytest.raises(IntegrityError):
            store.save(account)
        reloaded = store.repository.get(account.id)
        assert reloaded.is_halted
        reloaded.resume_trading(by="agent", reason="retry", at=START)
        store.save(reloaded)
    finally:
        other.close()
    engine = create_db_engine(store_url)
    try:
        assert verify_log(EventLog(store, engine)).ok
    finally:
        engine.dispose()


def test_an_append_with_versions_out_of_order_is_refused(store: LedgerStore) -> None:
    account = Account.open("paper", "BTC", Decimal(1), at=START)
    account.halt_trading(rule="manual", reason="r", metrics={}, by="api", at=START)
    account.resume_trading(by="api", reason="r", at=START)
    opened, halted, resumed = account.collect_events()
    with pytest.raises(ValueError, match="version 3 does not follow the stored version None"):
        store.append([opened, resumed, halted])
    assert store.head_position() == 0, "nothing of the refused append is stored"
    store.append([opened, halted, resumed])
    assert store.repository.get(account.id).version == 3
