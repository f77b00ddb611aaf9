"""The bill of a match, computed exactly as the market checks it (contracts/libraries/Splits.sol)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

MCU_SECONDS_PER_CU_HOUR = 1000 * 3600  # Splits.MS_PER_HOUR_MCU
BPS = 10_000


def compute_fee(price_per_cu_hour: int, total_mcu: int, duration_s: int) -> int:
    """price x CU x hours, rounded down, in token base units."""
    return price_per_cu_hour * total_mcu * duration_s // MCU_SECONDS_PER_CU_HOUR


def platform_fee(compute: int, fee_bps: int) -> int:
    return compute * fee_bps // BPS


@dataclass(frozen=True)
class Bill:
    node_id: int
    compute_fee: int
    platform_fee: int
    transit_operators: tuple[str, ...]
    transit_fees: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.compute_fee + self.platform_fee + sum(self.transit_fees)

    def as_struct(self) -> dict[str, Any]:
        return {
            "nodeId": self.node_id,
            "computeFee": self.compute_fee,
            "platformFee": self.platform_fee,
            "transitOperators": list(self.transit_operators),
            "transitFees": list(self.transit_fees),
        }


def make_bill(
    order: Mapping[str, Any],
    node_id: int,
    price_per_cu_hour: int,
    fee_bps: int,
    transit: Sequence[tuple[str, int]] = (),
) -> Bill:
    total_mcu = int(order["logicMcu"]) + int(order["parallelMcu"]) + int(order["neuralMcu"])
    compute = compute_fee(price_per_cu_hour, total_mcu, int(order["duration"]))
    return Bill(
        node_id, compute, platform_fee(compute, fee_bps), tuple(a for a, _ in transit), tuple(f for _, f in transit)
    )


# Market's Matched event packs the deal (IMarket.Matched): (field, bytes) in order, then n transit operators
# (20 bytes each) and n transit fees (16 bytes each).
_PACKED_DEAL = (
    ("buyer", 20),
    ("seller", 20),
    ("matcher", 20),
    ("nodeId", 32),
    ("logicMcu", 8),
    ("parallelMcu", 8),
    ("neuralMcu", 8),
    ("duration", 4),
    ("valueless", 1),
    ("computeFee", 16),
    ("platformFee", 16),
    ("status", 1),
    ("deadline", 5),
)
_ADDRESSES = frozenset({"buyer", "seller", "matcher"})


def unpack_deal(deal_id: str, packed: bytes) -> dict[str, Any]:
    """The fields of a Matched event's packed `deal` by name (the IMarket.Deal's, with `id` as given, plus
    `matcher`, `status` and `deadline`); addresses checksummed, integers as int."""
    out: dict[str, Any] = {"id": deal_id}
    at = 0
    for name, size in _PACKED_DEAL:
        raw = packed[at : at + size]
        at += size
        if name in _ADDRESSES:
            out[name] = to_checksum_address(raw)
        elif name == "valueless":
            out[name] = raw != b"\x00"
        else:
            out[name] = int.from_bytes(raw, "big")
    n = packed[at]
    at += 1
    out["transitOperators"] = [to_checksum_address(packed[at + 20 * i : at + 20 * (i + 1)]) for i in range(n)]
    at += 20 * n
    out["transitFees"] = [int.from_bytes(packed[at + 16 * i : at + 16 * (i + 1)], "big") for i in range(n)]
    if at + 16 * n != len(packed):
        raise ValueError(f"a packed deal with {n} transit operators is {at + 16 * n} bytes, not {len(packed)}")
    return out
