"""Economic attacks (issue 14): one party trying to take value another never agreed to give.

Each test performs an attack as issue 14 writes it. An attack either reverts with the exact custom error
(compared byte for byte with the revert data) and leaves every book as it was (escrow balances, unlocked
stakes, the escrow's token balance, platform fees), or it runs and ends in exactly the balances the test
states. Attack 8 (governance) is in test_governance_attacks.py. Each defeated attack is reported through
attacks.defeated (bench/results/reliability.json, section economic_attacks, with
`make reliability-contracts`).
"""

from __future__ import annotations

import brownie
import pytest
from attacks import defeated, record_if_asked
from brownie import compile_source
from conftest import (
    ARBITER,
    ARBITRATION_PERIOD,
    BUYER,
    DISPUTE_BOND_BPS,
    DISPUTE_WINDOW,
    FOUNDER_TARIFF,
    MATCHER,
    MIN_STAKE,
    NETWORK_TEAM_TARIFF,
    NODE_PRICE,
    OPERATOR,
    START_WINDOW,
    TERMS,
    UNSTAKE_DELAY,
    entry,
    key_of,
    make_bill,
    make_order,
    packed_bill,
    sign_order,
    transit_fee_of,
    transit_for,
)
from revert_data import describe, encode_error, error_types, eth_call

TOKEN = 10**18
COMPUTE = 6 * TOKEN  # the default order: 3 CU for an hour at 2 tokens per CU-hour
PLATFORM = COMPUTE * 250 // 10_000
TRANSIT = FOUNDER_TARIFF + NETWORK_TEAM_TARIFF  # the default order reserves 1 Gbps for an hour
TOTAL = COMPUTE + PLATFORM + TRANSIT
SURPLUS = 10 * TOKEN  # stake above the node's requirement: backs one default deal (6 tokens), not two
CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
ACCEPTED, STARTED, COMPLETED, DISPUTED, SETTLED, REFUNDED, CANCELLED = 3, 4, 5, 6, 7, 8, 9


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    record_if_asked()


@pytest.fixture(scope="module")
def types(Federation, NodeRegistry, Market, MarketExtension, SettlementToken):
    return error_types([Federation, NodeRegistry, Market, MarketExtension, SettlementToken])


@pytest.fixture
def paid(stage2, market, cloud_team):
    """Stage 2 (conftest's `stage2`) with the cloud team's stake SURPLUS above its node's minimum: enough
    to lock one default deal's compute fee, not two."""
    market.deposit(SURPLUS, {"from": cloud_team})
    market.stake(SURPLUS, {"from": cloud_team})


class Books:
    """Everything an attack could move: each party's escrow balance and unlocked stake, the escrow's
    tokens, the platform fees."""

    def __init__(self, market, token, parties):
        self.market, self.token, self.parties = market, token, parties

    def read(self) -> dict:
        m = self.market
        books = {f"balance {p.address}": int(m.balanceOf(p)) for p in self.parties}
        books.update({f"stake {p.address}": int(m.stakeOf(p)) for p in self.parties})
        books["escrow tokens"] = int(self.token.balanceOf(m))
        books["platform fees"] = int(m.platformFees())
        return books


@pytest.fixture
def books(market, token, founder, cloud_team, network_team, buyer, arbiter):
    return Books(market, token, [founder, cloud_team, network_team, buyer, arbiter])


def refused(types, books, sender, fn, args, error: tuple) -> None:
    """`fn(*args)` from `sender` reverts with exactly `error` (name, arguments) and moves nothing."""
    before = books.read()
    outcome = eth_call(sender.address, fn._address, fn.encode_input(*args))
    expected = encode_error(types, *error)
    assert not outcome[0] and outcome[1] == expected, f"{describe(types, outcome)}, expected {error}"
    with brownie.reverts():
        fn(*args, {"from": sender})
    assert books.read() == before


def seat(market, operator) -> int:
    return int(market.seatOf(operator)[1])


def signed_entry(market, order, key, bill):
    return entry(market, order, sign_order(market, order, key), bill)


# --------------------------------------------------------------- 1. a matcher inflates the bill


def test_a_matcher_cannot_inflate_the_transit_bill(types, books, market, federation, founder, network_team, buyer,
                                                   accounts, node_id, new_order, token, cloud_team):
    """Stage 3. The network team is an operator and also a matcher: it re-submits the buyer's signed order,
    names its own seat twice, inflates its fee, drops the node's operator or bills past the buyer's cap."""
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    federation.setRoles(network_team, OPERATOR | MATCHER, {"from": founder})
    token.approve(market, 2**256 - 1, {"from": cloud_team})
    market.deposit(MIN_STAKE[1] + SURPLUS, {"from": cloud_team})
    market.stake(MIN_STAKE[1] + SURPLUS, {"from": cloud_team})
    token.approve(market, 2**256 - 1, {"from": buyer})
    market.deposit(1000 * TOKEN, {"from": buyer})
    key = key_of(buyer, accounts)
    rogue, fee_bps = network_team, federation.platformFeeBps()
    own, node_operator = seat(market, network_team), seat(market, founder)

    # The buyer named its matcher (the founder's): nobody else may submit its order.
    named = new_order(matcher=founder.address, maxTotal=10 * TOKEN, maxTransit=TOKEN)
    bill = make_bill(named, node_id, NODE_PRICE, fee_bps, transit_for(market, named, founder, network_team))
    oid = market.orderId(named)
    refused(types, books, rogue, market.matchSigned, [signed_entry(market, named, key, bill)],
            ("MatcherNotAllowed", oid, rogue.address, founder.address))

    # An order open to any matcher, billed dishonestly.
    open_order = new_order(nonce=1, maxTotal=10 * TOKEN, maxTransit=TOKEN)
    oid = market.orderId(open_order)
    fair = transit_fee_of(open_order, NETWORK_TEAM_TARIFF)
    founder_fee = transit_fee_of(open_order, FOUNDER_TARIFF)
    twice = make_bill(open_order, node_id, NODE_PRICE, fee_bps,
                      [(founder.address, founder_fee), (rogue.address, fair), (rogue.address, fair)])
    refused(types, books, rogue, market.matchSigned, [signed_entry(market, open_order, key, twice)],
            ("DuplicateTransitSeat", own))
    inflated = make_bill(open_order, node_id, NODE_PRICE, fee_bps,
                         [(founder.address, founder_fee), (rogue.address, fair + TOKEN // 2)])
    refused(types, books, rogue, market.matchSigned, [signed_entry(market, open_order, key, inflated)],
            ("TransitFeeMismatch", own, fair, fair + TOKEN // 2))
    off_path = make_bill(open_order, node_id, NODE_PRICE, fee_bps, [(rogue.address, fair)])
    refused(types, books, rogue, market.matchSigned, [signed_entry(market, open_order, key, off_path)],
            ("NodeOperatorNotOnPath", node_id, node_operator))
    # A seat nobody holds (the bill packs seat 95 by hand: no operator holds it).
    honest = make_bill(open_order, node_id, NODE_PRICE, fee_bps, transit_for(market, open_order, founder, network_team))
    packed = bytearray(packed_bill(market, honest))
    packed[65 + 1] = 95
    order_and_sig = signed_entry(market, open_order, key, honest)[: -len(packed)]
    refused(types, books, rogue, market.matchSigned, [order_and_sig + bytes(packed)],
            ("MissingRole", "0x" + "00" * 20, OPERATOR, 0))
    # The operator raises its tariff and bills it exactly: the buyer's transit cap still holds.
    market.setTransitTariff(5 * TOKEN, {"from": rogue})
    steep = make_bill(open_order, node_id, NODE_PRICE, fee_bps,
                      [(founder.address, founder_fee), (rogue.address, transit_fee_of(open_order, 5 * TOKEN))])
    refused(types, books, rogue, market.matchSigned, [signed_entry(market, open_order, key, steep)],
            ("TransitAboveLimit", founder_fee + 5 * TOKEN, TOKEN))
    market.setTransitTariff(NETWORK_TEAM_TARIFF, {"from": rogue})

    # The honest bill matches, and the buyer pays exactly it.
    before = int(market.balanceOf(buyer))
    market.matchSigned(signed_entry(market, open_order, key, honest), {"from": rogue})
    assert before - int(market.balanceOf(buyer)) == TOTAL
    defeated("matcher_inflates_the_bill", "MatcherNotAllowed / DuplicateTransitSeat / TransitFeeMismatch / "
             "NodeOperatorNotOnPath / MissingRole / TransitAboveLimit; the buyer paid exactly the honest bill")


# ------------------------------------------------------- 2. a stage-1 order is charged in stage 2


def test_an_order_signed_in_stage_one_cannot_be_charged_in_stage_two(types, books, market, federation, founder,
                                                                      network_team, buyer, accounts, node_id,
                                                                      new_order, token, cloud_team):
    signed = new_order()  # epoch 0: stage 1, nothing paid
    posted = new_order(nonce=1)
    market.postOrder(posted, {"from": buyer})  # locks nothing in stage 1
    federation.advanceStage(2, {"from": founder})
    assert federation.epoch() == 1
    token.approve(market, 2**256 - 1, {"from": cloud_team})
    market.deposit(MIN_STAKE[1] + SURPLUS, {"from": cloud_team})
    market.stake(MIN_STAKE[1] + SURPLUS, {"from": cloud_team})
    token.approve(market, 2**256 - 1, {"from": buyer})
    market.deposit(1000 * TOKEN, {"from": buyer})
    fee_bps = federation.platformFeeBps()
    bill = make_bill(signed, node_id, NODE_PRICE, fee_bps, transit_for(market, signed, founder, network_team))
    refused(types, books, founder, market.matchSigned, [signed_entry(market, signed, key_of(buyer, accounts), bill)],
            ("EpochMismatch", market.orderId(signed), 0, 1))
    bill = make_bill(posted, node_id, NODE_PRICE, fee_bps, transit_for(market, posted, founder, network_team))
    refused(types, books, founder, market.matchPosted, [posted, 0, packed_bill(market, bill)],
            ("EpochMismatch", market.orderId(posted), 0, 1))
    # The posted order's way out: the buyer cancels it and gets back the nothing it locked.
    before = books.read()
    tx = market.cancelOrder(posted, 0, {"from": buyer})
    assert tx.events["OrderCancelled"]["refunded"] == 0 and books.read() == before
    assert int(market.statusOf(market.orderId(posted))[0]) == CANCELLED
    defeated("stage_one_order_charged_in_stage_two", "EpochMismatch (signed and posted orders); the posted one is "
             "cancelled with nothing moved")


# ------------------------------------------------------------- 3. a seller escapes its stake


def test_one_minimum_stake_does_not_back_concurrent_deals(types, books, market, paid, founder, network_team, buyer,
                                                          cloud_team, accounts, node_id, new_order, federation):
    fee_bps = federation.platformFeeBps()
    key = key_of(buyer, accounts)
    first = new_order()
    market.matchSigned(signed_entry(market, first, key, make_bill(
        first, node_id, NODE_PRICE, fee_bps, transit_for(market, first, founder, network_team))), {"from": founder})
    assert market.stakeOf(cloud_team) == MIN_STAKE[1] + SURPLUS - COMPUTE  # the deal's lock is out of reach
    second = new_order(nonce=1)
    bill = make_bill(second, node_id, NODE_PRICE, fee_bps, transit_for(market, second, founder, network_team))
    refused(types, books, founder, market.matchSigned, [signed_entry(market, second, key, bill)],
            ("InsufficientStake", cloud_team.address, MIN_STAKE[1] + SURPLUS - COMPUTE, MIN_STAKE[1], COMPUTE))
    defeated("one_stake_backs_many_deals", "InsufficientStake: each deal locks its compute fee of the stake")


def test_a_seller_that_retires_and_unstakes_is_still_slashed(types, books, market, registry, paid, matched,
                                                             founder, cloud_team, buyer, outsider, chain):
    deal, _ = matched()
    assert int(market.statusOf(deal[0])[0]) == ACCEPTED
    registry.retireNode(1, {"from": cloud_team})  # its requirement drops to 0
    free = MIN_STAKE[1] + SURPLUS - COMPUTE
    assert market.stakeOf(cloud_team) == free
    refused(types, books, cloud_team, market.requestUnstake, [free + COMPUTE],
            ("StakeRequired", cloud_team.address, free, 0, free + COMPUTE))
    tx = market.requestUnstake(free, {"from": cloud_team})
    ready = tx.events["UnstakeRequested"]["readyAt"]
    refused(types, books, cloud_team, market.claimUnstake, [], ("UnstakeNotReady", cloud_team.address, free, ready))
    chain.sleep(UNSTAKE_DELAY + 1)
    market.claimUnstake({"from": cloud_team})
    market.withdraw(market.balanceOf(cloud_team), {"from": cloud_team})
    # Past its start deadline the seller is a no-show: the timeout slashes the whole lock.
    chain.sleep(START_WINDOW + 1)
    buyer_before, fees_before = int(market.balanceOf(buyer)), int(market.platformFees())
    tx = market.timeout(*deal, {"from": outsider})
    assert tx.events["Slashed"]["toBuyer"] == COMPUTE // 2 and tx.events["Slashed"]["toPlatform"] == COMPUTE // 2
    assert int(market.balanceOf(buyer)) == buyer_before + TOTAL + COMPUTE // 2
    assert int(market.platformFees()) == fees_before + COMPUTE // 2
    assert market.stakeOf(cloud_team) == 0
    defeated("seller_escapes_its_stake", "StakeRequired (the lock is not unstakable), UnstakeNotReady before the "
             "delay; the timeout slashes the full lock: half to the buyer")


# -------------------------------------------------------------------- 4. a seller declines late


def test_a_seller_cannot_decline_after_its_start_deadline(types, books, market, paid, matched, cloud_team, buyer,
                                                          outsider, chain):
    deal, _ = matched()
    deadline = int(market.statusOf(deal[0])[1])
    chain.sleep(START_WINDOW + 1)
    chain.mine(1)  # the refusal is read with eth_call against the latest block: mine one past the deadline
    refused(types, books, cloud_team, market.decline, list(deal), ("DeadlinePassed", deal[0], deadline))
    tx = market.timeout(*deal, {"from": outsider})
    assert tx.events["Slashed"]["toBuyer"] == COMPUTE // 2
    defeated("seller_declines_late", "DeadlinePassed; the timeout slashes")


# ------------------------------------------------------------------ 5. a seller paid for no work


def test_a_seller_cannot_complete_before_the_minimum_run(types, books, market, paid, matched, cloud_team):
    deal, _ = matched(minRunSeconds=1800)
    tx = market.start(*deal, {"from": cloud_team})
    started = tx.timestamp
    refused(types, books, cloud_team, market.complete, [*deal, CID], ("TooEarlyToComplete", deal[0], started + 1800))
    defeated("seller_completes_at_once", "TooEarlyToComplete before the order's minRunSeconds")


def test_a_seller_completing_at_once_is_paid_only_the_time_used(market, paid, matched, cloud_team, buyer, outsider,
                                                                chain, founder, network_team):
    deal, _ = matched()
    buyer_before = int(market.balanceOf(buyer))
    market.start(*deal, {"from": cloud_team})
    used = int(market.complete(*deal, CID, {"from": cloud_team}).events["Completed"]["usedSeconds"])
    assert used <= 2  # the blocks of start and complete
    chain.sleep(DISPUTE_WINDOW + 1)  # the buyer is offline: anyone settles
    tx = market.settle(*deal, {"from": outsider})
    compute_paid, platform_paid = COMPUTE * used // 3600, PLATFORM * used // 3600
    assert market.balanceOf(cloud_team) == compute_paid
    assert int(market.balanceOf(buyer)) == buyer_before + COMPUTE - compute_paid + PLATFORM - platform_paid
    assert tx.events["Settled"]["transitTotal"] == TRANSIT  # the path was reserved for the whole duration
    defeated("seller_paid_for_no_work", f"paid {used} s of 3,600 (compute fee prorated); the rest refunded")


# ------------------------------------------------------------ 6. disputes pay whoever is online


@pytest.fixture
def disputed(market, paid, matched, cloud_team, buyer, chain):
    """A deal run for its whole hour, completed and disputed by the buyer."""
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    chain.sleep(3600)
    market.complete(*deal, CID, {"from": cloud_team})
    before = int(market.balanceOf(buyer))
    tx = market.dispute(*deal, {"from": buyer})
    bond = TOTAL * DISPUTE_BOND_BPS // 10_000
    assert tx.events["Disputed"]["bond"] == bond and int(market.balanceOf(buyer)) == before - bond
    chain.mine(1)  # the arbiter is drawn from the hash of the block after the dispute's
    return deal, bond


def test_no_party_the_matcher_a_transit_operator_or_the_fee_recipient_rules(types, books, market, federation,
                                                                            disputed, founder, network_team,
                                                                            arbiter, buyer, cloud_team, chain):
    deal, _ = disputed
    federation.setRoles(network_team, OPERATOR | ARBITER, {"from": founder})  # a transit operator of the deal
    federation.setRoles(buyer, BUYER | ARBITER, {"from": founder})
    for _ in range(3):  # three draws, 256 blocks apart: only the neutral arbiter is ever drawn
        assert market.arbiterOf(*deal) == arbiter
        for conflicted in (founder, network_team, buyer):  # matcher and fee recipient; operator; buyer
            refused(types, books, conflicted, market.resolve, [*deal, False],
                    ("NotDrawnArbiter", deal[0], conflicted.address, arbiter.address))
        chain.mine(256)
    defeated("conflicted_arbiter_rules", "NotDrawnArbiter: the draw skips parties, matcher, transit operators "
             "and the fee recipient")


def test_a_buyer_win_slashes_nothing_and_pays_the_fee_recipient_nothing(market, disputed, arbiter, buyer,
                                                                        cloud_team, founder, network_team):
    deal, bond = disputed
    fees, buyer_before = int(market.platformFees()), int(market.balanceOf(buyer))
    operators = int(market.balanceOf(founder)), int(market.balanceOf(network_team))
    tx = market.resolve(*deal, False, {"from": arbiter})
    assert "Slashed" not in tx.events
    assert int(market.platformFees()) == fees  # the fee recipient gains nothing when the buyer wins
    assert int(market.balanceOf(buyer)) == buyer_before + COMPUTE + PLATFORM + bond
    assert (int(market.balanceOf(founder)), int(market.balanceOf(network_team))) == (
        operators[0] + FOUNDER_TARIFF, operators[1] + NETWORK_TEAM_TARIFF)  # the path was delivered
    assert market.stakeOf(cloud_team) == MIN_STAKE[1] + SURPLUS and market.balanceOf(cloud_team) == 0
    assert int(market.statusOf(deal[0])[0]) == REFUNDED
    defeated("fee_recipient_profits_from_buyer_wins", "a buyer win refunds compute and platform fees and the bond, "
             "slashes nothing: the platform earns nothing from it")


def test_a_seller_win_takes_the_buyers_bond(market, disputed, arbiter, cloud_team):
    deal, bond = disputed
    market.resolve(*deal, True, {"from": arbiter})
    assert market.balanceOf(cloud_team) == COMPUTE + bond
    defeated("disputes_cost_nothing", "the buyer's bond (disputeBondBps of the total) goes to the seller it "
             "disputed in vain")


def test_no_ruling_splits_the_time_used_and_favours_nobody(market, disputed, buyer, cloud_team, outsider, chain):
    deal, bond = disputed
    buyer_before, fees = int(market.balanceOf(buyer)), int(market.platformFees())
    chain.sleep(ARBITRATION_PERIOD + 1)
    tx = market.timeout(*deal, {"from": outsider})
    assert market.balanceOf(cloud_team) == COMPUTE // 2
    assert int(market.platformFees()) == fees + PLATFORM // 2
    assert int(market.balanceOf(buyer)) == buyer_before + COMPUTE - COMPUTE // 2 + PLATFORM - PLATFORM // 2 + bond
    assert int(market.statusOf(deal[0])[0]) == SETTLED and "Slashed" not in tx.events
    defeated("offline_arbiter_favours_the_buyer", "no ruling: compute and platform fees of the time used split "
             "half and half, the bond returned, nobody slashed")


# ------------------------------------------------------ 7. a buyer's failing job drains the provider


def test_a_job_that_exits_non_zero_is_delivered_and_paid(market, paid, matched, cloud_team, buyer, chain):
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    chain.sleep(600)  # `exit 1` after ten minutes: the provider completes with a result that says so
    failed_result = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    used = int(market.complete(*deal, failed_result, {"from": cloud_team}).events["Completed"]["usedSeconds"])
    tx = market.settle(*deal, {"from": buyer})
    assert "Slashed" not in tx.events
    assert market.balanceOf(cloud_team) == COMPUTE * used // 3600
    assert market.stakeOf(cloud_team) == MIN_STAKE[1] + SURPLUS  # the lock is back; nothing slashed
    defeated("failing_job_drains_the_provider", "a job that ran is completed whatever its exit code and paid for "
             "its time; only missed deadlines slash")


# --------------------------------------------------------------------- the SLA rule


def test_a_transit_operator_reports_a_broken_latency_and_the_buyer_gets_transit_back(
        types, books, market, paid, matched, cloud_team, buyer, network_team, outsider, chain):
    deal, _ = matched()  # maxLatencyMs 20
    market.start(*deal, {"from": cloud_team})
    refused(types, books, outsider, market.reportSlaBreach, [*deal, 50_000],
            ("Unauthorized", deal[0], outsider.address, "0x" + "00" * 20))
    refused(types, books, network_team, market.reportSlaBreach, [*deal, 20_000],
            ("SlaNotBroken", deal[0], 20_000, 20))
    market.reportSlaBreach(*deal, 31_500, {"from": network_team})
    chain.sleep(3600)
    market.complete(*deal, CID, {"from": cloud_team})
    before = int(market.balanceOf(buyer))
    tx = market.settle(*deal, {"from": buyer})
    assert tx.events["Settled"]["transitTotal"] == 0 and int(market.balanceOf(buyer)) == before + TRANSIT
    assert market.balanceOf(network_team) == 0


# ------------------------------------------------------------------------- 9. smaller ones


def test_a_buyer_voids_every_signed_order_at_once(types, books, market, paid, founder, network_team, buyer,
                                                  accounts, node_id, new_order, federation):
    key, fee_bps = key_of(buyer, accounts), federation.platformFeeBps()
    old = new_order(nonce=7)
    tx = market.cancelAllOrders({"from": buyer})
    floor = tx.events["NonceFloorRaised"]["floor"]
    assert floor == 1 << 40 and market.nonceFloorOf(buyer) == floor
    bill = make_bill(old, node_id, NODE_PRICE, fee_bps, transit_for(market, old, founder, network_team))
    refused(types, books, founder, market.matchSigned, [signed_entry(market, old, key, bill)],
            ("NonceBelowFloor", market.orderId(old), 7, floor))
    fresh = new_order(nonce=floor)
    bill = make_bill(fresh, node_id, NODE_PRICE, fee_bps, transit_for(market, fresh, founder, network_team))
    market.matchSigned(signed_entry(market, fresh, key, bill), {"from": founder})
    defeated("no_way_to_cancel_all_orders", "cancelAllOrders raises the nonce floor: NonceBelowFloor")


def test_zero_timing_parameters_are_refused(types, Market, federation, registry, token, founder):
    for field in range(len(TERMS)):
        terms = list(TERMS)
        terms[field] = 0
        with brownie.reverts():
            Market.deploy(federation, registry, token, terms, {"from": founder})
        data = Market.deploy.encode_input(federation, registry, token, terms)
        outcome = brownie.web3.provider.make_request("eth_call", [{"from": founder.address, "data": data}, "latest"])
        revert = bytes.fromhex(outcome["error"]["data"][2:])
        assert revert == encode_error(types, "InvalidTerms", field)
    defeated("zero_timing_parameters", "InvalidTerms(field) at deployment")


PERMITLESS_TOKEN = """
// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// An ERC-20 without ERC-2612 whose fallback accepts any call (as WETH9's does).
contract PermitlessToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    fallback() external payable {}

    function mint(address to, uint256 amount) external { balanceOf[to] += amount; }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        return true;
    }
}
"""


def test_a_permit_that_a_fallback_swallows_does_not_spend_the_owners_allowance(types, Market, federation, registry,
                                                                               founder, buyer, outsider):
    token = compile_source(PERMITLESS_TOKEN).PermitlessToken.deploy({"from": founder})
    market = Market.deploy(federation, registry, token, TERMS, {"from": founder})
    token.mint(buyer, 100 * TOKEN, {"from": founder})
    token.approve(market, 100 * TOKEN, {"from": buyer})
    args = [buyer, 100 * TOKEN, 2**40, 27, "0x" + "11" * 32, "0x" + "22" * 32]
    outcome = eth_call(outsider.address, market.address, market.depositWithPermit.encode_input(*args))
    assert not outcome[0] and outcome[1] == encode_error(types, "PermitFailed", buyer.address, outsider.address)
    with brownie.reverts():
        market.depositWithPermit(*args, {"from": outsider})
    assert token.allowance(buyer, market) == 100 * TOKEN and market.balanceOf(buyer) == 0
    market.depositWithPermit(*args, {"from": buyer})  # the owner itself may go on with its allowance
    assert market.balanceOf(buyer) == 100 * TOKEN
    defeated("permit_swallowed_by_a_fallback", "PermitFailed: a permit counts only when it consumed a nonce")


GAS_BURNING_WALLET = """
// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// An ERC-1271 buyer that burns every unit of gas it is given.
contract GasBurningWallet {
    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        uint256 i;
        while (gasleft() > 0) { i += 1; }
        return bytes4(uint32(i));
    }
}
"""


def test_a_gas_burning_contract_buyer_fails_alone_in_a_batch(types, market, paid, federation, founder, network_team,
                                                             buyer, accounts, node_id, new_order, chain):
    wallet = compile_source(GAS_BURNING_WALLET).GasBurningWallet.deploy({"from": founder})
    federation.advanceStage(3, {"from": founder})  # buyers from outside the operator are admitted from stage 3
    federation.admit(wallet, BUYER, "hostile wallet", {"from": founder})
    fee_bps = federation.platformFeeBps()
    hostile = make_order(wallet.address, expiry=chain.time() + 3600, epoch=federation.epoch())
    honest = new_order(logicMcu=1, parallelMcu=0, neuralMcu=0)
    entries = entry(market, hostile, b"\x01" * 65, make_bill(
        hostile, node_id, NODE_PRICE, fee_bps, transit_for(market, hostile, founder, network_team)))
    entries += signed_entry(market, honest, key_of(buyer, accounts), make_bill(
        honest, node_id, NODE_PRICE, fee_bps, transit_for(market, honest, founder, network_team)))
    tx = market.matchSignedBatch(entries, {"from": founder, "gas_limit": 3_000_000})
    assert int(tx.return_value) == 1 and len(tx.events["Matched"]) == 1
    reason = tx.events["MatchFailed"][0]["reason"]
    reason = bytes.fromhex(reason[2:]) if isinstance(reason, str) else bytes(reason)
    assert reason == encode_error(types, "InvalidSignature", market.orderId(hostile), wallet.address)
    defeated("hostile_erc1271_sinks_a_batch", "the wallet's check is capped at 50,000 gas: it fails alone "
             "(InvalidSignature) and the batch goes on")
