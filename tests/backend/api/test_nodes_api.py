"""GET /api/nodes and friends, served from what the indexer took from the chain."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from suanwang.api.app import create_app
from suanwang.roles import Role
from tests.support.stack import Chain, node_spec


@pytest.fixture
def client(chain: Chain, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(chain.settings(f"sqlite:///{tmp_path / 'api.db'}", poll_interval_s=0.05))
    with TestClient(app) as test_client:
        yield test_client


def wait_for_nodes(client: TestClient, count: int, **query: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = client.get("/api/nodes", params=query).json()
        if body["total"] >= count:
            return body  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"the indexer did not deliver {count} nodes: {body}")


def test_nodes_come_from_the_chain_and_filter(chain: Chain, client: TestClient) -> None:
    seller, operator = chain.account_with(Role.CLOUD), chain.account_with(Role.OPERATOR)
    registry = chain.contract("NodeRegistry")
    chain.transact(
        seller,
        registry.functions.registerNode(node_spec(operator.address, memoryMib=8192, gpuModel=0, gpuCount=0, tier=0)),
    )
    chain.transact(seller, registry.functions.registerNode(node_spec(operator.address, memoryMib=524_288, tier=3)))
    body = wait_for_nodes(client, 2)
    assert [n["memory_mib"] for n in body["items"]] == [8192, 524_288]
    big = client.get("/api/nodes", params={"min_memory_mib": 100_000}).json()
    assert [n["tier"] for n in big["items"]] == [3]
    assert client.get("/api/nodes", params={"owner": seller.address.lower()}).json()["total"] == 2
    assert client.get(f"/api/nodes/{big['items'][0]['node_id']}").json()["price_per_cu_hour"] == str(15 * 10**17)


def test_non_numeric_filter_is_a_422_naming_the_field(client: TestClient) -> None:
    response = client.get("/api/nodes", params={"min_memory_mib": "lots"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [f["field"] for f in error["fields"]] == ["min_memory_mib"]
    assert "integer" in error["fields"][0]["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"tier": "7"}, "tier"), ({"owner": "0x123"}, "owner"), ({"status": "busy"}, "status"), ({"limit": "0"}, "limit")],
)
def test_out_of_range_filters_name_their_field(client: TestClient, query: dict[str, str], field: str) -> None:
    response = client.get("/api/nodes", params=query)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == field


def test_unknown_node_is_a_404_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/api/nodes/999999")
    assert response.status_code == 404
    assert response.json()["error"]["fields"][0]["field"] == "node_id"


def test_deployment_hands_out_dev_keys_only_on_the_dev_chain(client: TestClient, chain: Chain) -> None:
    body = client.get("/api/deployment").json()
    assert body["chain_id"] == 31337
    assert set(body["contracts"]) >= {"Federation", "NodeRegistry"}
    assert all(a["private_key"] for a in body["accounts"])
    assert any(e["name"] == "NodeRegistered" for e in body["contracts"]["NodeRegistry"]["abi"] if e["type"] == "event")


def test_members_are_indexed_from_federation_events(client: TestClient, chain: Chain) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not client.get("/api/members").json():
        time.sleep(0.05)
    members = {m["address"]: m for m in client.get("/api/members").json()}
    founder = chain.deployment.deployer
    assert "operator" in members[founder]["role_names"]
    assert client.get("/health").json()["status"] == "ok"
