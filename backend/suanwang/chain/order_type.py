"""The Order's fields and Solidity types, in the struct's order: the one place the order's shape is written
in Python (contracts/interfaces/IMarketTypes.sol is its source). The EIP-712 type (chain/market.py), the
packed form (chain/bill.py), the API's order model and scripts/deploy.py all derive from it. Standard
library only, so brownie's environment imports it too."""

from __future__ import annotations

ORDER_TYPE: list[dict[str, str]] = [
    {"name": "buyer", "type": "address"},
    {"name": "matcher", "type": "address"},
    {"name": "logicMcu", "type": "uint64"},
    {"name": "parallelMcu", "type": "uint64"},
    {"name": "neuralMcu", "type": "uint64"},
    {"name": "memoryMib", "type": "uint32"},
    {"name": "gpuModel", "type": "uint16"},
    {"name": "gpuCount", "type": "uint16"},
    {"name": "gpuMilli", "type": "uint16"},
    {"name": "minTier", "type": "uint8"},
    {"name": "duration", "type": "uint32"},
    {"name": "minRunSeconds", "type": "uint32"},
    {"name": "maxPricePerCuHour", "type": "uint128"},
    {"name": "maxTotal", "type": "uint128"},
    {"name": "maxTransit", "type": "uint128"},
    {"name": "maxLatencyMs", "type": "uint32"},
    {"name": "minBandwidthMbps", "type": "uint32"},
    {"name": "autoAccept", "type": "bool"},
    {"name": "expiry", "type": "uint40"},
    {"name": "nonce", "type": "uint64"},
    {"name": "epoch", "type": "uint32"},
    {"name": "specDigest", "type": "bytes32"},
    {"name": "serviceId", "type": "bytes32"},
    {"name": "apnId", "type": "uint64"},
    {"name": "apnSlaClass", "type": "uint8"},
]
ORDER_FIELDS = tuple(f["name"] for f in ORDER_TYPE)


def packed_width(solidity_type: str) -> int:
    """Bytes a field of `solidity_type` takes in Market's packed order: its type's own width."""
    if solidity_type == "address":
        return 20
    if solidity_type == "bool":
        return 1
    if solidity_type.startswith("bytes"):
        return int(solidity_type.removeprefix("bytes"))
    return int(solidity_type.removeprefix("uint")) // 8
