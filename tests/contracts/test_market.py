import brownie
import pytest
from brownie import ZERO_ADDRESS
from conftest import (
    ACCEPT_WINDOW,
    ARBITER,
    ARBITRATION_PERIOD,
    BUYER,
    CLOUD,
    DELIVERY_GRACE,
    DISPUTE_BOND_BPS,
    DISPUTE_WINDOW,
    MATCHER,
    MIN_STAKE,
    NODE_PRICE,
    OPERATOR,
    PROVIDER,
    SPARE_STAKE,
    START_WINDOW,
    UNSTAKE_DELAY,
    entry,
    err,
    key_of,
    make_bill,
    make_spec,
    matched_of,
    packed_bill,
    plain,
    sign_order,
    transit_for,
)
from deploy import ORDER_FIELDS

COMPUTE = 6 * 10**18  # 3 CU for an hour at 2 tokens per CU-hour
PLATFORM = COMPUTE * 250 // 10_000
TRANSIT = [3 * 10**17, 2 * 10**17]
TOTAL = COMPUTE + PLATFORM + sum(TRANSIT)
BOND = TOTAL * DISPUTE_BOND_BPS // 10_000  # the buyer's dispute bond for the default deal
DURATION = 3600  # the default order's
EXPIRY = ORDER_FIELDS.index("expiry")
CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
PROPOSED, ACCEPTED, STARTED, COMPLETED, DISPUTED, SETTLED, REFUNDED, CANCELLED = 2, 3, 4, 5, 6, 7, 8, 9


def status(market, deal):
    return int(market.statusOf(deal[0])[0])


def _bill(market, order, node, operator):
    """The exact bill for `order` on `node`, its one transit operator the node's network operator."""
    return make_bill(order, node, NODE_PRICE, 250, transit_for(market, order, operator))


def _signed(market, order, key, node, operator):
    """A matchSigned entry: `order` signed with `key`, billed exactly on `node` (transit: `operator` alone)."""
    return entry(market, order, sign_order(market, order, key), _bill(market, order, node, operator))


def _run_to_the_end(chain):
    """Lets a started deal run its whole duration, so completing it bills every second of it."""
    chain.sleep(DURATION)


def held(market, token):
    return int(token.balanceOf(market))


# ------------------------------------------------------------------ stage 1: allocations, no value


def test_stage_one_records_allocation_without_moving_value(market, token, matched, cloud_team, buyer, registry,
                                                           node_id, chain):
    deal, tx = matched()
    assert matched_of(tx)["valueless"] is True
    assert plain(registry.reservedOf(node_id)) == (1000, 1000, 1000)
    market.start(*deal, {"from": cloud_team})
    _run_to_the_end(chain)
    market.complete(*deal, CID, {"from": cloud_team})
    tx = market.settle(*deal, {"from": buyer})
    assert plain(tx.events["Settled"].values()) == plain((deal[0], COMPUTE, sum(TRANSIT), PLATFORM, 0, True))
    assert market.balanceOf(cloud_team) == 0 and held(market, token) == 0
    assert status(market, deal) == SETTLED
    assert plain(registry.reservedOf(node_id)) == (0, 0, 0)


# ------------------------------------------------------------------ stage 2: the full paid lifecycle


def test_full_lifecycle_pays_seller_transit_operators_and_platform(market, token, stage2_backed, matched, cloud_team,
                                                                   buyer, founder, network_team, registry, node_id,
                                                                   chain):
    deal, tx = matched()
    assert matched_of(tx)["status"] == ACCEPTED
    assert market.balanceOf(buyer) == 1000 * 10**18 - TOTAL
    tx = market.start(*deal, {"from": cloud_team})
    assert tx.events["DealStatusChanged"]["status"] == STARTED
    _run_to_the_end(chain)
    tx = market.complete(*deal, CID, {"from": cloud_team})
    # Completed and Settled announce the new status themselves: no DealStatusChanged.
    assert tx.events["Completed"]["resultCid"] == CID and "DealStatusChanged" not in tx.events
    assert tx.events["Completed"]["usedSeconds"] == DURATION
    assert tx.events["Completed"]["deadline"] == market.statusOf(deal[0])[1]
    assert market.statusOf(deal[0])[0] == COMPLETED
    assert plain(registry.reservedOf(node_id)) == (0, 0, 0)
    tx = market.settle(*deal, {"from": buyer})
    assert plain(tx.events["Settled"].values()) == plain((deal[0], COMPUTE, sum(TRANSIT), PLATFORM, 0, False))
    assert "DealStatusChanged" not in tx.events and plain(market.statusOf(deal[0])) == (SETTLED, 0)
    assert market.balanceOf(cloud_team) == COMPUTE
    assert market.balanceOf(founder) == TRANSIT[0]
    assert market.balanceOf(network_team) == TRANSIT[1]
    assert market.platformFees() == PLATFORM
    before = token.balanceOf(cloud_team)
    market.withdraw(COMPUTE, {"from": cloud_team})
    assert token.balanceOf(cloud_team) == before + COMPUTE
    market.withdrawFees({"from": founder})
    assert market.platformFees() == 0
    # conservation: what the escrow holds is exactly what it owes
    owed = sum(int(market.balanceOf(a)) for a in (buyer, cloud_team, founder, network_team))
    assert held(market, token) == owed + int(market.stakeOf(cloud_team))


def test_settled_deal_cannot_settle_twice(market, stage2_backed, matched, cloud_team, buyer):
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    market.complete(*deal, CID, {"from": cloud_team})
    market.settle(*deal, {"from": buyer})
    with brownie.reverts(err("InvalidStatus", deal[0], SETTLED)):
        market.settle(*deal, {"from": buyer})


def test_typed_data_signature_from_a_wallet_is_accepted(market, stage2_backed, new_order, buyer, accounts, node_id,
                                                        founder, chain):
    from deploy import typed_order
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    order = new_order(nonce=7)
    signable = encode_typed_data(full_message=typed_order(market, order, chain.id))
    sig = Account.sign_message(signable, key_of(buyer, accounts)).signature
    tx = market.matchSigned(entry(market, order, sig, _bill(market, order, node_id, founder)), {"from": founder})
    assert matched_of(tx)["buyer"] == buyer


def test_deal_passed_back_must_match_the_stored_one(market, stage2_backed, matched, cloud_team):
    deal, _ = matched()
    compute_fee_at = 129  # IMarket.Matched: the packed deal's computeFee (16 bytes)
    forged = bytearray(deal[1])
    forged[compute_fee_at + 15] ^= 1
    with brownie.reverts(err("UnknownDeal", deal[0])):
        market.start(deal[0], bytes(forged), {"from": cloud_team})
    with brownie.reverts(err("UnknownDeal", deal[0])):
        market.start(deal[0], deal[1] + b"\x00", {"from": cloud_team})


# ------------------------------------------------------------------ acceptance


def test_buyer_accepts_a_proposed_bill(market, stage2_backed, matched, buyer, cloud_team, chain):
    deal, tx = matched(autoAccept=False)
    assert matched_of(tx)["status"] == PROPOSED
    with brownie.reverts(err("InvalidStatus", deal[0], PROPOSED)):
        market.start(*deal, {"from": cloud_team})
    with brownie.reverts(err("Unauthorized", deal[0], cloud_team.address, buyer.address)):
        market.accept(*deal, {"from": cloud_team})
    market.accept(*deal, {"from": buyer})
    assert status(market, deal) == ACCEPTED


def test_buyer_rejects_a_proposed_bill_and_is_refunded(market, stage2_backed, matched, buyer, registry, node_id):
    deal, _ = matched(autoAccept=False)
    tx = market.reject(*deal, {"from": buyer})
    assert tx.events["Refunded"]["amount"] == TOTAL
    assert market.balanceOf(buyer) == 1000 * 10**18
    assert plain(registry.reservedOf(node_id)) == (0, 0, 0)
    assert status(market, deal) == REFUNDED


def test_acceptance_after_deadline_is_refused(market, stage2_backed, matched, buyer, chain):
    deal, _ = matched(autoAccept=False)
    chain.sleep(ACCEPT_WINDOW + 5)
    chain.mine()
    deadline = int(market.statusOf(deal[0])[1])
    with brownie.reverts(err("DeadlinePassed", deal[0], deadline)):
        market.accept(*deal, {"from": buyer})


def test_seller_declines_before_start_without_slash(market, stage2_backed, matched, cloud_team, buyer):
    deal, _ = matched()
    tx = market.decline(*deal, {"from": cloud_team})
    assert "Slashed" not in tx.events
    assert market.balanceOf(buyer) == 1000 * 10**18
    assert market.stakeOf(cloud_team) == MIN_STAKE[1] + SPARE_STAKE  # the deal's lock released


# ------------------------------------------------------------------ match checks


def test_match_rejects_bad_bills(market, federation, stage2_backed, new_order, buyer, accounts, node_id, founder,
                                 network_team):
    order = new_order()
    sig = sign_order(market, order, key_of(buyer, accounts))
    node, compute, platform, operators, fees = make_bill(order, node_id, NODE_PRICE, 250,
                                                         transit_for(market, order, founder, network_team))

    def refused(bill, *error):
        with brownie.reverts(err(*error)):
            market.matchSigned(entry(market, order, sig, bill), {"from": founder})

    refused((node, compute + 1, platform, operators, fees), "ComputeFeeMismatch", COMPUTE, COMPUTE + 1)
    refused((node, compute, 0, operators, fees), "PlatformFeeMismatch", PLATFORM, 0)
    # Each transit fee is its operator's published tariff for the order's bandwidth and duration, no more.
    refused((node, compute, platform, operators, [fees[0], fees[1] + 1]),
            "TransitFeeMismatch", 1, TRANSIT[1], TRANSIT[1] + 1)
    refused((node, compute, platform, [founder.address] * 2, [fees[0]] * 2), "DuplicateTransitSeat", 0)
    # The node attaches to the founder's network (seat 0): a path without it is not the node's.
    refused((node, compute, platform, [network_team.address], [fees[1]]), "NodeOperatorNotOnPath", node_id, 0)
    refused((node, compute, platform, [], []), "InvalidTransit", 0, 0, 8)
    refused((node, compute, platform, [founder.address] * 9, [fees[0]] * 9), "InvalidTransit", 9, 9, 8)
    # A bill names transit operators by seat: a seat nobody holds, then the seat of an operator whose role
    # was taken (it keeps its seat and credits, but earns no new transit fee).
    no_transit = packed_bill(market, (node, compute, platform, [], []))
    seat = market.seatOf(network_team)[1]

    def with_seat(s):
        return no_transit[:64] + bytes([1, s]) + (1).to_bytes(16, "big")

    signed = bytes(entry(market, order, sig, (node, compute, platform, [], [])))[: -len(no_transit)]
    assert len(market.transitOperators()) == 2
    with brownie.reverts(err("MissingRole", ZERO_ADDRESS, OPERATOR, 0)):
        market.matchSigned(signed + with_seat(2), {"from": founder})
    with brownie.reverts(err("MissingRole", ZERO_ADDRESS, OPERATOR, 0)):
        market.matchSigned(signed + with_seat(200), {"from": founder})
    federation.setRoles(network_team, BUYER, {"from": founder})
    assert market.seatOf(network_team) == (True, seat)
    refused((node, compute, platform, operators, fees), "MissingRole", network_team.address, OPERATOR, BUYER)
    # The control: the same order with an honest bill over the seats still held matches.
    market.matchSigned(entry(market, order, sig, _bill(market, order, node_id, founder)), {"from": founder})


def test_match_holds_the_bill_to_the_buyers_limits(market, stage2_backed, new_order, buyer, accounts, node_id, founder,
                                                   network_team):
    cases = [
        (dict(maxTransit=sum(TRANSIT) - 1), err("TransitAboveLimit", sum(TRANSIT), sum(TRANSIT) - 1)),
        (dict(maxTotal=TOTAL - 1), err("BillAboveLimit", TOTAL, TOTAL - 1)),
    ]
    for fields, message in cases:
        order = new_order(**fields)
        bill = make_bill(order, node_id, NODE_PRICE, 250, transit_for(market, order, founder, network_team))
        with brownie.reverts(message):
            market.matchSigned(entry(market, order, sign_order(market, order, key_of(buyer, accounts)), bill),
                               {"from": founder})


def test_match_rejects_orders_the_node_cannot_serve(market, stage2_backed, new_order, buyer, accounts, node_id,
                                                    founder):
    cases = [
        (dict(maxPricePerCuHour=NODE_PRICE - 1), err("PriceAboveLimit", node_id, NODE_PRICE, NODE_PRICE - 1)),
        (dict(memoryMib=70000), err("NodeDoesNotFit", node_id, "memoryMib", 65536, 70000)),
        (dict(gpuModel=9, gpuCount=1), err("NodeDoesNotFit", node_id, "gpuModel", 3, 9)),
        (dict(gpuModel=3, gpuCount=2), err("NodeDoesNotFit", node_id, "gpuCount", 1, 2)),
        (dict(minTier=2), err("NodeDoesNotFit", node_id, "tier", 1, 2)),
        (dict(logicMcu=5000), err("InsufficientCapacity", node_id, 0, 5000, 4000)),
    ]
    for fields, message in cases:
        order = new_order(**fields)
        sig = sign_order(market, order, key_of(buyer, accounts))
        with brownie.reverts(message):
            market.matchSigned(entry(market, order, sig, _bill(market, order, node_id, founder)), {"from": founder})
    order = new_order(logicMcu=0, parallelMcu=0, neuralMcu=0)
    oid = market.orderId(order)
    with brownie.reverts(err("EmptyOrder", oid)):
        market.matchSigned(_signed(market, order, key_of(buyer, accounts), node_id, founder), {"from": founder})


def test_match_requires_matcher_and_buyer_signature(market, stage2_backed, new_order, buyer, accounts, node_id,
                                                    founder, cloud_team):
    order = new_order()
    bill = _bill(market, order, node_id, founder)
    sig = sign_order(market, order, key_of(buyer, accounts))
    with brownie.reverts(err("MissingRole", cloud_team.address, MATCHER, CLOUD)):
        market.matchSigned(entry(market, order, sig, bill), {"from": cloud_team})
    forged = sign_order(market, order, key_of(cloud_team, accounts))
    with brownie.reverts(err("InvalidSignature", market.orderId(order), buyer.address)):
        market.matchSigned(entry(market, order, forged, bill), {"from": founder})


def test_signed_order_is_used_at_most_once(market, stage2_backed, new_order, buyer, accounts, node_id, founder):
    order = new_order()
    bill = _bill(market, order, node_id, founder)
    sig = sign_order(market, order, key_of(buyer, accounts))
    market.matchSigned(entry(market, order, sig, bill), {"from": founder})
    with brownie.reverts(err("OrderAlreadyUsed", market.orderId(order), ACCEPTED)):
        market.matchSigned(entry(market, order, sig, bill), {"from": founder})


def test_expired_order_is_refused(market, stage2, new_order, buyer, accounts, node_id, founder, chain):
    order = new_order(expiry=chain.time() - 10)
    with brownie.reverts(err("OrderExpired", market.orderId(order), order[EXPIRY])):
        market.matchSigned(_signed(market, order, key_of(buyer, accounts), node_id, founder), {"from": founder})


def test_buyer_without_deposit_is_refused(market, stage2_backed, matched, buyer):
    market.withdraw(1000 * 10**18, {"from": buyer})
    with brownie.reverts(err("InsufficientBalance", buyer.address, 0, TOTAL)):
        matched()


def test_stake_cannot_drop_below_what_the_nodes_require(market, stage2, cloud_team):
    with brownie.reverts(err("StakeRequired", cloud_team.address, MIN_STAKE[1], MIN_STAKE[1], 1)):
        market.requestUnstake(1, {"from": cloud_team})
    assert market.stakeOf(cloud_team) == MIN_STAKE[1]


def test_second_node_raises_required_stake(market, registry, stage2, matched, cloud_team, founder):
    registry.registerNode(make_spec(founder.address), {"from": cloud_team})
    with brownie.reverts(err("InsufficientStake", cloud_team.address, MIN_STAKE[1], 2 * MIN_STAKE[1], COMPUTE)):
        matched()


def test_cancelled_signed_order_cannot_be_matched(market, stage2, new_order, buyer, accounts, node_id, founder):
    order = new_order()
    tx = market.cancelOrder(order, 0, {"from": buyer})
    assert tx.events["OrderCancelled"]["refunded"] == 0
    with brownie.reverts(err("OrderAlreadyUsed", market.orderId(order), CANCELLED)):
        market.matchSigned(_signed(market, order, key_of(buyer, accounts), node_id, founder), {"from": founder})
    with brownie.reverts(err("Unauthorized", market.orderId(order), founder.address, buyer.address)):
        market.cancelOrder(order, 0, {"from": founder})


# ------------------------------------------------------------------ posted orders


def test_posted_order_locks_max_and_match_returns_the_excess(market, token, stage2_backed, new_order, buyer, node_id,
                                                             founder):
    market.withdraw(1000 * 10**18, {"from": buyer})
    order = new_order()
    tx = market.postOrder(order, {"from": buyer})
    oid = tx.return_value
    assert tx.events["OrderPosted"]["locked"] == 100 * 10**18
    assert held(market, token) == 100 * 10**18 + MIN_STAKE[1] + SPARE_STAKE
    bill = _bill(market, order, node_id, founder)
    market.matchPosted(order, 100 * 10**18, packed_bill(market, bill), {"from": founder})
    assert market.balanceOf(buyer) == 100 * 10**18 - COMPUTE - PLATFORM - TRANSIT[0]
    assert status(market, (oid,)) == ACCEPTED
    with brownie.reverts(err("OrderAlreadyUsed", oid, ACCEPTED)):
        market.matchPosted(order, 100 * 10**18, packed_bill(market, bill), {"from": founder})


def test_posted_order_cancel_and_expiry_refund(market, stage2, new_order, buyer, founder, chain):
    a = new_order(nonce=1)
    b = new_order(nonce=2)
    market.postOrder(a, {"from": buyer})
    market.postOrder(b, {"from": buyer})
    assert market.balanceOf(buyer) == 800 * 10**18
    with brownie.reverts(err("UnknownDeal", market.orderId(a))):
        market.cancelOrder(a, 1, {"from": buyer})
    market.cancelOrder(a, 100 * 10**18, {"from": buyer})
    with brownie.reverts(err("DeadlineNotReached", market.orderId(b), b[EXPIRY])):
        market.expireOrder(b, 100 * 10**18, {"from": founder})
    chain.sleep(86400 + 10)
    chain.mine()
    market.expireOrder(b, 100 * 10**18, {"from": founder})
    assert market.balanceOf(buyer) == 1000 * 10**18
    with brownie.reverts(err("InvalidStatus", market.orderId(b), CANCELLED)):
        market.expireOrder(b, 100 * 10**18, {"from": founder})


def test_posting_needs_the_buyer_role_and_own_order(market, stage2, new_order, buyer, cloud_team):
    order = new_order()
    with brownie.reverts(err("Unauthorized", "0x" + "00" * 32, cloud_team.address, buyer.address)):
        market.postOrder(order, {"from": cloud_team})


# ------------------------------------------------------------------ timeouts


def _advance(chain, seconds):
    chain.sleep(seconds + 5)
    chain.mine()


def test_timeout_of_proposed_deal_refunds_without_slash(market, stage2_backed, matched, buyer, chain, founder):
    deal, _ = matched(autoAccept=False)
    deadline = int(market.statusOf(deal[0])[1])
    with brownie.reverts(err("DeadlineNotReached", deal[0], deadline)):
        market.timeout(*deal, {"from": founder})
    _advance(chain, ACCEPT_WINDOW)
    tx = market.timeout(*deal, {"from": founder})
    assert "Slashed" not in tx.events
    assert market.balanceOf(buyer) == 1000 * 10**18


def test_seller_missing_start_is_slashed_half_to_buyer(market, stage2_backed, matched, buyer, cloud_team, chain,
                                                       founder, registry, node_id):
    deal, _ = matched()
    _advance(chain, START_WINDOW)
    tx = market.timeout(*deal, {"from": founder})
    assert plain(tx.events["Slashed"].values()) == plain((deal[0], cloud_team, COMPUTE // 2, COMPUTE - COMPUTE // 2))
    assert market.balanceOf(buyer) == 1000 * 10**18 + COMPUTE // 2
    assert market.stakeOf(cloud_team) == MIN_STAKE[1] + SPARE_STAKE - COMPUTE  # the lock is gone
    assert plain(registry.reservedOf(node_id)) == (0, 0, 0)
    with brownie.reverts(err("InvalidStatus", deal[0], REFUNDED)):
        market.timeout(*deal, {"from": founder})


def test_seller_missing_delivery_is_slashed(market, stage2_backed, matched, buyer, cloud_team, chain, founder):
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    _advance(chain, 3600 + DELIVERY_GRACE)
    deadline = int(market.statusOf(deal[0])[1])
    with brownie.reverts(err("DeadlinePassed", deal[0], deadline)):
        market.complete(*deal, CID, {"from": cloud_team})
    tx = market.timeout(*deal, {"from": founder})
    assert tx.events["Slashed"]["toBuyer"] == COMPUTE // 2
    assert market.balanceOf(buyer) == 1000 * 10**18 + COMPUTE // 2


def test_a_deal_whose_compute_fee_exceeds_the_sellers_spare_stake_is_refused(market, stage2_backed, matched,
                                                                              cloud_team):
    # The match locks the deal's largest slash, its compute fee (600 tokens for 100 hours), out of the stake
    # above what the seller's nodes require (SPARE_STAKE), so a slash is never capped by a short stake.
    lock = 100 * COMPUTE
    with brownie.reverts(err("InsufficientStake", cloud_team.address, MIN_STAKE[1] + SPARE_STAKE, MIN_STAKE[1], lock)):
        matched(duration=100 * DURATION, maxTotal=10_000 * 10**18, maxTransit=100 * 10**18)
    assert market.stakeOf(cloud_team) == MIN_STAKE[1] + SPARE_STAKE


def test_completed_deal_settles_by_anyone_after_the_dispute_window(market, stage2_backed, matched, cloud_team, chain,
                                                                   founder):
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    _run_to_the_end(chain)
    market.complete(*deal, CID, {"from": cloud_team})
    deadline = int(market.statusOf(deal[0])[1])
    with brownie.reverts(err("DeadlineNotReached", deal[0], deadline)):
        market.settle(*deal, {"from": cloud_team})
    _advance(chain, DISPUTE_WINDOW)
    market.settle(*deal, {"from": cloud_team})
    assert market.balanceOf(cloud_team) == COMPUTE


def test_timeout_of_completed_deal_is_refused(market, stage2_backed, matched, cloud_team, chain, founder):
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    market.complete(*deal, CID, {"from": cloud_team})
    _advance(chain, DISPUTE_WINDOW)
    with brownie.reverts(err("InvalidStatus", deal[0], COMPLETED)):
        market.timeout(*deal, {"from": founder})


# ------------------------------------------------------------------ disputes


@pytest.fixture
def disputed(market, stage2_backed, matched, cloud_team, buyer, chain):
    """A deal that ran its whole duration, disputed by the buyer (who posts its bond), with its arbiter drawn."""
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    _run_to_the_end(chain)
    market.complete(*deal, CID, {"from": cloud_team})
    tx = market.dispute(*deal, {"from": buyer})
    assert tx.events["Disputed"]["bond"] == BOND
    assert market.balanceOf(buyer) == 1000 * 10**18 - TOTAL - BOND
    assert status(market, deal) == DISPUTED
    chain.mine(2)  # the arbiter is drawn from the hash of the block after the dispute's
    return deal


def test_arbiter_rules_for_the_seller_who_takes_the_bond(market, disputed, arbiter, cloud_team, buyer):
    market.resolve(*disputed, True, {"from": arbiter})
    assert market.balanceOf(cloud_team) == COMPUTE + BOND
    assert market.balanceOf(buyer) == 1000 * 10**18 - TOTAL - BOND
    assert status(market, disputed) == SETTLED


def test_arbiter_ruling_for_the_buyer_refunds_compute_and_platform_pays_transit_and_slashes_nobody(
    market, disputed, arbiter, buyer, cloud_team, founder, network_team
):
    tx = market.resolve(*disputed, False, {"from": arbiter})
    assert "Slashed" not in tx.events
    assert plain(tx.events["Settled"].values()) == plain(
        (disputed[0], 0, sum(TRANSIT), 0, COMPUTE + PLATFORM + BOND, False))
    assert market.balanceOf(buyer) == 1000 * 10**18 - sum(TRANSIT)  # the bond back, the path paid
    assert market.balanceOf(cloud_team) == 0
    assert market.stakeOf(cloud_team) == MIN_STAKE[1] + SPARE_STAKE
    assert (market.balanceOf(founder), market.balanceOf(network_team)) == tuple(TRANSIT)
    assert status(market, disputed) == REFUNDED


def test_only_the_drawn_arbiter_resolves(market, disputed, arbiter, buyer, network_team, federation, founder):
    assert market.arbiterOf(*disputed) == arbiter
    # The founder holds ARBITER but matched the deal, carries its transit and takes the platform fee; the
    # buyer made an arbiter is still a party: neither is ever drawn, nor is a member without the role.
    federation.setRoles(buyer, BUYER | ARBITER, {"from": founder})
    for caller in (founder, buyer, network_team):
        with brownie.reverts(err("NotDrawnArbiter", disputed[0], caller.address, arbiter.address)):
            market.resolve(*disputed, False, {"from": caller})
    market.resolve(*disputed, False, {"from": arbiter})


def test_arbitration_timeout_splits_the_time_used_and_returns_the_bond(market, disputed, chain, arbiter, buyer,
                                                                       cloud_team):
    _advance(chain, ARBITRATION_PERIOD)
    deadline = int(market.statusOf(disputed[0])[1])
    with brownie.reverts(err("DeadlinePassed", disputed[0], deadline)):
        market.resolve(*disputed, True, {"from": arbiter})
    tx = market.timeout(*disputed, {"from": arbiter})
    assert "Slashed" not in tx.events
    seller_half, platform_half = COMPUTE // 2, PLATFORM // 2
    assert plain(tx.events["Settled"].values()) == plain(
        (disputed[0], seller_half, sum(TRANSIT), platform_half, COMPUTE + PLATFORM - seller_half - platform_half + BOND,
         False))
    assert market.balanceOf(buyer) == 1000 * 10**18 - sum(TRANSIT) - seller_half - platform_half
    assert market.balanceOf(cloud_team) == seller_half
    assert market.stakeOf(cloud_team) == MIN_STAKE[1] + SPARE_STAKE
    assert status(market, disputed) == SETTLED


def test_dispute_after_the_window_is_refused(market, stage2_backed, matched, cloud_team, buyer, chain):
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    market.complete(*deal, CID, {"from": cloud_team})
    _advance(chain, DISPUTE_WINDOW)
    deadline = int(market.statusOf(deal[0])[1])
    with brownie.reverts(err("DeadlinePassed", deal[0], deadline)):
        market.dispute(*deal, {"from": buyer})


# ------------------------------------------------------------------ batch and races


def test_batch_matching_with_mixed_successes(market, stage2_backed, new_order, buyer, accounts, node_id, founder):
    entries = []
    for n in range(4):
        order = new_order(nonce=100 + n)
        bill = _bill(market, order, node_id, founder)
        if n == 2:
            bill = (bill[0], bill[1] + 1, bill[2], bill[3], bill[4])  # a wrong bill: fails alone
        entries.append(entry(market, order, sign_order(market, order, key_of(buyer, accounts)), bill))
    entries.append(entries[0])  # the same signed order again: fails alone
    tx = market.matchSignedBatch(b"".join(entries), {"from": founder})
    assert tx.return_value == 3
    failed = tx.events["MatchFailed"]
    assert [int(f["index"]) for f in failed] == [2, 4]
    assert len(tx.events["Matched"]) == 3
    assert market.balanceOf(buyer) == 1000 * 10**18 - 3 * (COMPUTE + PLATFORM + TRANSIT[0])


def test_an_entry_that_does_not_fit_its_bytes_reverts(market, stage2_backed, new_order, buyer, accounts, node_id,
                                                      founder):
    # The packed entry's lengths (signature, transit count) say where it ends: a cut-short entry or bytes
    # after the last one revert the call with the entry's index (a batch cannot find the next entry).
    entries = []
    for nonce in (80, 81):
        order = new_order(nonce=nonce)
        entries.append(entry(market, order, sign_order(market, order, key_of(buyer, accounts)),
                             _bill(market, order, node_id, founder)))
    with brownie.reverts(err("InvalidEntry", 0)):
        market.matchSigned(entries[0][:-1], {"from": founder})
    with brownie.reverts(err("InvalidEntry", 0)):
        market.matchSigned(entries[0] + b"\x00", {"from": founder})
    with brownie.reverts(err("InvalidEntry", 1)):
        market.matchSignedBatch(entries[0] + entries[1][:-1], {"from": founder})
    with brownie.reverts(err("InvalidEntry", 1)):
        market.matchSignedBatch(entries[0] + entries[1][:100], {"from": founder})
    tx = market.matchSignedBatch(entries[0] + entries[1], {"from": founder})
    assert tx.return_value == 2


def test_a_changed_order_byte_fails_alone_as_an_invalid_signature(market, stage2_backed, new_order, buyer, accounts,
                                                                   node_id, founder):
    # The packed order is what the buyer signed only byte for byte: a changed field (here the network SLA,
    # checked off chain, or an autoAccept byte other than 0 or 1) has another digest, so that entry fails
    # alone as InvalidSignature and the batch goes on.
    order = new_order(nonce=78, minBandwidthMbps=987_654)
    other = new_order(nonce=79)
    third = new_order(nonce=82)
    first, second, last = (_signed(market, o, key_of(buyer, accounts), node_id, founder)
                           for o in (order, other, third))
    sla = (987_654).to_bytes(4, "big")
    assert first.count(sla) == 1
    changed = first.replace(sla, (987_655).to_bytes(4, "big"))
    auto_accept_at = 139  # IMarket: the packed order's autoAccept byte
    assert last[auto_accept_at] == 1
    not_a_bool = last[:auto_accept_at] + b"\x02" + last[auto_accept_at + 1:]
    tx = market.matchSignedBatch(changed + second + not_a_bool, {"from": founder})
    failed = tx.events["MatchFailed"]
    assert [int(f["index"]) for f in failed] == [0, 2]
    for f in failed:
        reason = f["reason"]
        reason = bytes.fromhex(reason[2:]) if isinstance(reason, str) else bytes(reason)
        assert reason[:4] == bytes(brownie.web3.keccak(text="InvalidSignature(bytes32,address)"))[:4]
    assert len(tx.events["Matched"]) == 1
    assert market.statusOf(market.orderId(order))[0] == 0
    assert market.statusOf(market.orderId(other))[0] != 0


def test_two_matchers_racing_for_the_same_capacity(market, stage2_backed, federation, new_order, buyer, accounts,
                                                   node_id, founder):
    # Stage 2's matchers are the operator's internal teams; a second matcher team races the first.
    second = accounts[2]
    federation.setRoles(second, OPERATOR | MATCHER, {"from": founder})
    big = dict(logicMcu=3000, parallelMcu=0, neuralMcu=0)
    a = new_order(nonce=1, **big)
    b = new_order(nonce=2, **big)
    market.matchSigned(_signed(market, a, key_of(buyer, accounts), node_id, founder),
                       {"from": founder})
    with brownie.reverts(err("InsufficientCapacity", node_id, 0, 3000, 1000)):
        market.matchSigned(_signed(market, b, key_of(buyer, accounts), node_id, founder), {"from": second})


# ------------------------------------------------------------------ stage admission in trade


def test_stage_two_third_party_cloud_sells(market, stage2, federation, registry, token, founder, accounts, buyer,
                                          new_order):
    aliyun = accounts[4]
    federation.admit(aliyun, CLOUD | BUYER, "Aliyun", {"from": founder})
    node = registry.registerNode(make_spec(founder.address, tier=0), {"from": aliyun}).return_value
    stake = MIN_STAKE[0] + COMPUTE  # its node's minimum and one deal's lock
    token.approve(market, stake, {"from": aliyun})
    market.deposit(stake, {"from": aliyun})
    market.stake(stake, {"from": aliyun})
    order = new_order()
    tx = market.matchSigned(_signed(market, order, key_of(buyer, accounts), node, founder), {"from": founder})
    assert matched_of(tx)["seller"] == aliyun


def test_stage_three_provider_sells_and_removed_seller_cannot(market, stage2, federation, registry, token, founder,
                                                              accounts, buyer, new_order, cloud_team, node_id):
    federation.advanceStage(3, {"from": founder})
    lab = accounts[6]
    federation.admit(lab, PROVIDER, "Idle-GPU lab", {"from": founder})
    node = registry.registerNode(make_spec(founder.address, tier=0), {"from": lab}).return_value
    stake = MIN_STAKE[0] + COMPUTE  # its node's minimum and one deal's lock
    token.approve(market, stake, {"from": lab})
    market.deposit(stake, {"from": lab})
    market.stake(stake, {"from": lab})
    order = new_order(nonce=1)
    market.matchSigned(_signed(market, order, key_of(buyer, accounts), node, founder), {"from": founder})
    federation.remove(cloud_team, {"from": founder})
    order = new_order(nonce=2)
    with brownie.reverts(err("MissingRole", cloud_team.address, CLOUD | PROVIDER | OPERATOR, 0)):
        market.matchSigned(_signed(market, order, key_of(buyer, accounts), node_id, founder), {"from": founder})


def test_stage_one_buyer_must_hold_buyer_role(market, new_order, accounts, node_id, founder, cloud_team):
    from deploy import make_order
    order = make_order(cloud_team.address, expiry=new_order()[EXPIRY])
    with brownie.reverts(err("MissingRole", cloud_team.address, BUYER, CLOUD)):
        market.matchSigned(_signed(market, order, key_of(cloud_team, accounts), node_id, founder), {"from": founder})


# ------------------------------------------------------------------ escrow


def test_permit_deposit_submitted_by_the_matcher(market, token, accounts, founder, chain, buyer):
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    amount = 50 * 10**18
    deadline = chain.time() + 3600
    permit = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                       {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                       {"name": "deadline", "type": "uint256"}],
        },
        "primaryType": "Permit",
        "domain": {"name": "Suanwang Settlement Token", "version": "1", "chainId": chain.id,
                   "verifyingContract": token.address},
        "message": {"owner": buyer.address, "spender": market.address, "value": amount, "nonce": 0,
                    "deadline": deadline},
    }
    signed = Account.sign_message(encode_typed_data(full_message=permit), key_of(buyer, accounts))
    tx = market.depositWithPermit(buyer, amount, deadline, signed.v, signed.r.to_bytes(32, "big"),
                                  signed.s.to_bytes(32, "big"), {"from": founder})
    assert plain(tx.events["Deposited"].values()) == plain((buyer, founder, amount))
    assert market.balanceOf(buyer) == amount


def test_fee_on_transfer_token_is_refused(FeeOnTransferToken, Market, federation, registry, founder, buyer):
    bad = FeeOnTransferToken.deploy({"from": founder})
    m = Market.deploy(federation, registry, bad, (1, 1, 1, 1, 1, 1, 1), {"from": founder})
    bad.mint(buyer, 1000, {"from": founder})
    bad.approve(m, 1000, {"from": buyer})
    with brownie.reverts(err("FeeOnTransferToken", 1000, 990)):
        m.deposit(1000, {"from": buyer})


def test_escrow_withdraw_and_fee_rules(market, token, stage2, buyer, founder, cloud_team):
    with brownie.reverts(err("InsufficientBalance", buyer.address, 1000 * 10**18, 1000 * 10**18 + 1)):
        market.withdraw(1000 * 10**18 + 1, {"from": buyer})
    with brownie.reverts(err("ZeroAmount")):
        market.withdraw(0, {"from": buyer})
    with brownie.reverts(err("NotFeeRecipient", buyer.address)):
        market.withdrawFees({"from": buyer})
    with brownie.reverts(err("ZeroAmount")):
        market.withdrawFees({"from": founder})
    with brownie.reverts(err("ZeroAmount")):
        market.stake(0, {"from": cloud_team})
    tx = market.withdraw(10, {"from": buyer})
    assert plain(tx.events["Withdrawn"].values()) == plain((buyer, 10))


def test_retired_node_unstakes_fully_after_the_unstake_delay(market, registry, stage2, cloud_team, node_id, chain):
    registry.retireNode(node_id, {"from": cloud_team})
    tx = market.requestUnstake(MIN_STAKE[1], {"from": cloud_team})
    ready_at = tx.events["UnstakeRequested"]["readyAt"]
    assert plain(market.unstakingOf(cloud_team)) == (MIN_STAKE[1], ready_at)
    assert market.stakeOf(cloud_team) == 0  # no longer backs new deals
    with brownie.reverts(err("UnstakeNotReady", cloud_team.address, MIN_STAKE[1], ready_at)):
        market.claimUnstake({"from": cloud_team})
    chain.sleep(UNSTAKE_DELAY)
    tx = market.claimUnstake({"from": cloud_team})
    assert tx.events["Unstaked"]["amount"] == MIN_STAKE[1]
    assert market.balanceOf(cloud_team) == MIN_STAKE[1]
    assert plain(market.unstakingOf(cloud_team)) == (0, 0)


def test_failed_permit_lets_only_the_owner_use_its_allowance(market, token, buyer, founder, chain):
    token.approve(market, 10, {"from": buyer})
    bad = (b"\x00" * 32, b"\x00" * 32)
    with brownie.reverts(err("PermitFailed", buyer.address, founder.address)):
        market.depositWithPermit(buyer, 10, chain.time() + 60, 27, *bad, {"from": founder})
    market.depositWithPermit(buyer, 10, chain.time() + 60, 27, *bad, {"from": buyer})
    assert market.balanceOf(buyer) == 10


def test_market_address_cannot_be_zero(NodeRegistry, federation, founder):
    fresh = NodeRegistry.deploy(federation, MIN_STAKE, {"from": founder})
    with brownie.reverts(err("NotMarket", "0x" + "00" * 20)):
        fresh.setMarket("0x" + "00" * 20, {"from": founder})


def test_domain_separator_and_deal_total(market, chain, matched):
    from deploy import make_order, typed_order
    from eth_account.messages import encode_typed_data

    order = make_order(market.address, expiry=1)
    signable = encode_typed_data(full_message=typed_order(market, order, chain.id))
    assert bytes(market.domainSeparator()) == bytes(signable.header)
    deal, _ = matched()
    assert market.dealTotal(deal[1]) == TOTAL
    with brownie.reverts(err("InvalidEntry", 0)):
        market.dealTotal(deal[1][:-1])


def test_stage_one_posted_order_locks_nothing_and_is_matched(market, token, new_order, buyer, founder, node_id):
    order = new_order()
    tx = market.postOrder(order, {"from": buyer})
    assert tx.events["OrderPosted"]["locked"] == 0
    bill = packed_bill(market, _bill(market, order, node_id, founder))
    tx = market.matchPosted(order, 0, bill, {"from": founder})
    assert matched_of(tx)["valueless"] is True
    assert held(market, token) == 0


# ------------------------------------------------------------------ capacity held by the market


def test_paused_or_unknown_node_takes_no_match(market, registry, stage2_backed, new_order, buyer, accounts, node_id,
                                               founder, cloud_team):
    registry.setPaused(node_id, True, {"from": cloud_team})
    order = new_order()
    sig = sign_order(market, order, key_of(buyer, accounts))
    with brownie.reverts(err("InvalidNodeStatus", node_id, 2)):
        market.matchSigned(entry(market, order, sig, _bill(market, order, node_id, founder)), {"from": founder})
    with brownie.reverts(err("UnknownNode", 5)):
        market.matchSigned(entry(market, order, sig, _bill(market, order, 5, founder)), {"from": founder})
    registry.setPaused(node_id, False, {"from": cloud_team})
    market.matchSigned(entry(market, order, sig, _bill(market, order, node_id, founder)), {"from": founder})


def test_update_cannot_drop_capacity_below_reservations(market, registry, stage2_backed, matched, cloud_team, founder,
                                                        node_id):
    deal, _ = matched(parallelMcu=8000)
    with brownie.reverts(err("CapacityBelowReserved", node_id, 1, 10, 8000)):
        registry.updateNode(node_id, make_spec(founder.address, parallel=10, price=NODE_PRICE), {"from": cloud_team})
    registry.updateNode(node_id, make_spec(founder.address, logic=9000, price=NODE_PRICE), {"from": cloud_team})
    assert plain(registry.reservedOf(node_id)) == (1000, 8000, 1000)
    market.start(*deal, {"from": cloud_team})
    market.complete(*deal, CID, {"from": cloud_team})
    assert plain(registry.reservedOf(node_id)) == (0, 0, 0)


def test_roles_pushed_by_the_federation_take_effect_at_once(market, stage2_backed, federation, matched, founder, buyer):
    federation.setRoles(buyer, CLOUD, {"from": founder})
    with brownie.reverts(err("MissingRole", buyer.address, BUYER, CLOUD)):
        matched()
    federation.setRoles(buyer, BUYER, {"from": founder})
    matched()
