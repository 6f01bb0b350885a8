"""Operations: liveness/health, readiness, open connections, the audit log, activity, the update stream."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from litestar import Response, get
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import SQLAlchemyError

from adapters import eventlog
from adapters.api.messages import TOPICS_OF, Renderer
from adapters.api.queries import ReadModels
from adapters.api.routes.params import After, Limit, bad_request
from adapters.api.schemas import ALL_TOPICS, ActivityView, ConnectionsView, Readiness, Topic, UpdatesPage
from adapters.eventlog import EventRecord
from adapters.eventstore import LedgerStore
from projections.health import HealthReport, agent_health, assess
from projections.runner import EventFeed
from settings import Settings

Clock = Callable[[], datetime]


def store_head(feed: EventFeed) -> int | None:
    """The log head, or None when the event store cannot be reached."""
    try:
        return feed.head()
    except Exception:  # any driver error means the same thing here: unreachable
        return None


@get("/health", sync_to_thread=True)
def health(read_models: ReadModels, feed: EventFeed, settings: Settings, clock: Clock) -> HealthReport:
    """Liveness: always 200 while the process serves; the body says which components are up."""
    now, head = clock(), store_head(feed)
    try:
        run, projections, sessions = (read_models.agent_run(), read_models.projection_health(head),
                                      read_models.open_sessions())
    except SQLAlchemyError:
        run, projections, sessions = None, [], None
    return assess(now=now, head=head, agent=agent_health(run, now=now,
                                                         heartbeat_interval=settings.agent.heartbeat_interval),
                  projections=projections, open_connections=sessions)


@get("/ready", sync_to_thread=True,
     responses={503: ResponseSpec(data_container=Readiness, description="not ready: the body says why")})
def ready(read_models: ReadModels, feed: EventFeed) -> Response[Readiness]:
    """Readiness: 200 when the event store answers and the read models exist, else 503."""
    head = store_head(feed)
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
def connections(read_models: ReadModels) -> ConnectionsView:
    """Open client sessions (WebSocket, Telegram) per running gateway."""
    return read_models.connections()


@get("/events", sync_to_thread=True)
def events(
    store: LedgerStore,
    after: After = 0,
    limit: Limit = 100,
    types: Annotated[list[str] | None, Parameter(query="type", description="event type, e.g. OrderFilled; "
                                                                           "repeat for several")] = None,
) -> list[EventRecord]:
    """The audit log, paged by position: `?after=<last position seen>`."""
    try:
        return eventlog.page(store, after=after, limit=limit, types=types)
    except ValueError as error:
        field, _, message = str(error).partition(": ")
        raise bad_request(field, message) from None


@get("/activity", sync_to_thread=True)
def activity(read_models: ReadModels, limit: Limit = 50) -> list[ActivityView]:
    """The readable feed of recent events, newest first."""
    return read_models.activity(limit)


@get("/updates", sync_to_thread=True)
def updates(feed: EventFeed, renderer: Renderer, after: After = 0, limit: Limit = 100,
            topics: Annotated[list[Topic] | None, Parameter(query="topic")] = None) -> UpdatesPage:
    """What `/ws` sends, as pages: the messages of the next `limit` events after `after`."""
    page = feed.read(after, limit)
    wanted = frozenset(topics or ALL_TOPICS)
    messages = [m for m in renderer.render(page) if not TOPICS_OF[type(m)].isdisjoint(wanted)]
    return UpdatesPage(after=after, last=page[-1].position if page else after, messages=messages)


ROUTES = [health, ready, connections, events, activity, updates]
