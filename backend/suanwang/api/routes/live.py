"""Server-sent events of what happens on chain, and Prometheus metrics."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette.sse import EventSourceResponse

from suanwang.api.deps import RuntimeDep, SessionDep
from suanwang.live_events import stream
from suanwang.storage.repositories import Repositories

router = APIRouter(tags=["live"])


@router.get(
    "/api/stream",
    summary="Live chain events (server-sent events)",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "one SSE message per chain event"}},
)
async def live_events(
    runtime: RuntimeDep,
    names: Annotated[
        str | None,
        Query(
            max_length=1000,
            pattern=r"^[A-Za-z,]*$",
            description="comma-separated event names to receive (all when absent)",
        ),
    ] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=2**62, description="resume after this event id")] = None,
) -> EventSourceResponse:
    wanted = {n for n in names.split(",") if n} if names else None
    return EventSourceResponse(stream(runtime.bus, runtime.sessions, last_event_id, wanted), ping=15)


@router.get(
    "/metrics", summary="Prometheus metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}}
)
def metrics(runtime: RuntimeDep, session: SessionDep) -> Response:
    indexed_block = Repositories(session).indexed_block()
    if indexed_block is not None:
        runtime.metrics.indexed_block.set(indexed_block)
    with contextlib.suppress(Exception):  # the chain is down: the gauge keeps its value; /health says why
        runtime.metrics.head_block.set(runtime.w3.eth.block_number)
    runtime.metrics.sse_clients.set(runtime.bus.subscriber_count)
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
