"""Agents' heartbeats: only an agent's own key can say it runs; stale or replayed heartbeats change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from suanwang.agents.heartbeat import sign_heartbeat
from suanwang.api.app import create_app
from suanwang.config import Settings

AGENT = Account.from_key("0x" + "11" * 32)
INTRUDER = Account.from_key("0x" + "22" * 32)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", orchestrator=False)
    with TestClient(create_app(settings)) as client:
        yield client


def beat(at: float | None = None, role: str = "provider", address: str = AGENT.address) -> dict[str, object]:
    return {"role": role, "address": address, "at": int(at or time.time()), "indexed_block": 7, "last_error": None}


def test_an_agent_is_listed_by_its_signed_heartbeat(client: TestClient) -> None:
    response = client.post("/api/agents/heartbeat", json=sign_heartbeat(beat(), AGENT.key.hex()))
    assert response.status_code == 200, response.text
    (listed,) = client.get("/api/agents").json()
    assert (listed["address"], listed["role"], listed["indexed_block"]) == (AGENT.address, "provider", 7)


def test_a_heartbeat_signed_by_another_key_is_refused(client: TestClient) -> None:
    response = client.post("/api/agents/heartbeat", json=sign_heartbeat(beat(), INTRUDER.key.hex()))
    assert response.status_code == 400
    assert response.json()["error"]["fields"][0]["field"] == "signature"
    assert client.get("/api/agents").json() == []


def test_a_stale_or_replayed_heartbeat_changes_nothing(client: TestClient) -> None:
    stale = client.post("/api/agents/heartbeat", json=sign_heartbeat(beat(time.time() - 3600), AGENT.key.hex()))
    assert stale.status_code == 400 and stale.json()["error"]["fields"][0]["field"] == "document.at"
    older, newer = sign_heartbeat(beat(time.time() - 10), AGENT.key.hex()), sign_heartbeat(beat(), AGENT.key.hex())
    assert client.post("/api/agents/heartbeat", json=newer).status_code == 200
    assert client.post("/api/agents/heartbeat", json=older).status_code == 200
    (listed,) = client.get("/api/agents").json()
    assert listed["sent_at"] == newer["document"]["at"]  # type: ignore[index]
