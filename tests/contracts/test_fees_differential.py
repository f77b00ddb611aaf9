"""The Python fee arithmetic (backend/suanwang/fees.py) returns exactly what the contracts compute.

Splits' functions are called through contracts/test/SplitsHarness.sol at the extremes of their widths
(uint96 price, uint128 mCU, uint32 duration, uint240 amount, uint16 bps, uint256 slash) and at a few
hundred seeded random points; the proration Market applies at completion and settlement
(Market.complete, MarketBase._payout) is internal, so it is checked end to end through real deals.
scripts/deploy.py's make_bill, which the other contract tests bill with, is checked against the same
harness.
"""

import itertools
import random

import pytest
from conftest import make_bill, matched_of
from deploy import ORDER_FIELDS, make_order

from suanwang import fees  # on the path through deploy.py (conftest imports it); standard library only

UINT96, UINT128, UINT32, UINT240, UINT16, UINT256 = (2**bits - 1 for bits in (96, 128, 32, 240, 16, 256))
SEED = 15  # issue 15: fixed, so a failure is reproducible
RANDOM_CASES = 300
ZERO = "0x" + "00" * 20
MIN_RUN = 600
DURATION = 3600  # the default order's
CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"

# The edges of each width and of the rounding (3,600,000 mCU-seconds per CU-hour, 10,000 bps).
PRICES = [0, 1, 2, 3_599_999, 3_600_000, 10**18, 2**48, 2**95, UINT96 - 1, UINT96]
MCUS = [0, 1, 999, 1000, 3_600_000, 2**64, 2**127, UINT128 - 1, UINT128]
DURATIONS = [0, 1, 3599, 3600, 2**31, UINT32 - 1, UINT32]
AMOUNTS = [0, 1, 9_999, 10_000, 10**18, 2**235 - 1, UINT240 - 1, UINT240]
BPS = [0, 1, 250, 9_999, 10_000, UINT16 - 1, UINT16]
SLASHES = [0, 1, 2, 3, 10**18 + 1, UINT256 - 1, UINT256]


def _random(rng, bits):
    """A value of `bits` width, its magnitude spread evenly over the bit lengths (0 .. 2**bits - 1)."""
    return rng.getrandbits(rng.randint(0, bits)) if bits else 0


@pytest.fixture(scope="module")
def splits(SplitsHarness, accounts):
    return SplitsHarness.deploy({"from": accounts[0]})


def test_compute_fee_equals_splits_at_the_edges_of_every_width(splits):
    for price, mcu, duration in itertools.product(PRICES, MCUS, DURATIONS):
        assert fees.compute_fee(price, mcu, duration) == splits.computeFee(price, mcu, duration), (price, mcu, duration)


def test_compute_fee_equals_splits_at_random_points(splits):
    rng = random.Random(SEED)
    for _ in range(RANDOM_CASES):
        price, mcu, duration = _random(rng, 96), _random(rng, 128), _random(rng, 32)
        assert fees.compute_fee(price, mcu, duration) == splits.computeFee(price, mcu, duration), (price, mcu, duration)


def test_platform_fee_equals_splits_at_the_edges_of_every_width(splits):
    for amount, bps in itertools.product(AMOUNTS, BPS):
        assert fees.platform_fee(amount, bps) == splits.platformFee(amount, bps), (amount, bps)


def test_platform_fee_of_a_compute_fee_equals_splits_at_random_points(splits):
    # As Market._checkBill takes it: the platform fee of a compute fee, at a random fee rate.
    rng = random.Random(SEED + 1)
    for _ in range(RANDOM_CASES):
        compute = fees.compute_fee(_random(rng, 96), _random(rng, 128), _random(rng, 32))
        bps = rng.choice([rng.randint(0, 10_000), _random(rng, 16)])
        assert fees.platform_fee(compute, bps) == splits.platformFee(compute, bps), (compute, bps)


def test_slash_shares_equal_splits(splits):
    rng = random.Random(SEED + 2)
    for slashed in SLASHES + [_random(rng, 256) for _ in range(RANDOM_CASES // 3)]:
        assert fees.slash_shares(slashed) == tuple(splits.slashShares(slashed)), slashed


def test_the_deploy_scripts_bills_equal_splits(splits):
    # scripts/deploy.py's make_bill bills every other contract test; it must carry Splits' fees.
    rng = random.Random(SEED + 3)
    for _ in range(RANDOM_CASES // 3):
        mcu = [_random(rng, 64) for _ in range(3)]
        order = make_order(ZERO, 0, logicMcu=mcu[0], parallelMcu=mcu[1], neuralMcu=mcu[2], duration=_random(rng, 32))
        price, bps = _random(rng, 96), rng.randint(0, 10_000)
        _, compute, platform, _, _ = make_bill(order, 1, price, bps)
        duration = order[ORDER_FIELDS.index("duration")]
        assert compute == splits.computeFee(price, sum(mcu), duration)
        assert platform == splits.platformFee(compute, bps)


@pytest.mark.parametrize("runs_for", [MIN_RUN, 1234, DURATION - 1, DURATION, DURATION + 100])
def test_settlement_pays_the_fees_prorated_as_the_fees_module_says(market, stage2_backed, matched, cloud_team, buyer,
                                                                   chain, runs_for):
    deal, tx = matched(minRunSeconds=MIN_RUN)
    billed = matched_of(tx)
    started_at = market.start(*deal, {"from": cloud_team}).timestamp
    chain.sleep(runs_for)
    done = market.complete(*deal, CID, {"from": cloud_team})
    used = fees.used_seconds(started_at, done.timestamp, DURATION, MIN_RUN)
    assert done.events["Completed"]["usedSeconds"] == used
    settled = market.settle(*deal, {"from": buyer}).events["Settled"]
    compute_paid, platform_paid = fees.prorated_fees(billed["computeFee"], billed["platformFee"], used, DURATION)
    assert (settled["computeFee"], settled["platformFee"]) == (compute_paid, platform_paid)
