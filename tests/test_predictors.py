"""Predictors: the SMA cross definition, river determinism, the ensemble vote, the factory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import fmean

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.models import PREDICTOR_NAMES, build_predictor
from tradeledger.adapters.river_models import OnlineClassifierPredictor, RiverHoeffdingTree, RiverLogistic
from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.features import FeatureEngine, Features
from tradeledger.domain.predictors import Ensemble, Predictor, SmaCross
from tradeledger.domain.values import Candle, Decision, MemberPrediction, Prediction

CANDLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles"


@pytest.fixture(scope="module")
def eth_features() -> list[Features]:
    engine = FeatureEngine()
    return [engine.update(candle) for candle in load_candles(CANDLES / "ETH_BTC-5m.csv").candles]


def decide(predictor: Predictor, features: list[Features]) -> list[Decision]:
    return [predictor.on_candle(f) for f in features]


def flat_candles(closes: list[Decimal]) -> list[Candle]:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    return [
        Candle(symbol="HYP/USD", timeframe="1m", open_time=start + timedelta(minutes=i),
               open=c, high=c, low=c, close=c, volume=Decimal(1))  # fmt: skip
        for i, c in enumerate(closes)
    ]


@st.composite
def closes_and_lengths(draw: st.DrawFn) -> tuple[list[Decimal], int, int]:
    fast = draw(st.integers(min_value=1, max_value=8))
    slow = draw(st.integers(min_value=fast + 1, max_value=25))
    close = Decimal(draw(st.integers(min_value=1, max_value=10**6))) / 1000
    closes = [close]
    # Basis-point moves, each followed by a flat stretch: with equal SMAs a sloppy
    # rule (<= for <) or a rounding-noisy SMA would fake crosses.
    segments = st.tuples(st.integers(min_value=-300, max_value=300), st.integers(min_value=0, max_value=30))
    for move, flat in draw(st.lists(segments, min_size=1, max_size=40)):
        close = max(Decimal("0.001"), (close * (1 + Decimal(move) / 10_000)).quantize(Decimal("0.001")))
        closes.extend([close] * (1 + flat))
    return closes, fast, slow


@settings(max_examples=200, deadline=None)
@given(closes_and_lengths())
def test_sma_cross_signals_exactly_the_crossovers(case: tuple[list[Decimal], int, int]) -> None:
    closes, fast, slow = case
    engine = FeatureEngine(fast=fast, slow=slow)
    decisions = [SmaCross(fast, slow).on_candle(engine.update(c)) for c in flat_candles(closes)]
    prices = [float(c) for c in closes]

    def sma(length: int, t: int) -> float:
        return fmean(prices[t - length + 1 : t + 1])

    for t, decision in enumerate(decisions):
        expected = Prediction.HOLD
        if t >= engine.warmup - 1:
            before, now = (sma(fast, t - 1), sma(slow, t - 1)), (sma(fast, t), sma(slow, t))
            if before[0] < before[1] and now[0] > now[1]:
                expected = Prediction.UP
            elif before[0] > before[1] and now[0] < now[1]:
                expected = Prediction.DOWN
        assert decision.prediction is expected, t
        assert decision.confidence == (0.0 if expected is Prediction.HOLD else 1.0)


def test_sma_cross_on_the_real_file_signals_and_alternates(eth_features: list[Features]) -> None:
    crosses = [d.prediction for d in decide(SmaCross(), eth_features) if d.prediction is not Prediction.HOLD]
    assert len(crosses) > 100
    assert all(a is not b for a, b in zip(crosses, crosses[1:]))  # an up cross is always followed by a down


@pytest.mark.parametrize("model", [RiverLogistic, RiverHoeffdingTree])
def test_river_models_are_deterministic_per_seed(model: type, eth_features: list[Features]) -> None:
    first, second = decide(model(seed=3), eth_features), decide(model(seed=3), eth_features)
    assert first == second
    assert {d.prediction for d in first} == set(Prediction)
    assert all(d.prediction is Prediction.HOLD for d in first[: FeatureEngine().warmup - 1])
    moves = [d.confidence for d in first if d.prediction is not Prediction.HOLD]
    assert 0.55 <= min(moves) and max(moves) <= 1.0  # the dead band keeps near-coin-flips out


def test_the_logistic_seed_matters(eth_features: list[Features]) -> None:
    assert decide(RiverLogistic(seed=3), eth_features) != decide(RiverLogistic(seed=4), eth_features)


class RecordingModel:
    """A river-shaped classifier that records the calls it gets and always says 70% up."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, float], bool | None]] = []

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        self.calls.append(("learn", x, y))

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        self.calls.append(("predict", x, None))
        return {True: 0.7, False: 0.3}


def test_online_models_learn_the_last_features_with_this_candles_move(eth_features: list[Features]) -> None:
    model = RecordingModel()
    predictor = OnlineClassifierPredictor("recording", model, seed=0)  # type: ignore[arg-type]
    ready_from = FeatureEngine().warmup - 1
    decisions = decide(predictor, eth_features[: ready_from + 3])
    assert [d.prediction for d in decisions[ready_from:]] == [Prediction.UP] * 3
    assert decisions[ready_from].confidence == pytest.approx(0.7)
    inputs = [{n: f.values[n] for n in predictor.features_used} for f in eth_features[ready_from:]]
    assert model.calls == [
        ("predict", inputs[0], None),
        ("learn", inputs[0], eth_features[ready_from + 1].values["return_1"] > 0),
        ("predict", inputs[1], None),
        ("learn", inputs[1], eth_features[ready_from + 2].values["return_1"] > 0),
        ("predict", inputs[2], None),
    ]


class Fixed:
    """A member that always answers the same."""

    def __init__(self, name: str, prediction: Prediction, confidence: float) -> None:
        self.name, self.version, self.features_used = name, "fixed", ("rsi",)
        self._decision = Decision(prediction=prediction, confidence=confidence, model_name=name, model_version="fixed")

    def on_candle(self, features: Features) -> Decision:
        return self._decision


UP, DOWN, HOLD = Prediction.UP, Prediction.DOWN, Prediction.HOLD


@pytest.mark.parametrize(
    ("votes", "expected", "confidence"),
    [
        ([(UP, 0.9), (DOWN, 0.6), (HOLD, 0.0)], UP, 0.1),
        ([(UP, 0.6), (DOWN, 0.7), (DOWN, 0.8)], DOWN, 0.3),
        ([(UP, 1.0), (UP, 1.0)], UP, 1.0),
        ([(UP, 0.7), (DOWN, 0.7), (HOLD, 0.0)], HOLD, 0.0),  # tie
        ([(HOLD, 0.0), (HOLD, 0.0)], HOLD, 0.0),
    ],
)
def test_ensemble_vote_is_confidence_weighted(
    votes: list[tuple[Prediction, float]], expected: Prediction, confidence: float, eth_features: list[Features]
) -> None:
    members = [Fixed(f"m{i}", p, c) for i, (p, c) in enumerate(votes)]
    decision = Ensemble(members, name="panel").on_candle(eth_features[100])
    assert (decision.prediction, decision.model_name) == (expected, "panel")
    assert decision.confidence == pytest.approx(confidence)
    recorded = tuple(MemberPrediction(name=f"m{i}", prediction=p, confidence=c) for i, (p, c) in enumerate(votes))
    assert decision.members == recorded


def test_default_ensemble_records_each_member_and_follows_its_rule(eth_features: list[Features]) -> None:
    ensemble = build_predictor("ensemble", seed=5, fast=10, slow=20)
    solo = [RiverLogistic(5), RiverHoeffdingTree(5), SmaCross(10, 20)]
    for features in eth_features:
        decision = ensemble.on_candle(features)
        alone = [member.on_candle(features) for member in solo]
        assert [(m.name, m.prediction, m.confidence) for m in decision.members] == [
            (d.model_name, d.prediction, d.confidence) for d in alone
        ]
        up = sum(d.confidence for d in alone if d.prediction is UP)
        down = sum(d.confidence for d in alone if d.prediction is DOWN)
        expected = UP if up > down else DOWN if down > up else HOLD
        assert decision.prediction is expected
        assert decision.confidence == pytest.approx(abs(up - down) / 3)
    assert all(f"{m.model_name}:{m.model_version}" in ensemble.version for m in alone)
    assert ensemble.features_used[:2] == ("return_1", "sma_gap") and "sma_fast" in ensemble.features_used


def test_ensemble_refuses_unusable_members() -> None:
    with pytest.raises(InvalidValue, match="at least one"):
        Ensemble([])
    with pytest.raises(InvalidValue, match="unique") as caught:
        Ensemble([SmaCross(), SmaCross(5, 30)])
    assert caught.value.field == "members"


@pytest.mark.parametrize("name", PREDICTOR_NAMES)
def test_build_predictor_builds_every_name(name: str) -> None:
    assert build_predictor(name, seed=1, fast=5, slow=30).name == name


def test_build_predictor_passes_the_sma_lengths() -> None:
    predictor = build_predictor("sma_cross", seed=1, fast=5, slow=30)
    assert isinstance(predictor, SmaCross) and (predictor.fast, predictor.slow) == (5, 30)


def test_unknown_predictor_names_the_field_and_the_choices() -> None:
    with pytest.raises(InvalidValue) as caught:
        build_predictor("random_forest", seed=1, fast=10, slow=20)
    assert caught.value.field == "predictor.name" and caught.value.value == "random_forest"
    assert "sma_cross" in str(caught.value) and "ensemble" in str(caught.value)


def test_sma_cross_refuses_inverted_lengths() -> None:
    with pytest.raises(InvalidValue) as caught:
        SmaCross(fast=20, slow=10)
    assert caught.value.field == "fast"
