"""FastAPI dependencies: the runtime and a database session per request, and the refusal of query
parameters an operation does not take."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from suanwang.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session)]


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
