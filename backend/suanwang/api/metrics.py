"""Prometheus metrics: requests by route and status, and how far the indexer is behind the chain."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "suanwang_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "suanwang_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )
        self.head_block = Gauge("suanwang_chain_head_block", "latest block of the chain", registry=self.registry)
        self.indexed_block = Gauge("suanwang_indexed_block", "last block the indexer stored", registry=self.registry)
        self.events = Counter(
            "suanwang_indexed_events", "chain events stored by the indexer", ["name"], registry=self.registry
        )
        self.sse_clients = Gauge("suanwang_sse_clients", "connected live-event clients", registry=self.registry)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            # The route's template, not the raw path, keeps the label set small.
            name = getattr(route, "path", "static" if not scope["path"].startswith("/api") else "unmatched")
            self.metrics.requests.labels(scope["method"], name, str(status)).inc()
            self.metrics.latency.labels(scope["method"], name).observe(time.perf_counter() - started)
