"""`suanwang serve`: the API, the indexer and the web app in one process."""

from __future__ import annotations

import click
import uvicorn

from suanwang.config import Settings


@click.command()
@click.option("--host", default=None, help="listen address (default SUANWANG_HOST or 127.0.0.1)")
@click.option("--port", type=int, default=None, help="listen port (default SUANWANG_PORT or 8000)")
def serve(host: str | None, port: int | None) -> None:
    """Run the API and the chain indexer, and serve the built web app."""
    from suanwang.api.app import create_app

    overrides: dict[str, object] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings.from_env(None, **overrides)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
