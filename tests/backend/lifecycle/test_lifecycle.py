"""The whole lifecycle on a real chain with the local executor: signed order -> engine -> match on
chain -> job -> result CID on chain -> settlement that pays the provider and two transit operators
exactly the bill; the API and the chain agree on every balance."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from suanwang.chain.market import sign_order
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
    # ... and the bytes are served under it.
    result = market.client.get(f"/api/content/{job['result_cid']}")
    assert result.status_code == 200 and result.content == f"computed by {submitted['id']}\n".encode()
    missing = market.client.get(f"/api/content/{compute_cid(b'never stored')}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "content_not_found"
    assert market.client.get("/api/content/not-a-cid").json()["error"]["code"] == "invalid_cid"
    # The service stamped when it saw the match mined and the job run, in that order, after the order came.
    created, matched, running = (
        datetime.fromisoformat(t) for t in (done["created_at"], done["matched_at"], job["running_at"])
    )
    assert created <= matched <= running
    assert all(t.utcoffset() == timedelta(0) for t in (created, matched, running))  # UTC, zone given


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
        },
    )
    assert response.status_code == 200, response.text
    quote = response.json()
    assert [c["node_id"] for c in quote["candidates"]] == [market.node_id]
    candidate = quote["candidates"][0]
    assert candidate["route"]["path"][0] == "Cernet/Shanghai" and candidate["route"]["path"][-1] == "Cernet/Beijing"
    order = {
        **quote["order"],
        "maxPricePerCuHour": int(quote["order"]["maxPricePerCuHour"]),
        "maxTotal": int(quote["order"]["maxTotal"]),
    }
    submitted = market.submit(order, "Cernet/Shanghai", ["true"])
    assert submitted["id"] == quote["order_id"]
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
        order = market.order(nonce=nonce)
        signature = sign_order(order, market.buyer.key.hex(), deployment.chain_id, deployment.contracts["Market"])
        body = {**order, "maxPricePerCuHour": str(order["maxPricePerCuHour"]), "maxTotal": str(order["maxTotal"])}
        items.append(
            {"order": body, "signature": signature, "access_point": "Cernet/Shanghai", "job": {"command": ["true"]}}
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
