"""Live node metrics: only a node's owner can report on it, with its own key; a stale, future-dated or
replayed report changes nothing; every refusal is a 4xx naming the field. And what the agent reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from suanwang.agents.heartbeat import sign_heartbeat
from suanwang.agents.node_metrics import ReportNodeMetrics, parse_node_services
from suanwang.api.app import create_app
from suanwang.config import Settings
from suanwang.errors import InputError
from suanwang.lifecycle.resources import Given
from suanwang.scheduling.base import ExecutorNode, NodeState
from suanwang.storage.db import make_engine, make_sessionmaker, migrate
from suanwang.storage.models import Deal, Job, Node

OWNER = Account.from_key("0x" + "11" * 32)
OTHER = Account.from_key("0x" + "22" * 32)
SERVICE = "0x" + "ab" * 32


def node_row(node_id: int, owner: str) -> Node:
    return Node(
        node_id=node_id,
        owner=owner,
        status="active",
        logic_mcu=64_000,
        parallel_mcu=0,
        neural_mcu=0,
        memory_mib=65_536,
        gpu_model=0,
        gpu_count=0,
        tier=1,
        price_per_cu_hour="1",
        operator="0x" + "00" * 20,
        router="0x" + "00" * 32,
        locator="fd00::/48",
        registered_block=1,
        updated_block=1,
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", orchestrator=False, node_metrics_interval_s=5
    )
    with TestClient(create_app(settings)) as client:
        with client.app.state.runtime.sessions.begin() as session:  # type: ignore[attr-defined]
            session.add_all([node_row(1, OWNER.address), node_row(2, OTHER.address)])
        yield client


def figures(node_id: int = 1, **change: Any) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "up": True,
        "cpus": 8,
        "free_cpus": 6,
        "memory_mib": 16_384,
        "free_memory_mib": 8_192,
        "gpus": 0,
        "free_gpus": 0,
        "load_1m": 1.0,
        "services": [{"service_id": SERVICE, "service_time_ms": 5.0}],
        **change,
    }


def report(*nodes: dict[str, Any], at: float | None = None, reporter: str = OWNER.address) -> dict[str, Any]:
    return {"kind": "node_metrics", "reporter": reporter, "at": int(at or time.time()), "nodes": list(nodes)}


def post(client: TestClient, document: dict[str, Any], key: Any = OWNER.key) -> Any:
    return client.post("/api/nodes/metrics", json=sign_heartbeat(document, key.hex()))


def refused_field(response: Any) -> str:
    assert 400 <= response.status_code < 500, response.text
    return str(response.json()["error"]["fields"][0]["field"])


def test_an_owners_signed_report_is_kept_with_its_cats_levels(client: TestClient) -> None:
    response = post(client, report(figures()))
    assert response.status_code == 200, response.text
    (shown,) = client.get("/api/nodes/metrics").json()
    one = client.get("/api/nodes/1/metrics").json()
    assert {**shown, "seconds_since": 0} == {**one, "seconds_since": 0}
    assert (shown["node_id"], shown["reporter"], shown["up"], shown["live"]) == (1, OWNER.address, True, True)
    # Level 1: round(10 * share free); level 2: the lowest. Utilisation: max(2/8 CPUs given, load 1/8).
    assert shown["cats"] == {"cpu": 8, "memory": 5, "gpu": None, "level2": 5}
    assert shown["utilisation"] == pytest.approx(0.25)
    assert shown["services"] == [{"service_id": SERVICE, "service_time_ms": 5.0}]
    assert client.get("/api/nodes/metrics", params={"owner": OTHER.address}).json() == []
    assert client.get("/api/nodes/2/metrics").status_code == 404


def test_a_report_signed_by_another_key_is_refused(client: TestClient) -> None:
    assert refused_field(post(client, report(figures()), OTHER.key)) == "signature"
    assert client.get("/api/nodes/metrics").json() == []


def test_a_report_on_a_node_of_another_owner_is_refused(client: TestClient) -> None:
    # OTHER signs truthfully as itself, but names OWNER's node: the nodes table says who owns it.
    response = post(client, report(figures(2), figures(1), reporter=OTHER.address), OTHER.key)
    assert refused_field(response) == "document.nodes[1].node_id"
    assert "owned by" in response.json()["error"]["message"]
    assert refused_field(post(client, report(figures(9)))) == "document.nodes[0].node_id"  # not registered
    assert client.get("/api/nodes/metrics").json() == []


def test_stale_and_future_reports_are_refused_and_a_replay_changes_nothing(client: TestClient) -> None:
    assert refused_field(post(client, report(figures(), at=time.time() - 3600))) == "document.at"
    assert refused_field(post(client, report(figures(), at=time.time() + 3600))) == "document.at"
    older = sign_heartbeat(report(figures(up=False), at=time.time() - 20), OWNER.key.hex())
    assert post(client, report(figures())).status_code == 200
    replayed = client.post("/api/nodes/metrics", json=older)
    assert replayed.status_code == 200 and replayed.json()[0]["up"] is True  # the newer report stays
    assert client.get("/api/nodes/1/metrics").json()["up"] is True


def test_malformed_reports_name_the_field(client: TestClient) -> None:
    assert refused_field(post(client, report(figures(free_cpus=9)))) == "document.nodes[0].free_cpus"
    assert refused_field(post(client, report(figures(), figures()))) == "document.nodes[1].node_id"
    bad_service = figures(services=[{"service_id": "0x12", "service_time_ms": 5}])
    assert "service_id" in refused_field(post(client, report(bad_service)))
    # A heartbeat's signature is not a report's: the document must say what it is.
    heartbeat = {"role": "provider", "address": OWNER.address, "at": int(time.time()), "indexed_block": 1}
    assert client.post("/api/nodes/metrics", json=sign_heartbeat(heartbeat, OWNER.key.hex())).status_code == 422
    tampered = sign_heartbeat(report(figures()), OWNER.key.hex())
    tampered["document"]["nodes"][0]["free_cpus"] = 8
    assert refused_field(client.post("/api/nodes/metrics", json=tampered)) == "signature"


def test_node_services_setting_parses_and_names_its_field() -> None:
    assert parse_node_services(f"1={SERVICE}:5, 1={SERVICE[:-1]}c:2.5") == {
        1: [{"service_id": SERVICE, "service_time_ms": 5.0}, {"service_id": SERVICE[:-1] + "c", "service_time_ms": 2.5}]
    }
    for bad in ("1=0xab:5", f"x={SERVICE}:5", f"1={SERVICE}", f"1={'0x' + '00' * 32}:5", f"1={SERVICE}:0"):
        with pytest.raises(InputError) as refused:
            parse_node_services(bad)
        assert refused.value.field == "node_services"


class FakeExecutor:
    def __init__(self, nodes: list[ExecutorNode]) -> None:
        self._nodes = nodes

    def nodes(self) -> list[ExecutorNode]:
        return self._nodes


def test_the_agent_reports_free_figures_less_what_its_open_jobs_were_given(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'agent.db'}")
    migrate(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        session.add_all([node_row(1, OWNER.address), node_row(2, OWNER.address), node_row(3, OTHER.address)])
        deal = Deal(
            id="0x" + "01" * 32, buyer=OTHER.address, seller=OWNER.address, matcher=OTHER.address, node_id=1,
            status="started", deadline=0, deal={"logicMcu": 16_000}, valueless=False, matched_block=1,
            updated_block=1,
        )  # fmt: skip
        session.add(deal)
        session.add(
            Job(
                deal_id=deal.id,
                executor="x",
                executor_node="n1",
                job_id="7",
                state="running",
                updated_at=datetime.now(UTC),
            )
        )
    runtime = SimpleNamespace(address=OWNER.address, ctx=SimpleNamespace(sessions=sessions), service_url=None)
    executor = FakeExecutor(
        [
            ExecutorNode("n1", cpus=8, memory_mib=16_384, gpus=2),
            ExecutorNode("n2", cpus=4, memory_mib=8_192, state=NodeState.DOWN),
        ]
    )
    step = ReportNodeMetrics(
        runtime,
        executor,
        lambda n: {1: "n1", 2: "n2"}.get(n.node_id),
        {1: [{"service_id": SERVICE, "service_time_ms": 5.0}]},
    )  # type: ignore[arg-type]
    step._given["0x" + "01" * 32] = Given(cpus=2, memory_mib=4_096, gpus=1)  # what the dispatch gave its job
    document = step.document()
    assert document is not None and document["reporter"] == OWNER.address and document["kind"] == "node_metrics"
    first, second = document["nodes"]  # the agent's own nodes only, by id
    assert (first["node_id"], first["up"], first["free_cpus"], first["free_memory_mib"], first["free_gpus"]) == (
        1, True, 6, 12_288, 1,
    )  # fmt: skip
    assert first["services"] == [{"service_id": SERVICE, "service_time_ms": 5.0}]
    assert (second["node_id"], second["up"], second["free_cpus"], second["services"]) == (2, False, 4, [])
