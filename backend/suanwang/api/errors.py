"""One JSON error shape for every failure: ``{"error": {"code", "message", "fields": [...]}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from suanwang.errors import InfeasibleError, InputError, NotFoundError, SuanwangError

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[SuanwangError], int] = {InputError: 400, NotFoundError: 404, InfeasibleError: 409}


def error_body(code: str, message: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or []}}


def _field_name(loc: tuple[Any, ...]) -> tuple[str, str]:
    location = str(loc[0]) if loc else "request"
    path = [str(p) for p in loc[1:]] or [location]
    return ".".join(path), location


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors():
            field, location = _field_name(tuple(err.get("loc", ())))
            fields.append({"field": field, "location": location, "message": err.get("msg", "invalid")})
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(status_code=422, content=error_body("invalid_request", summary, fields))

    @app.exception_handler(SuanwangError)
    async def _domain(_request: Request, exc: SuanwangError) -> JSONResponse:
        status = next((s for t, s in STATUS_BY_ERROR.items() if isinstance(exc, t)), 400)
        fields = [{"field": exc.field, "location": "body", "message": exc.message}] if exc.field else []
        return JSONResponse(status_code=status, content=error_body(type(exc).__name__, exc.message, fields))

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
        return JSONResponse(status_code=exc.status_code, content=error_body(code, str(exc.detail)), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(status_code=500, content=error_body("internal_error", "internal error; see the server log"))
