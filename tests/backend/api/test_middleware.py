"""Idempotency keys and the rate limit, on a small app with a counting POST route (the middlewares
are generic; the order routes use the same ones)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from suanwang.api.errors import install_error_handlers
from suanwang.api.idempotency import IdempotencyMiddleware
from suanwang.api.ratelimit import RateLimitMiddleware, TokenBuckets
from suanwang.storage.db import make_engine, make_sessionmaker

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def counting_app(tmp_path: Path, rate: float = 10_000, burst: int = 10_000) -> tuple[FastAPI, list[int]]:
    created: list[int] = []
    counter = itertools.count(1)
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware, sessions=make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'i.db'}")))
    app.add_middleware(RateLimitMiddleware, rate_per_s=rate, burst=burst)

    @app.post("/api/things", status_code=201)
    async def create(payload: dict[str, int]) -> dict[str, int]:
        await asyncio.sleep(0.01)
        thing = next(counter)
        created.append(thing)
        return {"id": thing, **payload}

    @app.get("/api/things")
    async def read() -> dict[str, int]:
        return {"count": len(created)}

    return app, created


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_repeated_key_returns_the_first_response(tmp_path: Path) -> None:
    app, created = counting_app(tmp_path)
    async with client(app) as c:
        first = await c.post("/api/things", json={"n": 1}, headers={"Idempotency-Key": "k1"})
        again = await c.post("/api/things", json={"n": 1}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"id": 1, "n": 1}
    assert again.headers["idempotent-replayed"] == "true"
    assert created == [1]


async def test_same_key_with_another_body_is_a_409(tmp_path: Path) -> None:
    app, created = counting_app(tmp_path)
    async with client(app) as c:
        await c.post("/api/things", json={"n": 1}, headers={"Idempotency-Key": "k1"})
        clash = await c.post("/api/things", json={"n": 2}, headers={"Idempotency-Key": "k1"})
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "idempotency_key_reused"
    assert created == [1]


async def test_concurrent_requests_with_one_key_run_once(tmp_path: Path) -> None:
    app, created = counting_app(tmp_path)
    async with client(app) as c:
        responses = await asyncio.gather(
            *[c.post("/api/things", json={"n": 7}, headers={"Idempotency-Key": "same"}) for _ in range(50)]
        )
    assert {r.status_code for r in responses} == {201}
    assert {r.json()["id"] for r in responses} == {1}
    assert created == [1]


async def test_validation_errors_are_not_cached_as_success_and_name_the_field(tmp_path: Path) -> None:
    app, created = counting_app(tmp_path)
    async with client(app) as c:
        bad = await c.post("/api/things", json={"n": "many"}, headers={"Idempotency-Key": "k2"})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "n"
    assert created == []


async def test_over_the_rate_a_client_gets_429_with_retry_after(tmp_path: Path) -> None:
    app, _ = counting_app(tmp_path, rate=1, burst=5)
    async with client(app) as c:
        statuses = [(await c.get("/api/things")).status_code for _ in range(8)]
        limited = await c.get("/api/things")
    assert statuses[:5] == [200] * 5
    assert set(statuses[5:]) == {429}
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("elapsed", [0.0, 0.5, 2.0])
async def test_token_bucket_refills_at_its_rate(elapsed: float) -> None:
    buckets = TokenBuckets(rate=2, burst=2)
    assert buckets.take("a", now=0) == 0 and buckets.take("a", now=0) == 0
    wait = buckets.take("a", now=elapsed)
    assert (wait == 0) == (elapsed * 2 >= 1)
    assert buckets.take("b", now=0) == 0  # clients are limited apart
