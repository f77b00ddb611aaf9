"""A per-client token bucket: above the rate, requests get 429 with Retry-After, never a 5xx.

Clients are told apart by their address (behind a proxy, configure it to pass the client's
address). Health checks and the web app's static files are not limited."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from suanwang.api.errors import error_body
from suanwang.api.idempotency import _send_json

EXEMPT_PREFIXES = ("/health", "/metrics", "/assets/")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """`rate` requests per second sustained, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """Takes a token; returns 0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._buckets.clear()  # bounded memory under a flood of distinct clients
                bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, rate_per_s: float, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate_per_s, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api") or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.buckets.take(client)
        if wait > 0:
            retry_after = str(max(1, math.ceil(wait)))
            await _send_json(
                send,
                429,
                error_body("rate_limited", f"too many requests; retry after {retry_after} s"),
                [(b"retry-after", retry_after.encode())],
            )
            return
        await self.app(scope, receive, send)
