"""The market's fee arithmetic, the one Python copy: integers in, integers out, exactly as the contracts
compute them (contracts/libraries/Splits.sol, Market.complete and MarketBase._payout).

Every function rounds down where the contract does, so a bill built here is the bill Market checks
(ComputeFeeMismatch, PlatformFeeMismatch and TransitFeeMismatch otherwise). Within the contract's
widths (price uint96, mCU uint128, duration uint32, fee uint16 bps) the results are equal bit for bit;
tests/contracts/test_fees_differential.py checks that against Splits itself.

Standard library only: brownie's environment, which lacks the suanwang package's dependencies, loads it
too (scripts/deploy.py, tests/contracts/).
"""

from __future__ import annotations

MCU_SECONDS_PER_CU_HOUR = 1000 * 3600  # Splits.MS_PER_HOUR_MCU: mCU -> CU and seconds -> hours
BPS = 10_000  # Splits.BPS: basis points in a whole


def compute_fee(price_per_cu_hour: int, total_mcu: int, duration_s: int) -> int:
    """Splits.computeFee: price per CU-hour x (mCU / 1000) x (seconds / 3600), rounded down, in token
    base units."""
    return price_per_cu_hour * total_mcu * duration_s // MCU_SECONDS_PER_CU_HOUR


def price_of(compute: int, total_mcu: int, duration_s: int) -> int:
    """The price per CU-hour a compute fee was charged at: `compute_fee`'s inverse, rounded down (within one
    base unit of the seller's price, which the fee's own rounding loses)."""
    return compute * MCU_SECONDS_PER_CU_HOUR // (total_mcu * duration_s)


def platform_fee(compute: int, fee_bps: int) -> int:
    """Splits.platformFee: the platform's ``fee_bps`` share of a compute fee, rounded down."""
    return compute * fee_bps // BPS


def slash_shares(slashed: int) -> tuple[int, int]:
    """Splits.slashShares: (to the buyer, to the platform); the buyer gets half rounded down, the
    platform the rest, so the two always sum to ``slashed``."""
    to_buyer = slashed // 2
    return to_buyer, slashed - to_buyer


def transit_fee(tariff_per_gbps_hour: int, bandwidth_mbps: int, duration_s: int) -> int:
    """What a transit operator is owed for reserving ``bandwidth_mbps`` for ``duration_s`` at the tariff
    it published on chain (Market.transitTariffOf, per Gbps-hour), rounded down: Market._checkTransit
    requires a bill to carry exactly this (Mbps -> Gbps and seconds -> hours is the same 3,600,000)."""
    return tariff_per_gbps_hour * bandwidth_mbps * duration_s // MCU_SECONDS_PER_CU_HOUR


def used_seconds(started_at: int, completed_at: int, duration_s: int, min_run_s: int) -> int:
    """Market.complete: the seconds a completed deal is billed for, ``completed_at - started_at`` capped
    at the duration (completing early lowers the bill, finishing late does not raise it).

    The order's minRunSeconds is the floor: the contract refuses to complete before
    ``started_at + min_run_s`` (TooEarlyToComplete), and so does this (ValueError).
    """
    if completed_at < started_at + min_run_s:
        raise ValueError(
            f"a deal started at {started_at} cannot complete before {started_at + min_run_s} "
            f"(minRunSeconds {min_run_s}), got {completed_at} (TooEarlyToComplete on chain)"
        )
    return min(completed_at - started_at, duration_s)


def prorated_fees(
    compute: int, platform: int, used_s: int, duration_s: int, *, halved: bool = False
) -> tuple[int, int]:
    """MarketBase._payout for a Settled deal: (compute paid, platform paid), each billed fee x used /
    duration rounded down, then halved (rounded down) when ``halved``: a dispute no arbiter ruled on in
    time (MarketExtension.timeout, Payout.Halved). The buyer is refunded the rest of each."""
    if not 0 <= used_s <= duration_s or duration_s == 0:
        raise ValueError(f"used seconds must be in 0..duration and the duration > 0, got {used_s} of {duration_s}")
    compute_paid = compute * used_s // duration_s
    platform_paid = platform * used_s // duration_s
    if halved:
        return compute_paid // 2, platform_paid // 2
    return compute_paid, platform_paid
