"""The whole lifecycle on a real chain with the local executor: signed order -> engine -> match on
chain -> job -> result CID on chain -> settlement that pays the provider its compute fee prorated to the
time used and every transit operator on the path (the node's operator included) its published tariff for
the whole duration; the API and the chain agree on every balance. A job that exits non-zero is delivered
too: paid, not slashed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from suanwang.chain.bill import transit_fee
from suanwang.chain.market import sign_order
from suanwang.content import MAX_CONTENT_BYTES, compute_cid
from tests.backend.lifecycle.conftest import Market
from tests.support.orders import as_body, full_order, job_body, node_public_key

DURATION_S = 600
MIN_RUN_S = 2  # so every settled deal below is billed some time (complete comes no earlier)


def delivered(market: Market, order_id: str) -> None:
    """Waits for the order's job to have its result while the deal is started, then lets MIN_RUN_S of chain
    time pass, so the service may complete it (the market refuses a completion before minRunSeconds)."""
    market.wait_for(
        order_id, lambda o: (o["deal"] or {}).get("status") == "started" and bool((o["job"] or {}).get("result_cid"))
    )
    market.let_chain_time_pass(MIN_RUN_S)


def settled_exactly(market: Market, done: dict[str, Any], before: dict[str, int]) -> dict[str, int]:
    """Checks a settled order against its bill and the chain: the compute and platform fees prorated to the
    time the chain billed (used_seconds, at least minRunSeconds), each transit line paid in full, the rest
    back to the buyer, and every escrow balance moved by exactly that. Returns the transit lines."""
    bill, settlement, used = done["bill"], done["settlement"], done["deal"]["used_seconds"]
    assert settlement["outcome"] == "settled" and MIN_RUN_S <= used <= DURATION_S
    transit = {line["operator"]: int(line["fee"]) for line in bill["transit"]}
    compute, platform = int(bill["compute_fee"]) * used // DURATION_S, int(bill["platform_fee"]) * used // DURATION_S
    assert (int(settlement["compute_fee"]), int(settlement["platform_fee"])) == (compute, platform) and compute > 0
    assert int(settlement["transit_total"]) == sum(transit.values())
    assert int(settlement["refunded"]) == int(bill["total"]) - compute - platform - sum(transit.values())
    assert (int(settlement["slashed_to_buyer"]), int(settlement["slashed_to_platform"])) == (0, 0)
    after = {p: market.escrow(p) for p in before}
    assert after[market.provider.address] - before[market.provider.address] == compute
    for operator, fee in transit.items():
        assert after[operator] - before[operator] == fee
    paid = compute + platform + sum(transit.values())
    assert before[market.buyer.address] - after[market.buyer.address] == paid
    return transit


def test_signed_order_is_run_and_settled_paying_the_time_used_and_every_transit_operator(
    market_factory: Callable[..., Market],
) -> None:
    market = market_factory()
    founder = market.chain.deployment.deployer  # the node's network operator (NodeSpec.operator)
    parties = [market.provider.address, market.buyer.address, founder, *(a.address for a in market.transit.values())]
    before = {p: market.escrow(p) for p in set(parties)}
    order = market.order(duration=DURATION_S, minRunSeconds=MIN_RUN_S)
    submitted = market.submit(order, "Geant2012/FR", ["sh", "-c", "echo computed by $SUANWANG_DEAL"])
    assert submitted["state"] == "new"
    delivered(market, submitted["id"])

    done = market.wait_for(submitted["id"], lambda o: (o["deal"] or {}).get("status") == "settled")

    bill = done["bill"]
    assert done["route"]["operators"] == ["Geant2012", "Cernet"]
    # Transit: each operator on the path and the node's own operator, each at the tariff it published.
    transit = settled_exactly(market, done, before)
    payees = [market.transit["Geant2012"].address, market.transit["Cernet"].address, founder]
    assert list(transit) == payees
    tariffs = market.chain.contract("Market").functions.transitTariffOf
    for operator, fee in transit.items():
        assert fee == transit_fee(int(tariffs(operator).call()), order["minBandwidthMbps"], DURATION_S) > 0
    # The compute fee billed is the contract's formula: price x CU x hours.
    assert int(bill["compute_fee"]) == 15 * 10**17 * (4_000 + 1_000) * DURATION_S // 3_600_000
    # The result document says how the job ended and names its output, and the chain carries its CID.
    job = done["job"]
    assert job["state"] == "completed" and job["exit_code"] == 0
    assert done["deal"]["result_cid"] == job["result_cid"]
    # Both are sealed to the buyer, which fetches them with a signed request and opens them.
    document, output = market.opened_result(job["result_cid"])
    assert (document["exit_code"], document["deal"], document["output_truncated"]) == (0, submitted["id"], False)
    assert output == f"computed by {submitted['id']}\n".encode()
    missing = market.fetch(compute_cid(b"never stored"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "content_not_found"
    assert market.fetch("not-a-cid").json()["error"]["code"] == "invalid_cid"
    # The service stamped when it saw the match mined and the job run, in that order, after the order came.
    created, matched, running = (
        datetime.fromisoformat(t) for t in (done["created_at"], done["matched_at"], job["running_at"])
    )
    assert created <= matched <= running
    assert all(t.utcoffset() == timedelta(0) for t in (created, matched, running))  # UTC, zone given


def test_a_job_that_exits_non_zero_is_delivered_and_paid_not_slashed(market_factory: Callable[..., Market]) -> None:
    """Attack 7 of issue 14: a buyer whose job fails on purpose must not earn from the provider's stake. The
    job ran to its end on the bought resources, so it is completed with a result that records its exit code,
    settled, and the provider paid for the time used; nobody is slashed."""
    market = market_factory()
    market_contract = market.chain.contract("Market")
    founder = market.chain.deployment.deployer
    parties = {market.provider.address, market.buyer.address, founder, *(a.address for a in market.transit.values())}
    before = {p: market.escrow(p) for p in parties}
    stake_before = int(market_contract.functions.stakeOf(market.provider.address).call())
    order = market.order(duration=DURATION_S, minRunSeconds=MIN_RUN_S)
    submitted = market.submit(order, "Cernet/Shanghai", ["sh", "-c", "echo partial work; exit 1"])
    delivered(market, submitted["id"])

    done = market.wait_for(submitted["id"], lambda o: (o["deal"] or {}).get("status") in ("settled", "refunded"))

    assert done["deal"]["status"] == "settled"
    job = done["job"]
    assert (job["state"], job["exit_code"]) == ("failed", 1) and done["deal"]["result_cid"] == job["result_cid"]
    document, output = market.opened_result(job["result_cid"])
    assert document["exit_code"] == 1 and "code 1" in document["reason"]
    assert output == b"partial work\n"
    settled_exactly(market, done, before)  # the provider paid for the time used, the buyer the rest back
    # The deal's stake lock came back whole: not slashed.
    assert int(market_contract.functions.stakeOf(market.provider.address).call()) == stake_before


def test_an_order_nothing_can_serve_is_explained(market_factory: Callable[..., Market]) -> None:
    market = market_factory()
    order = market.order(gpuModel=21, gpuCount=8)  # the only node has no GPU
    submitted = market.submit(order, "Cernet/Beijing", ["true"])
    done = market.wait_for(submitted["id"], lambda o: o["state"] == "unmatched")
    assert done["deal"] is None
    assert done["explanation"], done
    assert "GPU" in " ".join(done["explanation"])


def test_a_quote_lists_the_node_with_its_bill_and_the_signed_quote_is_what_gets_matched(
    market_factory: Callable[..., Market],
) -> None:
    market = market_factory()
    response = market.client.post(
        "/api/orders/quote",
        json={
            "buyer": market.buyer.address,
            "logic_mcu": 2_000,
            "memory_mib": 512,
            "duration_s": 300,
            "max_price_per_cu_hour": str(2 * 10**18),
            "max_total": str(100 * 10**18),
            "access_point": "Cernet/Shanghai",
            "min_bandwidth_mbps": 50,
            "min_run_s": 1,
        },
    )
    assert response.status_code == 200, response.text
    quote = response.json()
    assert [c["node_id"] for c in quote["candidates"]] == [market.node_id]
    candidate = quote["candidates"][0]
    # The key to seal the job to is the one the provider derives from its account key.
    provider_key = node_public_key(market.provider, market.chain.deployment.chain_id)
    assert (candidate["encryption_key"], candidate["sealable"]) == ("0x" + provider_key.hex(), True)
    assert 0 < quote["max_result_bytes"] < MAX_CONTENT_BYTES
    assert candidate["route"]["path"][0] == "Cernet/Shanghai" and candidate["route"]["path"][-1] == "Cernet/Beijing"
    # The quoted order is in the market's epoch, at or above the buyer's nonce floor; the buyer fills in the
    # digest of the specification it seals (the quote has none: the service never sees the job).
    federation, market_contract = market.chain.contract("Federation"), market.chain.contract("Market")
    assert quote["order"]["epoch"] == federation.functions.epoch().call()
    assert int(quote["order"]["nonce"]) >= market_contract.functions.nonceFloorOf(market.buyer.address).call()
    assert quote["order"]["specDigest"] == "0x" + "00" * 32
    assert quote["order"]["minRunSeconds"] == 1 and quote["typed_data"]["types"]["Order"][-1]["name"] == "apnSlaClass"
    order = {**quote["order"], **{k: int(quote["order"][k]) for k in ("maxPricePerCuHour", "maxTotal", "maxTransit")}}
    submitted = market.submit(order, "Cernet/Shanghai", ["true"])
    assert submitted["id"] != quote["order_id"]  # the signed order names the sealed job's digest
    delivered(market, submitted["id"])  # its minRunSeconds of chain time
    done = market.wait_for(submitted["id"], lambda o: (o["deal"] or {}).get("status") == "settled")
    assert done["bill"] == candidate["bill"]


def test_bad_quote_input_names_the_field(market_factory: Callable[..., Market]) -> None:
    market = market_factory()
    base = {
        "buyer": market.buyer.address,
        "logic_mcu": 1000,
        "duration_s": 60,
        "max_price_per_cu_hour": "1",
        "max_total": "1",
        "access_point": "Cernet/Beijing",
    }
    for change, field in [
        ({"access_point": "Atlantis"}, "access_point"),
        ({"duration_s": 0}, "duration_s"),
        ({"max_total": "-5"}, "max_total"),
        ({"logic_mcu": 0}, "logic_mcu"),
        ({"logicMcu": 5}, "logicMcu"),  # the order's own spelling: not a quote field, refused by name
        ({"min_run_s": 61}, "min_run_s"),  # longer than the duration
        ({"gpu_milli": 1001}, "gpu_milli"),
        ({"service_id": "0x12"}, "service_id"),
        ({"job": {"command": ["true"]}}, "job"),  # a plain job never goes to the service: refused by name
    ]:
        response = market.client.post("/api/orders/quote", json={**base, **change})
        assert response.status_code in (400, 422), response.text
        assert response.json()["error"]["fields"][0]["field"] == field, response.text


def test_batch_clearing_mode_matches_the_waiting_orders_together(market_factory: Callable[..., Market]) -> None:
    market = market_factory(matching="batch", clearing_interval_ms=300)
    ids = [market.submit(market.order(nonce=n, logicMcu=1_000), "Cernet/Shanghai", ["true"])["id"] for n in range(6)]
    done = [market.wait_for(i, lambda o: (o["deal"] or {}).get("status") == "settled") for i in ids]
    assert {o["node_id"] for o in done} == {market.node_id}
    # Orders waiting together were cleared together and sent in one transaction.
    assert len({o["match_tx"] for o in done}) < len(ids)


def test_a_batch_of_signed_orders_is_checked_order_by_order(market_factory: Callable[..., Market]) -> None:
    market = market_factory()
    deployment = market.chain.deployment
    items = []
    for nonce in range(3):
        envelope = market.sealed(["true"])
        order = full_order(market.order(nonce=nonce), envelope)
        signature = sign_order(order, market.buyer.key.hex(), deployment.chain_id, deployment.contracts["Market"])
        items.append(
            {
                "order": as_body(order),
                "signature": signature,
                "access_point": "Cernet/Shanghai",
                "job": job_body(envelope),
            }
        )
    items[1]["order"]["nonce"] = 99  # no longer what the buyer signed
    items.append(items[0])  # the same signed order twice in one batch is one order
    response = market.client.post("/api/orders/batch", json={"orders": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 3
    assert [r["error"] is None for r in body["results"]] == [True, False, True, True]
    assert body["results"][1]["error"]["fields"][0]["field"] == "orders.1.signature"
    assert body["results"][3]["id"] == body["results"][0]["id"]
    assert market.client.get("/api/orders", params={"limit": 10}).json()["total"] == 2
    for result in (body["results"][0], body["results"][2]):
        market.wait_for(result["id"], lambda o: (o["deal"] or {}).get("status") == "settled")
