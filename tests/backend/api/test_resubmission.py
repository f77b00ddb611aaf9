"""The same signed order posted again: a retry gets the stored order; another access point or job, which
the buyer's signature does not cover, is refused with a 409 naming the field, and changes nothing."""

from __future__ import annotations

import copy

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.backend.api.hostile import valid_submission
from tests.backend.api.test_schema import running_app

__all__ = ["running_app"]  # the fixture, reused from test_schema: the service on a stage-3 chain


@pytest.fixture(scope="module")
def client(running_app: FastAPI) -> TestClient:
    return TestClient(running_app)


def test_a_retry_is_the_same_order_and_a_different_placement_is_refused(client: TestClient) -> None:
    submission = valid_submission(client, nonce=41)
    first = client.post("/api/orders", json=submission)
    assert first.status_code == 201, first.text
    again = client.post("/api/orders", json=submission)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]

    elsewhere = copy.deepcopy(submission)
    elsewhere["access_point"] = "Cernet/Kunming" if submission["access_point"] != "Cernet/Kunming" else "Cernet/Gullin"
    other_job = copy.deepcopy(submission)
    other_job["job"] = {"command": ["echo", "something else"]}
    for changed, field in ((elsewhere, "access_point"), (other_job, "job")):
        answer = client.post("/api/orders", json=changed)
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "conflict" and [f["field"] for f in error["fields"]] == [field]
        assert "placed once" in error["message"]
        batch = client.post("/api/orders/batch", json={"orders": [changed]}).json()
        assert batch["accepted"] == 0 and batch["results"][0]["error"]["code"] == "conflict"

    stored = client.get(f"/api/orders/{first.json()['id']}").json()
    assert (stored["access_point"], stored["spec_cid"]) == (first.json()["access_point"], first.json()["spec_cid"])
