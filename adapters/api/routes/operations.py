"""Operations: liveness/health, readiness, open connections, the audit log, activity, the update stream."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import SQLAlchemyError

from tradeledger.adapters import eventlog
from tradeledger.adapters.api.deps import FeedDep, HealthDep, ReadModelsDep, RendererDep
from tradeledger.adapters.api.errors import documented
from tradeledger.adapters.api.messages import TOPICS_OF
from tradeledger.adapters.api.routes.params import After, Limit, bad_request
from tradeledger.adapters.services.views import ALL_TOPICS, ActivityView, ConnectionsView, Readiness, Topic, UpdatesPage
from tradeledger.adapters.eventlog import EventRecord
from tradeledger.projections.health_rule import HealthReport

HEALTH_MAX_AGE = 0.25  # seconds: probes may poll hard, and a report this old is still the truth for them


@get("/health", sync_to_thread=True)
def health(health: HealthDep) -> HealthReport:
    """Liveness: always 200 while the process serves; the body says which components are up."""
    return health.recent(HEALTH_MAX_AGE)


@get("/ready", sync_to_thread=True,
     responses={503: ResponseSpec(data_container=Readiness, description="not ready: the body says why")})
def ready(read_models: ReadModelsDep, health: HealthDep) -> Response[Readiness]:
    """Readiness: 200 when the event store answers and the read models exist, else 503."""
    head = health.store_head()
    try:
        missing = read_models.missing_tables()
    except SQLAlchemyError as error:
        missing = [f"(database error: {type(error).__name__})"]
    reasons = (["event store unreachable"] if head is None else []) + \
              ([f"read model tables missing: {', '.join(missing)}"] if missing else [])
    body = Readiness(ready=not reasons, store_reachable=head is not None, read_models=not missing, head=head,
                     reasons=reasons)
    return Response(body, status_code=HTTP_200_OK if body.ready else HTTP_503_SERVICE_UNAVAILABLE)


@get("/connections", sync_to_thread=True)
def connections(read_models: ReadModelsDep) -> ConnectionsView:
    """Open client sessions (WebSocket, Telegram) per running gateway."""
    return read_models.connections()


@get("/events", sync_to_thread=True, responses=documented(400))
def events(
    feed: FeedDep,
    after: After = 0,
    limit: Limit = 100,
    types: Annotated[list[str] | None, QueryParameter(name="type", description="event type, e.g. OrderFilled; "
                                                                           "repeat for several")] = None,
) -> list[EventRecord]:
    """The audit log, paged by position: `?after=<last position seen>`."""
    try:
        return eventlog.audit_page(feed, after=after, limit=limit, types=types)
    except ValueError as error:
        field, _, message = str(error).partition(": ")
        raise bad_request(field, message) from None


@get("/activity", sync_to_thread=True, responses=documented(400))
def activity(read_models: ReadModelsDep, limit: Limit = 50) -> list[ActivityView]:
    """The readable feed of recent events, newest first."""
    return read_models.activity(limit)


@get("/updates", sync_to_thread=True, responses=documented(400))
def updates(feed: FeedDep, renderer: RendererDep, after: After = 0, limit: Limit = 100,
            topics: Annotated[list[Topic] | None, QueryParameter(name="topic")] = None) -> UpdatesPage:
    """What `/ws` sends, as pages: the messages of the next `limit` events after `after`."""
    page = feed.read(after, limit)
    wanted = frozenset(topics or ALL_TOPICS)
    messages = [m for m in renderer.render(page) if not TOPICS_OF[type(m)].isdisjoint(wanted)]
    return UpdatesPage(after=after, last=page[-1].position if page else after, messages=messages)


ROUTES = [health, ready, connections, events, activity, updates]
