"""A job goes to the executor on the match's receipt, before the index has confirmed the match. When a
reorganisation then undoes the match, the service cancels that job and matches the order again, and the
new match's job runs under a key of its own: the chain stays the source of truth, nothing runs twice
for one match."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from suanwang.devstack import rpc
from tests.backend.lifecycle.conftest import Market


def test_a_job_sent_on_the_match_receipt_is_cancelled_when_a_reorg_undoes_the_match(
    market_factory: Callable[..., Market], tmp_path: Path
) -> None:
    market = market_factory(confirmations=3)  # Anvil automines: no block confirms the match by itself
    rpc(market.chain.anvil.url, "anvil_mine", ["0x3"])  # confirms the node's registration
    deadline = time.monotonic() + 60
    while market.client.get(f"/api/nodes/{market.node_id}").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    contract = market.chain.contract("Market")
    submitted = market.submit(market.order(), "Geant2012/FR", ["sleep", "20"])
    order_id = submitted["id"]

    first = market.wait_for(order_id, lambda o: o["job"] is not None)
    assert first["state"] == "on_chain"
    assert first["deal"] is None  # not yet confirmed, so not indexed: the job went out on the receipt
    key = f"deal-{order_id[2:18]}"
    assert (tmp_path / "executor" / f"{key}.sh").exists()

    rpc(market.chain.anvil.url, "anvil_reorg", [1, []])  # the match's block replaced by an empty one
    assert contract.functions.statusOf(order_id).call()[0] == 0
    rpc(market.chain.anvil.url, "anvil_mine", ["0x5"])  # and the index now past it

    def second_job() -> list[Path]:  # the new match's job, under a key of its own (`-m<match attempt>`)
        return list((tmp_path / "executor").glob(f"{key}-m*.sh"))

    rematched = market.wait_for(order_id, lambda o: bool(second_job()) and o["job"] is not None, 60)
    assert len(second_job()) == 1
    assert rematched["state"] == "on_chain"
    assert contract.functions.statusOf(order_id).call()[0] != 0  # matched again, on chain
    assert rematched["job"]["state"] in ("pending", "running", "completed")
    deadline = time.monotonic() + 30  # the first job was cancelled: its wrapper recorded how it ended
    while not (tmp_path / "executor" / f"{key}.exit").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "executor" / f"{key}.cancelled").exists()
    assert (tmp_path / "executor" / f"{key}.exit").exists()
    matched_logs = market.chain.w3.eth.get_logs(
        {"address": contract.address, "fromBlock": 0, "topics": [contract.events["Matched"]().topic, order_id]}
    )
    assert len(matched_logs) == 1  # the undone match is gone from the chain; the new one stands
