"""The model scoreboard: which model earns its place (docs/models.md has every formula)."""

from __future__ import annotations

from litestar import get

from tradeledger.adapters.api.deps import ReadModelsDep
from tradeledger.projections.models_view import ModelsView


@get("/models", sync_to_thread=True)
def models(read_models: ReadModelsDep) -> ModelsView:
    """Every model's scored predictions (hit rate, Brier score, calibration) and the trades it voted for,
    over the whole history and the rolling window; the predictors first, then the ensemble members."""
    return read_models.models()


ROUTES = [models]
