"""FastAPI dependencies: the runtime, the typed gateway to its chain, a database session per request, and
the refusal of query parameters an operation does not take."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from suanwang.chain.contracts import ChainGateway
from suanwang.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


_GATEWAYS: dict[tuple[int, bool], tuple[Runtime, ChainGateway]] = {}
_GATEWAYS_LOCK = threading.Lock()


def chain_gateway(runtime: Runtime, probe: bool = False) -> ChainGateway:
    """The deployment's contracts, typed, bound once per runtime (reading the ABIs from disk takes a while).
    With `probe` they read through the runtime's short probe, one attempt a call: what a request that
    must answer even while the chain does not (the order intake) asks through."""
    key = (id(runtime), probe)
    with _GATEWAYS_LOCK:
        entry = _GATEWAYS.get(key)
        if entry is None or entry[0] is not runtime:  # an id reused by a later runtime is another chain
            w3 = runtime.probe if probe else runtime.w3
            entry = (runtime, ChainGateway.bind(w3, runtime.load_deployment(), runtime.settings.build_dir))
            _GATEWAYS[key] = entry
    return entry[1]


def get_gateway(runtime: Annotated[Runtime, Depends(get_runtime)]) -> ChainGateway:
    return chain_gateway(runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session)]
GatewayDep = Annotated[ChainGateway, Depends(get_gateway)]


def _query_names(route: Any) -> frozenset[str]:
    """The query parameters a route takes, its own and its dependencies' (FastAPI's Dependant tree)."""
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(p.alias for p in dependant.query_params)
        pending.extend(dependant.dependencies)
    return frozenset(names)


async def reject_unknown_query_parameters(request: Request) -> None:  # async: no thread hop per request
    """A misspelt filter (``?limt=5``, ``?owner_address=...``) would otherwise be ignored and the answer
    would silently be to another question: refuse it with a 422 naming the parameter."""
    route = request.scope.get("route")
    if getattr(route, "dependant", None) is None:
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = f"this operation takes {', '.join(sorted(known))}" if known else "this operation takes none"
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name if name.strip() else repr(name)),  # `?=x` names the empty string
                    "msg": f"unknown query parameter; {takes}",
                }
                for name in unknown
            ]
        )
