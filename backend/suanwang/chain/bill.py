"""The bill of a match, computed exactly as the market checks it (contracts/libraries/Splits.sol)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
