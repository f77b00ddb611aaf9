"""Live node metrics with the market as processes on Anvil: the provider's agent reports its node with its
own key; once it goes silent for two report intervals, or says the node is down, the matcher service
matches nothing there, and says why."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from suanwang.agents.heartbeat import sign_heartbeat
from tests.backend.agents.test_agents_e2e import wait
from tests.backend.lifecycle.conftest import prepare_market
from tests.support.agents import matcher_service, provider_agent
from tests.support.orders import chain_submission
from tests.support.stack import Deployments

INTERVAL_S = 1.0


def test_a_node_silent_or_reported_down_takes_no_order(deployments: Deployments, tmp_path: Path) -> None:
    with deployments.chain(3) as chain:
        provider, buyer, _transit, node_id, marketplace = prepare_market(chain, tmp_path)
        service = matcher_service(chain, tmp_path, marketplace)
        service.env["SUANWANG_NODE_METRICS_INTERVAL_S"] = str(INTERVAL_S)
        agent = provider_agent(
            chain, tmp_path, provider, "--service-url", service.url,
            env={"SUANWANG_NODE_METRICS_INTERVAL_S": str(INTERVAL_S)},
        )  # fmt: skip
        service.start()
        try:
            agent.start()

            def metrics() -> dict[str, Any] | None:
                response = httpx.get(f"{service.url}/api/nodes/{node_id}/metrics", timeout=30)
                return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

            live = wait(
                "the agent's first signed report", lambda: (m := metrics()) and m["live"] and m, processes=(agent,)
            )
            assert (live["reporter"], live["up"]) == (provider.address, True)
            assert live["cpus"] >= 1 and 0 <= live["cats"]["level2"] <= 10

            agent.stop()
            stopped = time.monotonic()
            wait("the node to count as silent", lambda: (m := metrics()) and not m["live"])
            # Silent within two intervals of its last report (signed before the agent stopped), plus the
            # time one GET takes on this machine.
            assert time.monotonic() - stopped <= 2 * INTERVAL_S + 1.5
            reason = unmatched_reason(service.url, chain_submission(chain, buyer, 21))
            assert "1 node has sent no live metrics lately" in reason

            # The provider says, with its own key, that the node is down: not matched either.
            down = {
                "kind": "node_metrics",
                "reporter": provider.address,
                "at": int(time.time()),
                "nodes": [{**{k: live[k] for k in FIGURES}, "up": False}],
            }
            response = httpx.post(service.url + "/api/nodes/metrics", json=sign_heartbeat(down, provider.key.hex()))
            assert response.status_code == 200, response.text
            reason = unmatched_reason(service.url, chain_submission(chain, buyer, 22))
            assert "1 node is reported down by its provider" in reason
        finally:
            agent.stop()
            service.stop()


FIGURES = ("node_id", "cpus", "free_cpus", "memory_mib", "free_memory_mib", "gpus", "free_gpus", "load_1m", "services")


def unmatched_reason(url: str, submission: dict[str, Any]) -> str:
    response = httpx.post(url + "/api/orders", json=submission, timeout=30)
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]

    def settled() -> dict[str, Any] | None:
        order = httpx.get(f"{url}/api/orders/{order_id}", timeout=30).json()
        return order if order["state"] not in ("new", "submitting") else None  # type: ignore[no-any-return]

    order = wait("the match step to decide", settled)
    assert order["state"] == "unmatched", order
    return str(order["reason"])
