"""One JSON error shape for every failure: ``{"error": {"code", "message", "fields": [...]}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "http_error"
        return JSONResponse(
            status_code=exc.status_code,
            content=error_body(code, str(exc.detail)),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(status_code=500, content=error_body("internal_error", "internal error; see the server log"))
