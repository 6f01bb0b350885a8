"""The predictors by name: the factory behind `predictor.name`.

river (and through it scipy) takes most of a second to import, so the river models are imported only
when one is built: a `sma_cross` backtest, `--help` and the audits never load it.
"""

from __future__ import annotations

from collections.abc import Callable

from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.predictors import Ensemble, Predictor, SmaCross


def _logistic(seed: int, fast: int, slow: int) -> Predictor:
    from tradeledger.adapters.river_models import RiverLogistic

    return RiverLogistic(seed)


def _hoeffding_tree(seed: int, fast: int, slow: int) -> Predictor:
    from tradeledger.adapters.river_models import RiverHoeffdingTree

    return RiverHoeffdingTree(seed)


def _ensemble(seed: int, fast: int, slow: int) -> Predictor:
    return Ensemble([_logistic(seed, fast, slow), _hoeffding_tree(seed, fast, slow), SmaCross(fast, slow)])


_FACTORIES: dict[str, Callable[[int, int, int], Predictor]] = {
    "sma_cross": lambda seed, fast, slow: SmaCross(fast, slow),
    "logistic": _logistic,
    "hoeffding_tree": _hoeffding_tree,
    "ensemble": _ensemble,
}

PREDICTOR_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def build_predictor(name: str, *, seed: int, fast: int, slow: int) -> Predictor:
    """The predictor called `name` (see PREDICTOR_NAMES); feed it a `FeatureEngine(fast, slow)`."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise InvalidValue("predictor.name", name, f"expected one of {', '.join(PREDICTOR_NAMES)}")
    return factory(seed, fast, slow)
