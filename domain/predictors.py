"""The one predictor protocol, the rule-based SMA cross and the ensemble.

Contract of `Predictor.on_candle`: it is called exactly once per candle, in
time order, with that candle's `Features`. An online model first learns from
the previous candle's features with the label "this candle's return_1 > 0"
(up) and then predicts the next move from the current features. Given its
seed and the candle sequence a predictor is fully deterministic: no clock, no
global random state. `version` changes whenever the same inputs could give a
different decision, so a recorded signal names exactly what produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.features import Features
from tradeledger.domain.values import Decision, MemberPrediction, Prediction


class Predictor(Protocol):
    name: str
    version: str
    features_used: tuple[str, ...]

    def on_candle(self, features: Features) -> Decision: ...


class SmaCross:
    """`up` on the candle where the fast SMA crosses above the slow one, `down` on the opposite cross.

    Precisely: up when fast[t-1] < slow[t-1] and fast[t] > slow[t]; down when
    fast[t-1] > slow[t-1] and fast[t] < slow[t]; otherwise (and before the
    features are ready) hold. Confidence is 1.0 on a cross, 0.0 on hold. The
    SMAs come from the features, so feed it a `FeatureEngine(fast, slow)`
    built with the same lengths; they are part of `version` for that reason.
    """

    name = "sma_cross"
    features_used = ("sma_fast", "sma_slow", "prev_sma_fast", "prev_sma_slow")

    def __init__(self, fast: int = 10, slow: int = 20) -> None:
        if not 1 <= fast < slow:
            raise InvalidValue("fast", fast, f"expected 1 <= fast < slow ({slow})")
        self.fast = fast
        self.slow = slow
        self.version = f"1(fast={fast},slow={slow})"
        # Decisions are immutable and there are only three: build them once.
        self._decisions = {
            prediction: Decision(
                prediction=prediction,
                confidence=0.0 if prediction is Prediction.HOLD else 1.0,
                model_name=self.name,
                model_version=self.version,
            )
            for prediction in Prediction
        }

    def on_candle(self, features: Features) -> Decision:
        return self._decisions[self._cross(features)]

    @staticmethod
    def _cross(features: Features) -> Prediction:
        if not features.ready:
            return Prediction.HOLD
        values = features.values
        fast, slow = values["sma_fast"], values["sma_slow"]
        prev_fast, prev_slow = values["prev_sma_fast"], values["prev_sma_slow"]
        if prev_fast < prev_slow and fast > slow:
            return Prediction.UP
        if prev_fast > prev_slow and fast < slow:
            return Prediction.DOWN
        return Prediction.HOLD


def vote(members: Sequence[MemberPrediction]) -> tuple[Prediction, float]:
    """Confidence-weighted vote.

    Each member votes for its prediction with its confidence as the weight; a
    hold abstains. The side with the larger total wins; equal totals
    (including no votes at all) give hold with confidence 0. The confidence is
    (winner total - loser total) / number of members: 1.0 only when every
    member votes the same way with full confidence, lowered by disagreement
    and by abstention.
    """
    up = sum([m.confidence for m in members if m.prediction is Prediction.UP])
    down = sum([m.confidence for m in members if m.prediction is Prediction.DOWN])
    if up == down:
        return Prediction.HOLD, 0.0
    winner = Prediction.UP if up > down else Prediction.DOWN
    return winner, abs(up - down) / len(members)


class Ensemble:
    """Asks every member on every candle (so each keeps learning) and combines them with `vote`."""

    def __init__(self, members: Sequence[Predictor], name: str = "ensemble") -> None:
        names = [member.name for member in members]
        if not names:
            raise InvalidValue("members", names, "an ensemble needs at least one member")
        if len(set(names)) != len(names):
            raise InvalidValue("members", names, "member names must be unique")
        self.members = tuple(members)
        self.name = name
        self.version = ",".join(f"{member.name}:{member.version}" for member in self.members)
        self.features_used = tuple(
            dict.fromkeys(feature for member in self.members for feature in member.features_used)
        )

    def on_candle(self, features: Features) -> Decision:
        votes = []  # a loop, not generators: this runs for every candle of a backtest
        for member in self.members:
            decision = member.on_candle(features)
            votes.append(
                MemberPrediction(name=member.name, prediction=decision.prediction, confidence=decision.confidence)
            )
        prediction, confidence = vote(votes)
        return Decision(
            prediction=prediction,
            confidence=confidence,
            model_name=self.name,
            model_version=self.version,
            members=tuple(votes),
        )
