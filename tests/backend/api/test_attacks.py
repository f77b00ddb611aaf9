"""The API under attack (issue 9), at the size `make test` affords; `make reliability-api` runs the same
attacks harder and records the figures (bench/reliability_api.py).

- negative schemathesis over every operation: never a 5xx, every refusal in the one error shape, and
  an invalid request always names the field at fault;
- unknown query parameters refused by name on every operation (a misspelt filter is not ignored);
- a flood above the rate limit on loopback: 429 with Retry-After, never a 5xx;
- many concurrent POSTs of one order under one Idempotency-Key: one order in the database and in the
  API, every answer the first response or a clean 409.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from suanwang.roles import Role
from tests.backend.api.hostile import (
    error_shape_problems,
    flood,
    loopback_service,
    one_key_storm,
    schemathesis_campaign,
    stored_orders,
    unknown_query_parameter_answers,
)
from tests.backend.api.test_schema import api_schema, running_app
from tests.support.orders import chain_submission
from tests.support.stack import Deployments

__all__ = ["api_schema", "running_app"]  # fixtures reused from test_schema (the same running app)

NEGATIVE_EXAMPLES_PER_OPERATION = 25


def test_negative_requests_are_refused_in_the_error_shape_naming_the_field(
    api_schema: schemathesis.BaseSchema,
) -> None:
    outcome = schemathesis_campaign(api_schema, NEGATIVE_EXAMPLES_PER_OPERATION)
    assert outcome.server_errors == []
    assert outcome.shape_errors == []
    every = {f"{op.ok().method.upper()} {op.ok().path}" for op in api_schema.get_all_operations()}
    assert set(outcome.examples) | set(outcome.without_input) == every - {"GET /api/stream"}
    assert min(outcome.examples.values()) == NEGATIVE_EXAMPLES_PER_OPERATION


def test_every_operation_refuses_an_unknown_query_parameter_by_name(
    api_schema: schemathesis.BaseSchema, running_app: FastAPI
) -> None:
    answers = unknown_query_parameter_answers(api_schema, TestClient(running_app))
    assert len(answers) == len(list(api_schema.get_all_operations()))
    assert {operation: problems for operation, problems in answers.items() if problems} == {}


def test_known_query_parameters_still_work(running_app: FastAPI) -> None:
    client = TestClient(running_app)
    assert client.get("/api/nodes", params={"limit": 5, "status": "active"}).status_code == 200


def test_a_flood_above_the_rate_limit_gets_429_with_retry_after_never_a_5xx(
    deployments: Deployments, tmp_path: Path
) -> None:
    with deployments.chain(3) as chain:
        api = loopback_service(chain, tmp_path, rate_per_s=20, burst=40).start()
        try:
            outcome = asyncio.run(flood(api.url, requests=300, concurrency=20))
            health = httpx.get(api.url + "/health", timeout=10)  # exempt from the limit
        finally:
            api.stop()
    assert outcome.server_errors == 0, outcome.figures()
    assert outcome.statuses[429] > 0, outcome.figures()
    assert outcome.retry_after_missing == 0
    assert outcome.shape_errors == []
    assert set(outcome.statuses) <= {200, 404, 429}, outcome.figures()  # 404: the flood reads a missing node
    assert health.status_code == 200


def test_a_deeply_nested_body_is_refused_and_the_service_stays_up(deployments: Deployments, tmp_path: Path) -> None:
    """py_ecc lifts Python's recursion limit to 100,000, and the JSON decoder then overflowed the C stack
    on this 200 KB body: the service died of a segmentation fault (suanwang.api.bodylimits)."""
    with deployments.chain(3) as chain:
        api = loopback_service(chain, tmp_path, rate_per_s=100, burst=100).start()
        try:
            nested = httpx.post(
                api.url + "/api/orders",
                content=b'{"order": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                headers={"content-type": "application/json"},
                timeout=30,
            )
            health = httpx.get(api.url + "/health", timeout=10)
            alive = api.process is not None and api.process.poll() is None
        finally:
            api.stop()
    assert nested.status_code == 422 and error_shape_problems(422, nested.json()) == []
    assert nested.json()["error"]["fields"][0]["field"] == "body"
    assert alive and health.status_code == 200


@pytest.mark.parametrize("concurrent", [200])
def test_concurrent_requests_with_one_idempotency_key_create_one_order(
    deployments: Deployments, tmp_path: Path, concurrent: int
) -> None:
    with deployments.chain(3) as chain:
        buyer = chain.account_with(Role.BUYER)
        submission = chain_submission(chain, buyer, nonce=7)
        api = loopback_service(chain, tmp_path, rate_per_s=100_000, burst=100_000).start()
        try:
            outcome = asyncio.run(one_key_storm(api.url, submission, "storm-key", concurrent))
            listed = httpx.get(api.url + "/api/orders", params={"buyer": buyer.address}, timeout=10).json()
        finally:
            api.stop()
    assert outcome.other == [], outcome.figures()
    assert outcome.created == 1
    assert outcome.created + outcome.replayed + sum(outcome.conflicts.values()) == concurrent
    assert outcome.first is not None
    assert listed["total"] == 1 and listed["items"][0]["id"] == outcome.first["id"]
    assert stored_orders(tmp_path, "storm-key") == (1, 1)
