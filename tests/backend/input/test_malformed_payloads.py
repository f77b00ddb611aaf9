"""Malformed API request bodies (not JSON, not UTF-8, nested 100,000 deep, numbers of 5,000 digits,
fields of the wrong type or size, forged signatures, unknown routers...): each gets a 4xx in the one
error shape naming the field at fault, and none of them disturbs the orders the service holds."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.backend.api.hostile import valid_submission
from tests.backend.api.test_schema import running_app
from tests.backend.input.corpus import Payload, answer_payload, api_payloads

__all__ = ["running_app"]  # the fixture, reused from test_schema: the service on a stage-3 chain


@pytest.fixture(scope="module")
def client(running_app: FastAPI) -> TestClient:
    return TestClient(running_app)


@pytest.fixture(scope="module")
def stored_order(client: TestClient) -> dict[str, Any]:
    """An order the service holds before the malformed requests arrive."""
    response = client.post("/api/orders", json=valid_submission(client, nonce=1))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


PAYLOADS = api_payloads({"order": {}, "signature": "", "access_point": "", "job": {}})  # for the names only


@pytest.mark.parametrize("name", [p.name for p in PAYLOADS])
def test_malformed_payload_is_refused_naming_the_field(
    client: TestClient, stored_order: dict[str, Any], name: str
) -> None:
    payload: Payload = next(p for p in api_payloads(valid_submission(client, nonce=2)) if p.name == name)
    answer = answer_payload(client, payload)
    assert answer.verdict == "clear", answer.detail


def test_nothing_is_lost_or_added_by_malformed_requests(client: TestClient, stored_order: dict[str, Any]) -> None:
    for payload in api_payloads(valid_submission(client, nonce=3)):
        answer_payload(client, payload)
    listed = client.get("/api/orders").json()
    assert [o["id"] for o in listed["items"]] == [stored_order["id"]]
    assert client.get(f"/api/orders/{stored_order['id']}").json()["spec_cid"] == stored_order["spec_cid"]
    assert client.get("/health").json()["status"] == "ok"
