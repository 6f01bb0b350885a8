"""Online river predictors behind the domain `Predictor` protocol (built by `adapters.models`).

Each model follows the protocol's learn-then-predict order: on every candle it
first learns from the previous candle's features with the label "this
candle's return_1 > 0", then predicts from the current features. It predicts
the more probable direction with its probability as the confidence, and hold
(confidence 0) while the features are not ready or while that probability is
within `dead_band` of 0.5. Nothing here reads a clock or a global random state,
so a model is reproducible from its seed and the candle sequence.

The models see only scale-free features: raw SMA levels would make an online
linear model chase the price level instead of the move. `log_return_1` is
left out too: it orders candles exactly as `return_1` does, so a tree gains
nothing from it and naive Bayes leaves would count the same evidence twice.
"""

from __future__ import annotations

import random
from typing import Any

import river
from river import linear_model, optim, preprocessing, tree
from river.base import Classifier

from tradeledger.adapters import river_fast
from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.features import Features
from tradeledger.domain.values import Decision, Prediction

MODEL_FEATURES: tuple[str, ...] = (
    "return_1",
    "sma_gap",
    "mean_return",
    "std_return",
    "rsi",
    "volume_z",
    "range_pct",
)

DEFAULT_DEAD_BAND = 0.05


class _SeededNormal(optim.base.Initializer):
    """Small random initial weights from a private `random.Random(seed)`.

    river's own Normal initializer returns numpy scalars, which would make
    every later weight update numpy arithmetic; plain floats stay fast.
    """

    def __init__(self, seed: int, sigma: float = 0.01) -> None:
        self.seed = seed
        self.sigma = sigma
        self._rng = random.Random(seed)

    def __call__(self, shape: int = 1) -> float:
        return self._rng.gauss(0.0, self.sigma)


class OnlineClassifierPredictor:
    """Adapts any river binary classifier to the `Predictor` protocol."""

    features_used = MODEL_FEATURES

    def __init__(self, name: str, model: Classifier, *, seed: int, dead_band: float = DEFAULT_DEAD_BAND) -> None:
        if not 0.0 <= dead_band < 0.5:
            raise InvalidValue("dead_band", dead_band, "expected 0 <= dead_band < 0.5")
        self.name = name
        self.version = f"1(seed={seed},dead_band={dead_band},river={river.__version__})"
        self.dead_band = dead_band
        self._model = model
        self._previous: dict[str, float] | None = None
        self._hold = Decision(
            prediction=Prediction.HOLD, confidence=0.0, model_name=name, model_version=self.version
        )

    def on_candle(self, features: Features) -> Decision:
        values = features.values
        learnt = None
        if self._previous is not None:
            learnt = self._learn(self._previous, values["return_1"] > 0)
        if not features.ready:
            return self._hold
        x = {name: values[name] for name in self.features_used}
        self._previous = x
        return self._decide(self._proba(x, learnt))

    def _learn(self, x: dict[str, float], y: bool) -> Any:
        """Learn (x, y); what it returns is given to the `_proba` that follows."""
        self._model.learn_one(x, y)

    def _proba(self, x: dict[str, float], learnt: Any) -> dict[bool, float]:
        """The model's probabilities of x (labels it does not give read as 0.0)."""
        return self._model.predict_proba_one(x)

    def _decide(self, proba: dict[bool, float]) -> Decision:
        up, down = proba.get(True, 0.0), proba.get(False, 0.0)
        # An untrained tree answers {} and a one-class one {True: 1.0}: normalise before comparing.
        p_up = up / (up + down) if up + down > 0 else 0.5
        if abs(p_up - 0.5) < self.dead_band:
            return self._hold
        prediction = Prediction.UP if p_up > 0.5 else Prediction.DOWN
        return Decision(
            prediction=prediction,
            confidence=max(p_up, 1.0 - p_up),
            model_name=self.name,
            model_version=self.version,
        )


class RiverLogistic(OnlineClassifierPredictor):
    """`StandardScaler | LogisticRegression`; the seed draws the small initial weights.

    Learns and predicts through `river_fast` (river's arithmetic without the pipeline's overhead).
    """

    def __init__(self, seed: int, dead_band: float = DEFAULT_DEAD_BAND) -> None:
        model = preprocessing.StandardScaler() | linear_model.LogisticRegression(
            initializer=_SeededNormal(seed)
        )
        river_fast.check_logistic(model)
        super().__init__("logistic", model, seed=seed, dead_band=dead_band)

    def _learn(self, x: dict[str, float], y: bool) -> river_fast.Scales:
        return river_fast.logistic_learn(self._model, x, y)

    def _proba(self, x: dict[str, float], learnt: river_fast.Scales) -> dict[bool, float]:
        return river_fast.logistic_proba(self._model, x, learnt)


class RiverHoeffdingTree(OnlineClassifierPredictor):
    """`HoeffdingTreeClassifier` with naive Bayes leaves, unscaled: its Gaussian split estimates are scale-free.

    Naive Bayes leaves instead of river's default adaptive ones: measured about
    1.5x faster per candle, which the default ensemble's throughput needs.
    river's Hoeffding tree has no random component, so the seed is recorded in
    the version for a uniform factory but cannot change a decision. Learns and
    predicts through `river_fast` (river's arithmetic without its generic walk
    and per-estimator calls).
    """

    def __init__(self, seed: int, dead_band: float = DEFAULT_DEAD_BAND) -> None:
        model = tree.HoeffdingTreeClassifier(leaf_prediction="nb")
        river_fast.check_tree(model)
        super().__init__("hoeffding_tree", model, seed=seed, dead_band=dead_band)
        self._path: tuple[dict[str, float], river_fast.TreePath] | None = None  # see _learn

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (checkpoints) without the kept path: the same state as before it, whose digest StateSaved records.
        return {name: value for name, value in vars(self).items() if name != "_path"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._path = None

    def _learn(self, x: dict[str, float], y: bool) -> None:
        # x is what the previous candle predicted from, and the tree has not learnt since: same leaf.
        kept, self._path = self._path, None
        path = kept[1] if kept is not None and kept[0] is x else river_fast.tree_path(self._model, x)
        river_fast.tree_learn_one(self._model, x, y, path)

    def _proba(self, x: dict[str, float], learnt: None) -> dict[bool, float]:
        path = river_fast.tree_path(self._model, x)
        self._path = (x, path)
        return river_fast.tree_proba(self._model, x, path)
