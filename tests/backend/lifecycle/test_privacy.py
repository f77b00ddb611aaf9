"""Issue 16 on a real chain: a sealed order's specification is readable only by the provider that runs it
(and its buyer), its result only by its buyer (and that provider). Another account lists the order but
fetches nothing, and even the raw bytes from the content store do not open for it. A specification the
chosen node cannot open is declined before the start deadline, not slashed; an order is matched only onto
a node it is sealed to."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from suanwang.chain.market import sign_order
from suanwang.content import LocalContentStore
from suanwang.lifecycle.jobs import EX_DATAERR
from suanwang.privacy import NotRecipientError, Recipient, node_key_pair, open_envelope, result_key_pair, seal
from suanwang.privacy.documents import ADDRESS_HEADER, SIGNATURE_HEADER, content_request_headers, open_spec
from tests.backend.lifecycle.conftest import Market
from tests.backend.lifecycle.test_lifecycle import delivered
from tests.support.orders import as_body, full_order, job_body, sealed_job
from tests.support.slurm import wait_for

SECRET = "secret-42-of-the-buyer"


def test_only_the_provider_reads_the_specification_and_only_the_buyer_the_result(
    market_factory: Callable[..., Market], tmp_path: Path
) -> None:
    market = market_factory()
    chain_id = market.chain.deployment.chain_id
    stranger = market.account("CERNET network team")  # a member, and a party of other deals: not of this one
    submitted = market.submit(market.order(minRunSeconds=2), "Cernet/Shanghai", ["sh", "-c", f"echo {SECRET}"])
    spec_cid = submitted["spec_cid"]

    # Anyone lists the order, but no listing carries its job.
    listed = market.client.get("/api/orders").json()
    assert submitted["id"] in [o["id"] for o in listed["items"]] and SECRET not in json.dumps(listed)
    # Unsigned, falsely signed, and signed by a stranger: no specification.
    unsigned = market.client.get(f"/api/content/{spec_cid}")
    assert unsigned.status_code == 401 and ADDRESS_HEADER in unsigned.json()["error"]["message"]
    forged = {**content_request_headers(stranger.key, spec_cid), ADDRESS_HEADER: market.buyer.address}
    answer = market.client.get(f"/api/content/{spec_cid}", headers=forged)
    assert answer.status_code == 401 and SIGNATURE_HEADER in answer.json()["error"]["message"]
    refused = market.fetch(spec_cid, stranger)
    assert refused.status_code == 403 and "not a party" in refused.json()["error"]["message"]
    # Even the raw bytes in the store do not open with any key the stranger can derive.
    store = LocalContentStore(tmp_path / "content")
    raw = store.get(spec_cid)
    assert SECRET.encode() not in raw
    for key in (node_key_pair(stranger.key, chain_id), result_key_pair(stranger.key, chain_id)):
        with pytest.raises(NotRecipientError):
            open_spec(raw, key)

    # The provider whose node it is sealed to reads it; so does the buyer (with its result key).
    as_provider = market.fetch(spec_cid, market.provider)
    assert as_provider.status_code == 200
    assert open_spec(as_provider.content, node_key_pair(market.provider.key, chain_id)).command[-1] == f"echo {SECRET}"
    assert open_spec(raw, result_key_pair(market.buyer.key, chain_id)).command[0] == "sh"

    delivered(market, submitted["id"])
    done = market.wait_for(submitted["id"], lambda o: (o["deal"] or {}).get("status") in ("completed", "settled"))
    result_cid = done["deal"]["result_cid"]
    document, output = market.opened_result(result_cid)  # the buyer: signed fetch, opened with its result key
    assert output == f"{SECRET}\n".encode() and document["exit_code"] == 0

    # The result and its output are ciphertext in the store, and nobody else's to fetch or open.
    assert SECRET.encode() not in store.get(result_cid) and SECRET.encode() not in store.get(document["output"])
    for cid in (result_cid, document["output"]):
        assert market.fetch(cid, stranger).status_code == 403
        assert market.fetch(cid, market.provider).status_code == 200  # the seller of the deal's node
        with pytest.raises(NotRecipientError):
            key = result_key_pair(stranger.key, chain_id)
            open_envelope(store.get(cid), key.public_key, key.private_key)


def test_a_buyer_cannot_make_a_node_decline_by_sealing_to_a_wrong_key(market_factory: Callable[..., Market]) -> None:
    """A decline counts against the provider's reliability: the service refuses a specification sealed to a
    registered node under any key but the one that node registered."""
    market = market_factory()
    chain_id = market.chain.deployment.chain_id
    wrong_key = node_key_pair(Account.create().key, chain_id).public_key
    envelope = sealed_job(["true"], market.buyer, chain_id, [(market.node_id, wrong_key)])
    wait_for("the node to be indexed", lambda: market.client.get(f"/api/nodes/{market.node_id}").status_code == 200)
    refused = place_sealed(market, envelope)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["fields"][0]["field"] == "job.envelope" and "not the key the node registered" in error["message"]


def test_a_sealed_specification_that_is_not_a_job_is_delivered_as_such_not_declined(
    market_factory: Callable[..., Market],
) -> None:
    """Sealed to the node's right key, but not a job: the provider did its part, so a job on the bought
    resources reports it and exits 65; the deal is completed (good for the provider's record), nobody is
    slashed, and the buyer pays for its minimum run."""
    market = market_factory()
    chain_id = market.chain.deployment.chain_id
    contract = market.chain.contract("Market")
    node_key = node_key_pair(market.provider.key, chain_id).public_key
    envelope = seal(b"[" * 5_000, [Recipient(node_key, node=market.node_id)])  # nested too deep to parse
    placed = place_sealed(market, envelope)
    assert placed.status_code == 201, placed.text

    done = market.wait_for(placed.json()["id"], lambda o: (o["deal"] or {}).get("status") in ("completed", "settled"))
    assert done["job"]["exit_code"] == EX_DATAERR
    # Not slashed (the stake itself moves while the open deal locks its compute fee: read the events).
    assert contract.events.Slashed().get_logs(from_block=0) == []
    assert done["deal"]["status"] != "refunded"
    result = open_envelope(*_as_node(market.fetch(done["deal"]["result_cid"], market.provider).content, market))
    assert json.loads(result)["exit_code"] == EX_DATAERR and "no job ran" in json.loads(result)["stderr_tail"]


def _as_node(content: bytes, market: Market) -> tuple[bytes, bytes, bytes]:
    key = node_key_pair(market.provider.key, market.chain.deployment.chain_id)
    return content, key.public_key, key.private_key


def test_an_order_is_matched_only_onto_a_node_it_is_sealed_to(market_factory: Callable[..., Market]) -> None:
    market = market_factory()
    chain_id = market.chain.deployment.chain_id
    elsewhere = node_key_pair(market.provider.key, chain_id).public_key
    envelope = sealed_job(["true"], market.buyer, chain_id, [(market.node_id + 100, elsewhere)])
    placed = place_sealed(market, envelope)
    assert placed.status_code == 201, placed.text

    done = market.wait_for(placed.json()["id"], lambda o: o["state"] == "unmatched")
    assert done["deal"] is None and "excluded" in " ".join(done["explanation"] or [done["reason"]])


def place_sealed(market: Market, envelope: bytes) -> Any:
    """Signs the market's order for `envelope` as its buyer and places it from the default access point."""
    deployment = market.chain.deployment
    order = full_order(market.order(), envelope)
    signature = sign_order(order, market.buyer.key.hex(), deployment.chain_id, deployment.contracts["Market"])
    body = {
        "order": as_body(order),
        "signature": signature,
        "access_point": "Cernet/Shanghai",
        "job": job_body(envelope),
    }
    return market.client.post("/api/orders", json=body)
