"""Answers that name what was wrong: the same signed order posted again with another access point (which the
buyer's signature does not cover) is a 409 naming the field, while a retry gets the stored order; a job that
is not the one whose digest the buyer signed, an expired order, a non-buyer's order, an order signed in
another value epoch and one below its buyer's nonce floor are refused before anything is stored; an error
says whether the field came in the path, the query or the body."""

from __future__ import annotations

import copy
import json

import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web3 import Web3

from suanwang.roles import Role
from tests.backend.api.hostile import FAR_EXPIRY, valid_submission
from tests.backend.api.test_schema import running_app
from tests.support.orders import job_body, sealed_job, signed_submission

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
    answer = client.post("/api/orders", json=elsewhere)
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "conflict" and [f["field"] for f in error["fields"]] == ["access_point"]
    assert "placed once" in error["message"]
    batch = client.post("/api/orders/batch", json={"orders": [elsewhere]}).json()
    assert batch["accepted"] == 0 and batch["results"][0]["error"]["code"] == "conflict"

    other_job = copy.deepcopy(submission)  # the signature covers the job: its digest is the order's specDigest
    other_job["job"] = job_body(sealed_job(["echo", "something else"], Account.create(), 31337))
    answer = client.post("/api/orders", json=other_job)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert [f["field"] for f in error["fields"]] == ["order.specDigest"] and "digest" in error["message"]
    batch = client.post("/api/orders/batch", json={"orders": [other_job]}).json()
    assert batch["results"][0]["error"]["fields"][0]["field"] == "orders.0.order.specDigest"

    stored = client.get(f"/api/orders/{first.json()['id']}").json()
    assert (stored["access_point"], stored["spec_cid"]) == (first.json()["access_point"], first.json()["spec_cid"])


def _deployment(client: TestClient) -> tuple[int, str]:
    deployment = client.get("/api/deployment").json()
    return deployment["chain_id"], deployment["contracts"]["Market"]["address"]


def test_an_expired_order_and_a_non_buyer_are_refused_at_intake_naming_the_field(client: TestClient) -> None:
    chain_id, market = _deployment(client)
    buyer = next(a for a in client.get("/api/deployment").json()["accounts"] if a["roles"] & Role.BUYER)
    epoch = client.get("/api/views/operators").json()["epoch"]
    expired = signed_submission(Account.from_key(buyer["private_key"]), chain_id, market, 1, 51, epoch=epoch)
    stranger = signed_submission(Account.create(), chain_id, market, FAR_EXPIRY, 52, epoch=epoch)
    before = client.get("/api/orders").json()["total"]
    for submission, field, words in ((expired, "order.expiry", "expired"), (stranger, "order.buyer", "buyer role")):
        answer = client.post("/api/orders", json=submission)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert [f["field"] for f in error["fields"]] == [field] and words in error["message"]
        batch = client.post("/api/orders/batch", json={"orders": [submission]}).json()
        assert batch["results"][0]["error"]["fields"][0]["field"] == f"orders.0.{field}"
    assert client.get("/api/orders").json()["total"] == before  # nothing stored


def test_an_order_of_another_epoch_below_the_nonce_floor_or_for_another_matcher_is_refused(client: TestClient) -> None:
    deployment = client.get("/api/deployment").json()
    chain_id, market = _deployment(client)
    epoch = client.get("/api/views/operators").json()["epoch"]
    assert epoch > 0  # stage 3: the stage moved twice since deployment
    # Another buyer than the other tests': its floor rises here.
    entry = next(a for a in deployment["accounts"] if a["roles"] == Role.BUYER and a["name"].startswith("Shenzhen"))
    buyer = Account.from_key(entry["private_key"])
    w3 = Web3(Web3.HTTPProvider(deployment["rpc_url"]))
    contract = w3.eth.contract(address=market, abi=deployment["contracts"]["Market"]["abi"])
    tx = contract.functions.cancelAllOrders().build_transaction(
        {"from": buyer.address, "nonce": w3.eth.get_transaction_count(buyer.address)}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(buyer.sign_transaction(tx).raw_transaction)
    )
    assert receipt["status"] == 1
    floor = int(contract.functions.nonceFloorOf(buyer.address).call())
    assert floor > 71
    old_epoch = signed_submission(buyer, chain_id, market, FAR_EXPIRY, nonce=floor + 1, epoch=epoch - 1)
    below_floor = signed_submission(buyer, chain_id, market, FAR_EXPIRY, nonce=71, epoch=epoch)
    another_matcher = signed_submission(
        buyer, chain_id, market, FAR_EXPIRY, nonce=floor + 2, epoch=epoch, matcher="0x" + "77" * 20
    )
    before = client.get("/api/orders").json()["total"]
    for submission, field, words in (
        (old_epoch, "order.epoch", "epoch"),
        (below_floor, "order.nonce", "floor"),
        (another_matcher, "order.matcher", "matches as"),
    ):
        answer = client.post("/api/orders", json=submission)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert [f["field"] for f in error["fields"]] == [field] and words in error["message"]
    assert client.get("/api/orders").json()["total"] == before  # nothing stored
    at_floor = signed_submission(buyer, chain_id, market, FAR_EXPIRY, nonce=floor, epoch=epoch)
    assert client.post("/api/orders", json=at_floor).status_code == 201


def test_an_error_names_where_the_field_was_sent(client: TestClient) -> None:
    missing = client.get("/api/orders/0x" + "ab" * 32).json()["error"]
    assert missing["code"] == "not_found" and missing["fields"][0] == {
        "field": "order_id",
        "location": "path",
        "message": missing["message"],
    }
    unknown = client.get("/api/routes", params={"from": "Cernet/Beijing", "to": "Atlantis"}).json()["error"]
    assert [(f["field"], f["location"]) for f in unknown["fields"]] == [("to", "query")]


def test_a_body_sent_without_a_json_content_type_is_told_to_send_json(client: TestClient) -> None:
    submission = valid_submission(client, nonce=61)
    for content_type in ("", "text/plain"):
        answer = client.post("/api/orders", content=json.dumps(submission), headers={"content-type": content_type})
        assert answer.status_code == 422
        fields = answer.json()["error"]["fields"]
        assert (fields[0]["field"], fields[0]["location"]) == ("content-type", "header")
        assert "application/json" in fields[0]["message"]
