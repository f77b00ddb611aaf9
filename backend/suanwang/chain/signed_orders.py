"""The signed orders a match carried, read back from the chain: a provider learns what the buyer signed
(above all the job's specification digest) from the match transaction itself, trusting no service.

A matchSigned / matchSignedBatch entry is the packed order, the signature's length (2 bytes), the
signature, and the packed bill (nodeId 32 | computeFee 16 | platformFee 16 | n 1 | n seats | n fees of
16): see `chain.bill.pack_entry`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import eth_abi
from eth_utils import to_checksum_address

from suanwang.chain.bill import _BYTES_FIELDS, _PACKED_ORDER, PACKED_ORDER_BYTES
from suanwang.chain.contracts import MarketContract
from suanwang.chain.market import order_id
from suanwang.errors import InputError, NotFoundError

BILL_HEAD_BYTES = 32 + 16 + 16


def unpack_order(packed: bytes) -> dict[str, Any]:
    """The inverse of `pack_order`: the order's fields by name (addresses checksummed, bytes32 as 0x-hex)."""
    if len(packed) != PACKED_ORDER_BYTES:
        raise InputError(f"a packed order is {PACKED_ORDER_BYTES} bytes, got {len(packed)}", field="order")
    out: dict[str, Any] = {}
    at = 0
    for name, size in _PACKED_ORDER:
        raw = packed[at : at + size]
        at += size
        if name in _BYTES_FIELDS:
            out[name] = "0x" + raw.hex()
        elif size == 20:
            out[name] = to_checksum_address(raw)
        elif name == "autoAccept":
            out[name] = bool(raw[0])
        else:
            out[name] = int.from_bytes(raw, "big")
    return out


def entries(data: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """(order, signature) of each entry of matchSignedBatch's `entries` (or matchSigned's `entry`)."""
    at = 0
    while at < len(data):
        order = unpack_order(data[at : at + PACKED_ORDER_BYTES])
        at += PACKED_ORDER_BYTES
        length = int.from_bytes(data[at : at + 2], "big")
        signature = data[at + 2 : at + 2 + length]
        at += 2 + length + BILL_HEAD_BYTES
        transit = data[at] if at < len(data) else 0
        at += 1 + 17 * transit
        yield order, signature


class NotSignedMatch(InputError):
    """The deal was matched by a call that carries no signed order (a posted order's match): for good."""


def match_transaction(market: MarketContract, deal_id: str, block: int) -> str:
    """The hash of the transaction whose Matched log of `deal_id` is in `block`. NotFoundError when there
    is none there (yet, or any more: the block may have been replaced)."""
    topic = str(market.contract.events.Matched().topic)
    logs = market.contract.w3.eth.get_logs(
        {"address": market.contract.address, "fromBlock": block, "toBlock": block, "topics": [topic, deal_id]}
    )
    if not logs:
        raise NotFoundError(f"no Matched log of {deal_id} in block {block}", field="deal_id")
    return "0x" + bytes(logs[0]["transactionHash"]).hex()


def signed_orders_in(market: MarketContract, tx_hash: str, chain_id: int) -> dict[str, dict[str, Any]]:
    """Order id (its EIP-712 digest) -> order, for every signed order a matchSigned(Batch) transaction
    carries: one decoding and one hash per order, however many of its deals are asked about."""
    tx = market.contract.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    data = bytes(tx["input"])
    function = market.contract.get_function_by_selector(data[:4])
    if function.fn_name not in ("matchSignedBatch", "matchSigned"):
        raise NotSignedMatch(f"{tx_hash} is a {function.fn_name} call, which carries no signed order", field="deal_id")
    (payload,) = eth_abi.decode(["bytes"], data[4:])
    return {order_id(order, chain_id, market.address): order for order, _signature in entries(payload)}
