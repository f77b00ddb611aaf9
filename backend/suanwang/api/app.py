"""The FastAPI application: API routes under /api, health, and the built web app at /."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from suanwang import __version__
from suanwang.api.bodylimits import BodyLimitsMiddleware
from suanwang.api.deps import reject_unknown_query_parameters
from suanwang.api.errors import error_body, install_error_handlers
from suanwang.api.idempotency import IdempotencyMiddleware
from suanwang.api.metrics import Metrics, MetricsMiddleware
from suanwang.api.ratelimit import RateLimitMiddleware
from suanwang.api.routes import agents, content, federation, live, node_metrics, nodes, orders, reference, views
from suanwang.api.schemas import ERROR_RESPONSES
from suanwang.config import Settings
from suanwang.paths import REPO_ROOT
from suanwang.runtime import Runtime

SWAGGER_UI_DIR = REPO_ROOT / "node_modules" / "swagger-ui-dist"


def create_app(settings: Settings | None = None, *, start_indexer: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.create(settings, metrics)
        app.state.runtime = runtime
        if start_indexer:
            runtime.start_indexer()
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(
        title="Suanwang API",
        version=__version__,
        summary="Trade compute together with the network path to it",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        dependencies=[Depends(reject_unknown_query_parameters)],
        docs_url=None,  # served below, from local files when npm installed them
        redoc_url=None,
    )
    install_error_handlers(app)
    _serve_api_docs(app)
    # Outermost first: metrics see every answer, including 429s and idempotent replays.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitsMiddleware)  # bodies bounded before anything buffers or parses them
    app.add_middleware(RateLimitMiddleware, rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(agents.router)
    app.include_router(content.router)
    app.include_router(federation.router)
    app.include_router(node_metrics.router)  # before nodes: /api/nodes/metrics is not a node id
    app.include_router(nodes.router)
    app.include_router(live.router)
    app.include_router(orders.router)
    app.include_router(reference.router)
    app.include_router(views.router)

    if (settings.frontend_dir / "index.html").exists():
        app.mount("/", StaticFiles(directory=settings.frontend_dir, html=True), name="web")
    else:

        @app.get("/", include_in_schema=False)
        def no_frontend() -> JSONResponse:
            return JSONResponse(
                status_code=503,
                content=error_body("frontend_not_built", f"no web app at {settings.frontend_dir}: run `make frontend`"),
            )

    return app


def _serve_api_docs(app: FastAPI) -> None:
    """`/docs`, Swagger UI over /openapi.json, with its script and style from the pinned npm package
    (swagger-ui-dist, package.json) rather than FastAPI's default CDN, which machines without the open
    internet cannot reach (the page was blank there); the CDN only when the package is not installed."""
    assets = SWAGGER_UI_DIR if (SWAGGER_UI_DIR / "swagger-ui-bundle.js").exists() else None
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        if assets is None:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="Suanwang API")
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Suanwang API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
