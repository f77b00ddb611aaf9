"""The service killed (SIGKILL) at points all through an order's lifecycle and restarted on the same
database, executor state and content store: each order still ends settled, with one match, one job,
one settlement and exactly the bill moved, whatever the point of the kill."""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from suanwang.devstack import ApiServer, free_port
from tests.backend.lifecycle.conftest import prepare_market
from tests.support.orders import chain_submission
from tests.support.stack import BUILD_DIR, Chain, Deployments

# Seconds after the order is accepted by the API at which the service is killed; with a job that runs
# for 2 s these fall before the match, around start, while the job runs, and around completion.
KILL_AFTER_S = (0.0, 0.3, 0.6, 1.5, 2.2, 2.6, 3.0)


def server(chain: Chain, folder: Path, marketplace: Path) -> ApiServer:
    return ApiServer(
        free_port(),
        {
            "SUANWANG_RPC_URL": chain.anvil.url,
            "SUANWANG_DATABASE_URL": f"sqlite:///{folder / 'service.db'}",
            "SUANWANG_DEPLOYMENT_FILE": str(chain.deployment_file),
            "SUANWANG_BUILD_DIR": str(BUILD_DIR),
            "SUANWANG_MARKETPLACE_FILE": str(marketplace),
            "SUANWANG_EXECUTOR_DIR": str(folder / "executor"),
            "SUANWANG_CONTENT_DIR": str(folder / "content"),
            "SUANWANG_POLL_INTERVAL_S": "0.05",
            "SUANWANG_ORCHESTRATOR_INTERVAL_S": "0.05",
        },
    )


def signed_order(
    chain: Chain, buyer: Any, nonce: int, command: Sequence[str] = ("sh", "-c", "sleep 2; echo done")
) -> dict[str, Any]:
    """A signed order for the job `command` (its digest is signed), by default one that runs two seconds
    (long enough to be killed while it runs)."""
    return chain_submission(chain, buyer, nonce, command=command)


def stage_of(order: dict[str, Any]) -> str:
    return (order.get("deal") or {}).get("status") or order["state"]


@pytest.mark.parametrize("kill_after_s", KILL_AFTER_S)
def test_killed_service_resumes_without_losing_or_doubling(
    deployments: Deployments, tmp_path: Path, kill_after_s: float
) -> None:
    with deployments.chain(3) as chain:
        provider, buyer, _transit, _node, marketplace = prepare_market(chain, tmp_path)
        market = chain.contract("Market")
        parties = [
            provider.address,
            buyer.address,
            *(Account.from_key(a.private_key).address for a in chain.deployment.accounts if a.private_key),
        ]
        before = {p: int(market.functions.balanceOf(p).call()) for p in set(parties)}
        first = server(chain, tmp_path, marketplace).start()
        response = httpx.post(first.url + "/api/orders", json=signed_order(chain, buyer, 7), timeout=30)
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]
        time.sleep(kill_after_s)
        killed_at = stage_of(httpx.get(f"{first.url}/api/orders/{order_id}", timeout=30).json())
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()

        second = server(chain, tmp_path, marketplace).start()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                order = httpx.get(f"{second.url}/api/orders/{order_id}", timeout=30).json()
                if stage_of(order) == "settled":
                    break
                time.sleep(0.2)
            assert stage_of(order) == "settled", f"killed at {killed_at}; now {order}"
            logs = {
                name: chain.w3.eth.get_logs(
                    {"address": market.address, "fromBlock": 0, "topics": [market.events[name]().topic, order_id]}
                )
                for name in ("Matched", "Completed", "Settled")
            }
            assert {name: len(found) for name, found in logs.items()} == {"Matched": 1, "Completed": 1, "Settled": 1}
            jobs = list((tmp_path / "executor").rglob("*.exit"))
            assert len(jobs) == 1, f"killed at {killed_at}: job exit files {jobs}"
            after = {p: int(market.functions.balanceOf(p).call()) for p in before}
            # Exactly one payout: the bill less what went back (the fees are prorated to the time used).
            bill, paid = order["bill"], order["settlement"]
            assert before[buyer.address] - after[buyer.address] == int(bill["total"]) - int(paid["refunded"])
            assert after[provider.address] - before[provider.address] == int(paid["compute_fee"])
            assert sum(after.values()) - sum(before.values()) == -int(paid["platform_fee"])  # fees sit apart
        finally:
            second.stop()
