"""A reorg that takes back an order's match before the indexer confirmed it: the order is matched again
and its deal runs to settlement once (found by the fault campaign, tests/faults)."""

from __future__ import annotations

import time
from collections.abc import Callable

from suanwang.devstack import rpc, wait_until
from tests.backend.lifecycle.conftest import Market

CONFIRMATIONS = 3


def test_an_order_whose_match_a_reorg_undid_is_matched_again_and_settled_once(
    market_factory: Callable[..., Market],
) -> None:
    market = market_factory(confirmations=CONFIRMATIONS)
    contract = market.chain.contract("Market")
    rpc(market.chain.anvil.url, "anvil_mine", [hex(CONFIRMATIONS)])  # the provider's node is confirmed
    head = market.chain.w3.eth.block_number
    wait_until(lambda: market.client.get("/health").json()["indexed_block"] == head - CONFIRMATIONS, "index", 60)
    submitted = market.submit(market.order(), "Cernet/Shanghai", ["true"])
    order_id = submitted["id"]
    first = market.wait_for(order_id, lambda o: o["state"] == "on_chain")
    assert first["deal"] is None  # no block came after the match's: the indexer has not confirmed it
    rpc(market.chain.anvil.url, "anvil_reorg", [1, []])  # the match's block replaced: its transaction is gone
    assert contract.functions.statusOf(order_id).call()[0] == 0

    deadline = time.monotonic() + 90
    order = first
    while time.monotonic() < deadline and (order["deal"] or {}).get("status") != "settled":
        rpc(market.chain.anvil.url, "evm_mine")  # blocks keep coming, so matches get confirmed
        time.sleep(0.1)
        order = market.client.get(f"/api/orders/{order_id}").json()
    assert (order["deal"] or {}).get("status") == "settled", order
    logs = {
        name: market.chain.w3.eth.get_logs(
            {"address": contract.address, "fromBlock": 0, "topics": [contract.events[name]().topic, order_id]}
        )
        for name in ("Matched", "Settled")
    }
    assert {name: len(found) for name, found in logs.items()} == {"Matched": 1, "Settled": 1}
