"""Signed order submissions as a client sends them to POST /api/orders (one builder for every test)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from suanwang.api.routes.orders import job_document
from suanwang.chain.market import sign_order
from suanwang.content import spec_digest
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


def full_order(order: dict[str, Any], command: Sequence[str] | None = None) -> dict[str, Any]:
    """`order` with ORDER_DEFAULTS for the fields it leaves out, and the specDigest of `command` when given."""
    out = {**ORDER_DEFAULTS, **order}
    if command is not None:
        out["specDigest"] = spec_digest(job_document(list(command)))
    return out


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
) -> dict[str, Any]:
    """A small CPU order signed by `buyer` for `market` in value epoch `epoch`, with the job `command` (its
    digest signed as specDigest; the API may still find no node for it: acceptance is what this builds)."""
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
        },
        command,
    )
    signature = sign_order(order, buyer.key.hex(), chain_id, market)
    return {
        "order": as_body(order),
        "signature": signature,
        "access_point": access_point,
        "job": {"command": list(command)},
    }


def chain_submission(chain: Chain, buyer: Any, nonce: int, command: Sequence[str] = ("true",)) -> dict[str, Any]:
    """`signed_submission` for `chain`'s market in its current epoch, valid for an hour of chain time."""
    expiry = int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    return signed_submission(
        buyer,
        chain.deployment.chain_id,
        chain.deployment.contracts["Market"],
        expiry,
        nonce,
        command=command,
        epoch=chain_epoch(chain),
    )
