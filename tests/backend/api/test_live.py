"""Live events over server-sent events and Prometheus metrics, from a real API process on a real chain."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from suanwang.devstack import ApiServer, free_port, wait_until
from suanwang.roles import Role
from tests.support.stack import BUILD_DIR, Chain, node_spec


@pytest.fixture
def api(chain: Chain, tmp_path: Path) -> Iterator[ApiServer]:
    server = ApiServer(
        free_port(),
        {
            "SUANWANG_RPC_URL": chain.anvil.url,
            "SUANWANG_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
            "SUANWANG_DEPLOYMENT_FILE": str(chain.deployment_file),
            "SUANWANG_BUILD_DIR": str(BUILD_DIR),
            "SUANWANG_POLL_INTERVAL_S": "0.05",
        },
    ).start()
    try:
        yield server
    finally:
        server.stop()


def read_events(url: str, headers: dict[str, str], wanted: int, out: list[dict[str, object]]) -> None:
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                out.append(json.loads(line[5:]))
                if len(out) >= wanted:
                    return


def test_a_registration_arrives_on_the_live_stream_and_resumes_by_last_event_id(chain: Chain, api: ApiServer) -> None:
    received: list[dict[str, object]] = []
    reader = threading.Thread(
        target=read_events, args=(api.url + "/api/stream?names=NodeRegistered", {}, 1, received), daemon=True
    )
    reader.start()
    seller, operator = chain.account_with(Role.CLOUD), chain.account_with(Role.OPERATOR)
    registry = chain.contract("NodeRegistry")
    wait_until(lambda: httpx.get(api.url + "/metrics").text.count("suanwang_sse_clients 1.0"), "SSE client", 10)
    chain.transact(seller, registry.functions.registerNode(node_spec(operator.address, memoryMib=12_288)))
    reader.join(timeout=30)
    assert received and received[0]["name"] == "NodeRegistered"
    args = received[0]["args"]
    assert isinstance(args, dict) and args["spec"]["memoryMib"] == 12_288
    # A client that reconnects after event 0 gets everything it missed, from the database.
    replayed: list[dict[str, object]] = []
    read_events(api.url + "/api/stream", {"Last-Event-ID": "0"}, 3, replayed)
    assert [e["id"] for e in replayed] == sorted(e["id"] for e in replayed)  # type: ignore[type-var]
    assert replayed[0]["id"] == 1


def test_metrics_are_prometheus_text(chain: Chain, api: ApiServer) -> None:
    httpx.get(api.url + "/api/nodes")
    body = httpx.get(api.url + "/metrics").text
    assert 'suanwang_http_requests_total{method="GET",route="/api/nodes",status="200"}' in body
    assert "suanwang_indexed_block " in body
    assert "suanwang_indexed_events_total" in body


def test_wide_integer_args_are_strings_whatever_their_value_and_small_ones_stay_numbers() -> None:
    from suanwang.chain.deployment import load_abi
    from suanwang.live_events import event_payload, wide_integer_args

    wide = wide_integer_args({name: load_abi(BUILD_DIR, name) for name in ("Market", "NodeRegistry")})
    assert {"computeFee", "platformFee", "transitTotal"} <= wide["Settled"]
    assert "status" not in wide.get("DealStatusChanged", frozenset())  # a uint8: stays a number
    settled = _event("Settled", computeFee=10**18, platformFee=5, transitTotal=0, valueless=False)
    args = event_payload(settled, wide)["args"]
    assert (args["computeFee"], args["platformFee"], args["transitTotal"]) == (str(10**18), "5", "0")
    assert args["valueless"] is False
    changed = _event("DealStatusChanged", status=3, deadline=1_800_000_000)
    assert event_payload(changed, wide)["args"]["status"] == 3
    assert event_payload(changed, wide)["args"]["deadline"] == 1_800_000_000  # a uint40: exact in JavaScript


def _event(name: str, **args: object) -> Any:
    from suanwang.storage.models import Event

    return Event(
        id=1, name=name, contract="Market", block_number=1, tx_hash="0x", log_index=0, args={"id": "0xab", **args}
    )
