"""Signed order submissions as a client sends them to POST /api/orders (one builder for every test)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from suanwang.chain.market import sign_order
from tests.support.stack import Chain

ACCESS_POINT = "Cernet/Shanghai"  # a router of the default marketplace's network


def signed_submission(
    buyer: Any,
    chain_id: int,
    market: str,
    expiry: int,
    nonce: int,
    access_point: str = ACCESS_POINT,
    command: Sequence[str] = ("true",),
) -> dict[str, Any]:
    """A small CPU order signed by `buyer` for `market`, with the job `command` (the API may still find no
    node for it: acceptance is what this builds)."""
    order: dict[str, Any] = {
        "buyer": buyer.address,
        "logicMcu": 2_000,
        "parallelMcu": 0,
        "neuralMcu": 0,
        "memoryMib": 256,
        "gpuModel": 0,
        "gpuCount": 0,
        "minTier": 0,
        "duration": 600,
        "maxPricePerCuHour": 2 * 10**18,
        "maxTotal": 100 * 10**18,
        "maxLatencyMs": 0,
        "minBandwidthMbps": 10,
        "autoAccept": True,
        "expiry": expiry,
        "nonce": nonce,
    }
    signature = sign_order(order, buyer.key.hex(), chain_id, market)
    # Wei amounts travel as decimal strings (the API's rule for every amount).
    body = {**order, "maxPricePerCuHour": str(order["maxPricePerCuHour"]), "maxTotal": str(order["maxTotal"])}
    return {"order": body, "signature": signature, "access_point": access_point, "job": {"command": list(command)}}


def chain_submission(chain: Chain, buyer: Any, nonce: int, command: Sequence[str] = ("true",)) -> dict[str, Any]:
    """`signed_submission` for `chain`'s market, valid for an hour of chain time."""
    expiry = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    return signed_submission(
        buyer, chain.deployment.chain_id, chain.deployment.contracts["Market"], expiry, nonce, command=command
    )
