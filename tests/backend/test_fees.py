"""suanwang.fees: the market's fee arithmetic (equality with the contract itself is checked by
tests/contracts/test_fees_differential.py; these pin the worked figures and the rounding)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanwang import fees
from suanwang.chain import bill

TOKEN = 10**18
UINT96, UINT128, UINT32, UINT16 = 2**96 - 1, 2**128 - 1, 2**32 - 1, 2**16 - 1


def test_one_cu_for_one_hour_costs_the_price():
    assert fees.compute_fee(3 * TOKEN, 1000, 3600) == 3 * TOKEN


def test_compute_fee_rounds_down():
    # 1 base unit per CU-hour for 1 mCU over 1 s is 1 / 3,600,000 of a base unit.
    assert fees.compute_fee(1, 1, 1) == 0
    assert fees.compute_fee(1, 1000, 3599) == 0
    assert fees.compute_fee(7, 1000, 3600) == 7


def test_platform_fee_is_basis_points_rounded_down():
    assert fees.platform_fee(10_000, 250) == 250
    assert fees.platform_fee(39, 250) == 0
    assert fees.platform_fee(TOKEN, 10_000) == TOKEN


def test_transit_fee_is_tariff_per_gbps_hour():
    # 1 Gbps (1000 Mbps) for an hour pays the tariff; 1 Mbps for 1 s pays 1 / 3,600,000 of it.
    assert fees.transit_fee(5 * TOKEN, 1000, 3600) == 5 * TOKEN
    assert fees.transit_fee(3_599_999, 1, 1) == 0


def test_the_bill_module_uses_these_functions():
    assert bill.compute_fee is fees.compute_fee
    assert bill.platform_fee is fees.platform_fee
    assert bill.transit_fee is fees.transit_fee


@given(st.integers(0, UINT96), st.integers(0, UINT128), st.integers(0, UINT32))
def test_the_widest_compute_fee_fits_the_width_splits_assumes(price, mcu, duration):
    # Splits computes it unchecked because the product stays below 2**256; platformFee takes it as uint240.
    assert price * mcu * duration < 2**256
    assert fees.compute_fee(price, mcu, duration) < 2**235


@given(st.integers(0, 2**256 - 1))
def test_slash_shares_sum_to_the_slash_and_the_buyer_gets_half_rounded_down(slashed):
    to_buyer, to_platform = fees.slash_shares(slashed)
    assert to_buyer + to_platform == slashed
    assert to_buyer == slashed // 2 and to_platform - to_buyer in (0, 1)


def test_used_seconds_is_capped_at_the_duration():
    assert fees.used_seconds(1000, 1600, 3600, 0) == 600
    assert fees.used_seconds(1000, 1000 + 10_000, 3600, 0) == 3600


def test_completing_before_the_minimum_run_is_refused():
    assert fees.used_seconds(1000, 1300, 3600, 300) == 300
    with pytest.raises(ValueError, match="TooEarlyToComplete"):
        fees.used_seconds(1000, 1299, 3600, 300)


def test_a_deal_run_to_its_end_pays_the_whole_bill():
    assert fees.prorated_fees(1_000, 25, 3600, 3600) == (1_000, 25)


def test_proration_rounds_each_fee_down_then_halves():
    assert fees.prorated_fees(1_000, 25, 1, 3) == (333, 8)
    assert fees.prorated_fees(1_000, 25, 1, 3, halved=True) == (166, 4)


@given(st.integers(0, UINT128), st.integers(0, UINT128), st.integers(1, UINT32), st.data())
def test_prorated_fees_never_exceed_the_billed_fees(compute, platform, duration, data):
    used = data.draw(st.integers(0, duration))
    paid_compute, paid_platform = fees.prorated_fees(compute, platform, used, duration)
    assert paid_compute <= compute and paid_platform <= platform


def test_proration_needs_used_within_the_duration():
    with pytest.raises(ValueError):
        fees.prorated_fees(1, 1, 5, 4)
    with pytest.raises(ValueError):
        fees.prorated_fees(1, 1, 0, 0)


@pytest.mark.parametrize("price", [0, 1, 15 * 10**17, 2**96 - 1])
def test_price_of_recovers_the_price_a_compute_fee_was_charged_at(price: int) -> None:
    mcu, duration = 5_000, 600
    charged = fees.price_of(fees.compute_fee(price, mcu, duration), mcu, duration)
    assert price - charged in (0, 1)
