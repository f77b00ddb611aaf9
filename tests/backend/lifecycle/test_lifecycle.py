"""The whole lifecycle on a real chain with the local executor: signed order -> engine -> match on
chain -> job -> result CID on chain -> settlement that pays the provider and two transit operators
exactly the bill; the API and the chain agree on every balance."""

from __future__ import annotations

from collections.abc import Callable

from suanwang.content import compute_cid
from tests.backend.lifecycle.conftest import Market


def test_signed_order_is_run_and_settled_paying_provider_and_two_transit_operators(
    market_factory: Callable[..., Market],
) -> None:
    market = market_factory()
    parties = [market.provider.address, market.buyer.address, *(a.address for a in market.transit.values())]
    before = {p: market.escrow(p) for p in parties}
    order = market.order()
    submitted = market.submit(order, "Geant2012/FR", ["sh", "-c", "echo computed by $SUANWANG_DEAL"])
    assert submitted["state"] == "new"

    done = market.wait_for(submitted["id"], lambda o: (o["deal"] or {}).get("status") == "settled")

    bill = done["bill"]
    assert done["route"]["operators"] == ["Geant2012", "Cernet"]
    transit = {line["operator"]: int(line["fee"]) for line in bill["transit"]}
    assert set(transit) == {market.transit["Geant2012"].address, market.transit["Cernet"].address}
    assert all(fee > 0 for fee in transit.values())
    # The compute fee is the contract's formula: price x CU x hours.
    assert int(bill["compute_fee"]) == 15 * 10**17 * (4_000 + 1_000) * 600 // 3_600_000
    # Settlement paid exactly the bill, as the chain's Settled event says and the API reports.
    settlement = done["settlement"]
    assert settlement["outcome"] == "settled"
    assert int(settlement["compute_fee"]) == int(bill["compute_fee"])
    assert int(settlement["transit_total"]) == sum(transit.values())
    assert int(settlement["platform_fee"]) == int(bill["platform_fee"])
    after = {p: market.escrow(p) for p in parties}
    assert after[market.provider.address] - before[market.provider.address] == int(bill["compute_fee"])
    for operator, fee in transit.items():
        assert after[operator] - before[operator] == fee
    assert before[market.buyer.address] - after[market.buyer.address] == int(bill["total"])
    # The result's CID is what the job printed, and the chain carries it.
    job = done["job"]
    assert job["state"] == "completed" and job["exit_code"] == 0
    assert done["deal"]["result_cid"] == job["result_cid"]
    assert job["result_cid"] == compute_cid(f"computed by {submitted['id']}\n".encode())


def test_an_order_nothing_can_serve_is_explained(market_factory: Callable[..., Market]) -> None:
    market = market_factory()
    order = market.order(gpuModel=21, gpuCount=8)  # the only node has no GPU
    submitted = market.submit(order, "Cernet/Beijing", ["true"])
    done = market.wait_for(submitted["id"], lambda o: o["state"] == "unmatched")
    assert done["deal"] is None
    assert done["explanation"], done
    assert "GPU" in " ".join(done["explanation"])
