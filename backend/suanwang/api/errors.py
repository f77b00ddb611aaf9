"""One JSON error shape for every failure: ``{"error": {"code", "message", "fields": [...]}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from suanwang.errors import (
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    InfeasibleError,
    InputError,
    NotFoundError,
    SuanwangError,
    UnauthenticatedError,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[SuanwangError], int] = {
    InputError: 400,
    NotFoundError: 404,
    InfeasibleError: 409,
    ConflictError: 409,
    UnauthenticatedError: 401,
    ForbiddenError: 403,
    ConfigurationError: 503,
}


def error_body(code: str, message: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or []}}


def _field_error(err: dict[str, Any]) -> dict[str, str]:
    """One pydantic/FastAPI validation error as ``{field, location, message}``."""
    loc = tuple(err.get("loc", ()))
    location = str(loc[0]) if loc else "request"
    if err.get("type") == "json_invalid":  # loc is ("body", <character offset>): the body is the field
        position = loc[1] if len(loc) > 1 else "?"
        reason = (err.get("ctx") or {}).get("error", "invalid JSON")
        return {"field": "body", "location": "body", "message": f"not valid JSON at character {position}: {reason}"}
    path = [str(p) if str(p) else '""' for p in loc[1:]] or [location]  # an empty key still gets a name
    return {"field": ".".join(path), "location": location, "message": err.get("msg", "invalid")}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [_field_error(err) for err in exc.errors()]
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type and any(f["field"] == "body" for f in fields):
            # FastAPI reads a body without a JSON content type as no object at all: say what to send.
            message = (
                f"the body was sent as {content_type or 'no content type'!r}; send it as JSON with "
                "Content-Type: application/json"
            )
            fields = [{"field": "content-type", "location": "header", "message": message}, *fields]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(status_code=422, content=error_body("invalid_request", summary, fields))

    @app.exception_handler(SuanwangError)
    async def _domain(request: Request, exc: SuanwangError) -> JSONResponse:
        status = next((s for t, s in STATUS_BY_ERROR.items() if isinstance(exc, t)), 400)
        location = (
            "path" if exc.field in request.path_params else "query" if exc.field in request.query_params else "body"
        )
        fields = [{"field": exc.field, "location": location, "message": exc.message}] if exc.field else []
        return JSONResponse(status_code=status, content=error_body(exc.code, exc.message, fields))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "http_error"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette answers from the first route whose path matches; list every route's methods.
            allowed = sorted(
                {
                    method
                    for route in app.router.routes
                    if route.matches(request.scope)[0] != Match.NONE
                    for method in getattr(route, "methods", None) or ()
                }
            )
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; use {', '.join(allowed)}"
            return JSONResponse(status_code=405, content=error_body("method_not_allowed", message), headers=headers)
        fields = None
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's answer to a body it cannot decode at all (e.g. not UTF-8): say why, name the body.
            fields = [{"field": "body", "location": "body", "message": f"{exc.detail}: {exc.__cause__}"}]
            code = "invalid_body"
        return JSONResponse(
            status_code=exc.status_code, content=error_body(code, str(exc.detail), fields), headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(status_code=500, content=error_body("internal_error", "internal error; see the server log"))
