"""The river models' fast paths (`adapters.river_fast`) against river's own methods, exactly.

The reference is today's construction driven through river's public API (`OnlineClassifierPredictor`
calls the pipeline's and the tree's `learn_one` / `predict_proba_one`); the fast models must give the
same decisions (confidence floats to the bit) and leave the same state: the checkpoints' canonical
pickle of the river objects is compared, since `AgentRun.StateSaved` records its digest.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from river import linear_model, preprocessing, tree

from tradeledger.adapters import river_fast
from tradeledger.adapters.models import build_predictor
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.river_models import (
    MODEL_FEATURES,
    OnlineClassifierPredictor,
    RiverHoeffdingTree,
    RiverLogistic,
    _SeededNormal,
)
from tradeledger.adapters.services.checkpointing import Canonical, dumped
from tradeledger.domain.features import FeatureEngine, Features
from tradeledger.domain.predictors import Predictor, SmaCross
from tradeledger.domain.values import Decision, MemberPrediction, Prediction

CANDLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles"
SEED = 7


def features_of(name: str) -> list[Features]:
    engine = FeatureEngine()
    return [engine.update(candle) for candle in load_candles(CANDLES / name).candles]


def reference_logistic(seed: int) -> OnlineClassifierPredictor:
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression(initializer=_SeededNormal(seed))
    return OnlineClassifierPredictor("logistic", model, seed=seed)


def reference_tree(seed: int) -> OnlineClassifierPredictor:
    return OnlineClassifierPredictor("hoeffding_tree", tree.HoeffdingTreeClassifier(leaf_prediction="nb"), seed=seed)


def canonical(value: Any) -> bytes:
    return dumped(Canonical, value, {})


def assert_same_decision(ours: Decision, reference: Decision, at: int) -> None:
    assert ours == reference, at
    assert ours.confidence.hex() == reference.confidence.hex(), at
    for mine, theirs in zip(ours.members, reference.members, strict=True):
        assert mine.confidence.hex() == theirs.confidence.hex(), at


def assert_same_state(ours: OnlineClassifierPredictor, reference: OnlineClassifierPredictor, at: int) -> None:
    assert canonical(ours._model) == canonical(reference._model), at
    assert canonical(ours._previous) == canonical(reference._previous), at


CASES: list[tuple[str, type[OnlineClassifierPredictor], Callable[[int], OnlineClassifierPredictor]]] = [
    ("logistic", RiverLogistic, reference_logistic),
    ("hoeffding_tree", RiverHoeffdingTree, reference_tree),
]


@pytest.mark.parametrize("file", ["ETH_BTC-5m.csv", "ADA_BTC-5m.csv", "TRX_BTC-5m.csv", "XMR_BTC-5m.csv"])
@pytest.mark.parametrize(("name", "fast", "reference"), CASES, ids=[case[0] for case in CASES])
def test_fast_models_decide_and_learn_exactly_as_river(
    file: str, name: str, fast: type[OnlineClassifierPredictor], reference: Callable[[int], OnlineClassifierPredictor]
) -> None:
    ours, theirs = fast(SEED), reference(SEED)
    assert (ours.name, ours.version) == (theirs.name, theirs.version) == (name, theirs.version)
    for at, features in enumerate(features_of(file)):
        assert_same_decision(ours.on_candle(features), theirs.on_candle(features), at)
        if at % 1000 == 0:
            assert_same_state(ours, theirs, at)
    assert_same_state(ours, theirs, at)


@pytest.mark.parametrize(("name", "fast", "reference"), CASES, ids=[case[0] for case in CASES])
def test_a_fast_model_restored_from_a_pickle_goes_on_exactly_as_river(
    name: str, fast: type[OnlineClassifierPredictor], reference: Callable[[int], OnlineClassifierPredictor]
) -> None:
    """As a restart from a checkpoint: pickled mid-run, loaded, fed the rest."""
    features = features_of("LTC_BTC-5m.csv")
    ours, theirs = fast(SEED), reference(SEED)
    for at, f in enumerate(features[:2500]):
        assert_same_decision(ours.on_candle(f), theirs.on_candle(f), at)
    ours = pickle.loads(pickle.dumps(ours, protocol=5))
    assert list(vars(ours)) == list(vars(theirs)) + (["_path"] if name == "hoeffding_tree" else [])
    assert list(ours.__getstate__()) == list(vars(theirs))  # a checkpoint holds what it held before
    for at, f in enumerate(features[2500:], start=2500):
        assert_same_decision(ours.on_candle(f), theirs.on_candle(f), at)
    assert_same_state(ours, theirs, len(features))


def reference_vote(members: Sequence[MemberPrediction]) -> tuple[Prediction, float]:
    """`domain.predictors.vote` as it was written before it was tuned."""
    up = sum(m.confidence for m in members if m.prediction is Prediction.UP)
    down = sum(m.confidence for m in members if m.prediction is Prediction.DOWN)
    if up == down:
        return Prediction.HOLD, 0.0
    return (Prediction.UP if up > down else Prediction.DOWN), abs(up - down) / len(members)


def test_the_default_ensemble_decides_exactly_as_its_members_through_river() -> None:
    ensemble = build_predictor("ensemble", seed=SEED, fast=10, slow=20)
    members: list[Predictor] = [reference_logistic(SEED), reference_tree(SEED), SmaCross(10, 20)]
    for at, features in enumerate(features_of("ETH_BTC-5m.csv")):
        decisions = [member.on_candle(features) for member in members]
        votes = tuple(MemberPrediction(name=m.name, prediction=d.prediction, confidence=d.confidence)
                      for m, d in zip(members, decisions))
        prediction, confidence = reference_vote(votes)
        expected = Decision(prediction=prediction, confidence=confidence, model_name=ensemble.name,
                            model_version=ensemble.version, members=votes)
        assert_same_decision(ensemble.on_candle(features), expected, at)


def test_the_fast_tree_hands_unusual_inputs_to_river() -> None:
    """Features missing at random (a branch on an absent one, splitters created late): river's own code."""
    rng = random.Random(3)
    ours, theirs = (tree.HoeffdingTreeClassifier(leaf_prediction="nb") for _ in range(2))
    river_fast.check_tree(ours)
    for at in range(4000):
        x = {name: rng.gauss(0.0, 1.0) for name in MODEL_FEATURES if rng.random() > 0.1}
        y = x.get("return_1", 0.0) + 0.5 * x.get("rsi", 0.0) > 0
        got, want = river_fast.tree_proba(ours, x, river_fast.tree_path(ours, x)), theirs.predict_proba_one(x)
        assert {k: got.get(k, 0.0).hex() for k in want} == {k: v.hex() for k, v in want.items()}, at
        river_fast.tree_learn_one(ours, x, y, river_fast.tree_path(ours, x))
        theirs.learn_one(x, y)
    assert ours.n_nodes == theirs.n_nodes > 1
    assert canonical(ours) == canonical(theirs)


def test_the_fast_paths_refuse_configurations_they_do_not_replicate() -> None:
    with pytest.raises(TypeError):
        river_fast.check_tree(tree.HoeffdingTreeClassifier())  # adaptive naive Bayes leaves
    with pytest.raises(TypeError):
        river_fast.check_logistic(preprocessing.StandardScaler() | linear_model.LogisticRegression(l2=0.1))
