"""Signed order submissions as a client sends them to POST /api/orders (one builder for every test): the
job's specification sealed to the nodes that may run it and to the buyer (docs/content.md, Privacy)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from suanwang.chain.market import sign_order
from suanwang.content import spec_digest
from suanwang.privacy import node_key_pair, result_key_pair
from suanwang.privacy.documents import seal_spec
from tests.support.stack import Chain

ACCESS_POINT = "Cernet/Shanghai"  # a router of the default marketplace's network
TOKEN = 10**18
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = "0x" + "00" * 32
# The Order's fields a test rarely cares about, at the values a plain order signs (IMarket.Order).
ORDER_DEFAULTS: dict[str, Any] = {
    "matcher": ZERO_ADDRESS,
    "gpuMilli": 0,
    "minRunSeconds": 0,
    "maxTransit": 10 * TOKEN,
    "epoch": 0,
    "specDigest": ZERO_BYTES32,
    "serviceId": ZERO_BYTES32,
    "apnId": 0,
    "apnSlaClass": 0,
}
AMOUNTS = ("maxPricePerCuHour", "maxTotal", "maxTransit")


# A node to seal to in tests that only place orders (nothing runs them): node 1 of a seller whose key this is.
PLACEHOLDER_SELLER_KEY = "0x" + "5e" * 32
PLACEHOLDER_NODES = ((1, node_key_pair(PLACEHOLDER_SELLER_KEY, 31337).public_key),)


def node_public_key(seller: Any, chain_id: int) -> bytes:
    """The encryption key `seller` (an eth-account account) registers its nodes with (privacy.keys)."""
    return node_key_pair(seller.key, chain_id).public_key


def sealed_job(
    command: Sequence[str], buyer: Any, chain_id: int, nodes: Sequence[tuple[int, bytes]] = PLACEHOLDER_NODES
) -> bytes:
    """The specification of `command` as `buyer` seals it: to each (node id, encryption key) and to itself."""
    return seal_spec(command, result_key_pair(buyer.key, chain_id), nodes)


def chain_nodes(chain: Chain) -> list[tuple[int, bytes]]:
    """Every node on `chain` with an encryption key, as a buyer's client seals to its quote's candidates."""
    registry = chain.contract("NodeRegistry")
    nodes = []
    for node_id in range(1, int(registry.functions.nodeCount().call()) + 1):
        spec, _owner, _status = registry.functions.getNode(node_id).call()
        if any(spec[-1]):
            nodes.append((node_id, bytes(spec[-1])))
    return nodes


def full_order(order: dict[str, Any], envelope: bytes | None = None) -> dict[str, Any]:
    """`order` with ORDER_DEFAULTS for the fields it leaves out, and the specDigest of `envelope` when given."""
    out = {**ORDER_DEFAULTS, **order}
    if envelope is not None:
        out["specDigest"] = spec_digest(envelope)
    return out


def job_body(envelope: bytes) -> dict[str, str]:
    """The submission's `job`: the sealed specification in base64."""
    return {"envelope": base64.b64encode(envelope).decode()}


def as_body(order: dict[str, Any]) -> dict[str, Any]:
    """The order as the API takes it: wei amounts as decimal strings (the API's rule for every amount)."""
    return {**order, **{name: str(order[name]) for name in AMOUNTS}}


def chain_epoch(chain: Chain) -> int:
    """The value epoch a signed order must name now (Federation.epoch)."""
    return int(chain.contract("Federation").functions.epoch().call())


def signed_submission(
    buyer: Any,
    chain_id: int,
    market: str,
    expiry: int,
    nonce: int,
    access_point: str = ACCESS_POINT,
    command: Sequence[str] = ("true",),
    epoch: int = 0,
    matcher: str = ZERO_ADDRESS,
    nodes: Sequence[tuple[int, bytes]] = PLACEHOLDER_NODES,
    **fields: Any,
) -> dict[str, Any]:
    """A small CPU order (or what `fields` make of it) signed by `buyer` for `market` in value epoch `epoch`,
    with the job `command` sealed to `nodes` (its digest signed as specDigest; the API may still find no
    node for it: acceptance is what this builds)."""
    envelope = sealed_job(command, buyer, chain_id, nodes)
    order = full_order(
        {
            "buyer": buyer.address,
            "logicMcu": 2_000,
            "parallelMcu": 0,
            "neuralMcu": 0,
            "memoryMib": 256,
            "gpuModel": 0,
            "gpuCount": 0,
            "minTier": 0,
            "duration": 600,
            "maxPricePerCuHour": 2 * TOKEN,
            "maxTotal": 100 * TOKEN,
            "maxLatencyMs": 0,
            "minBandwidthMbps": 10,
            "autoAccept": True,
            "expiry": expiry,
            "nonce": nonce,
            "epoch": epoch,
            "matcher": matcher,
            **fields,
        },
        envelope,
    )
    signature = sign_order(order, buyer.key.hex(), chain_id, market)
    return {"order": as_body(order), "signature": signature, "access_point": access_point, "job": job_body(envelope)}


def chain_submission(
    chain: Chain, buyer: Any, nonce: int, command: Sequence[str] = ("true",), **fields: Any
) -> dict[str, Any]:
    """`signed_submission` for `chain`'s market in its current epoch, valid for an hour of chain time, sealed to
    every node on the chain that has an encryption key (the placeholder node when none has)."""
    expiry = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    return signed_submission(
        buyer,
        chain.deployment.chain_id,
        chain.deployment.contracts["Market"],
        expiry,
        nonce,
        command=command,
        epoch=chain_epoch(chain),
        nodes=chain_nodes(chain) or PLACEHOLDER_NODES,
        **fields,
    )
