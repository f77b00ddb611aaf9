"""Transit operators' seats: bills and deals name an operator by its seat (one byte), and settlement credits
the seat's word. A seat is given the first time a member holds OPERATOR and kept for good."""

import brownie
from brownie import ZERO_ADDRESS
from conftest import BUYER, CLOUD, OPERATOR, err, plain
from test_market import CID, TRANSIT


def test_operators_are_seated_in_the_order_they_first_hold_the_role(market, federation, founder, network_team):
    assert list(market.transitOperators()) == [founder.address, network_team.address]
    assert plain(market.seatOf(founder)) == (True, 0) and plain(market.seatOf(network_team)) == (True, 1)


def test_a_new_operator_gets_the_next_seat_and_a_member_that_is_not_one_none(market, federation, founder, accounts):
    tx = federation.admit(accounts[6], OPERATOR, "another operator", {"from": founder})
    assert plain(tx.events["OperatorSeated"].values()) == (accounts[6].address, 2)
    federation.admit(accounts[7], CLOUD, "a cloud", {"from": founder})
    assert plain(market.seatOf(accounts[6])) == (True, 2) and plain(market.seatOf(accounts[7])) == (False, 0)
    assert market.transitOperators()[-1] == accounts[6].address


def test_a_member_that_gains_the_role_later_is_seated_then(market, federation, founder, cloud_team):
    assert plain(market.seatOf(cloud_team)) == (False, 0)
    tx = federation.setRoles(cloud_team, CLOUD | OPERATOR, {"from": founder})
    assert plain(tx.events["OperatorSeated"].values()) == (cloud_team.address, 2)


def test_an_operator_that_loses_the_role_keeps_its_seat_and_credits(
    market, federation, stage2_backed, matched, founder, network_team, cloud_team, buyer, token
):
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    market.complete(*deal, CID, {"from": cloud_team})
    federation.setRoles(network_team, BUYER, {"from": founder})  # after the match: the fee is still owed
    market.settle(*deal, {"from": buyer})
    assert plain(market.seatOf(network_team)) == (True, 1)
    assert market.balanceOf(network_team) == TRANSIT[1]
    before = token.balanceOf(network_team)
    market.withdraw(TRANSIT[1], {"from": network_team})
    assert token.balanceOf(network_team) == before + TRANSIT[1] and market.balanceOf(network_team) == 0
    with brownie.reverts(err("MissingRole", network_team.address, OPERATOR, BUYER)):
        matched(nonce=2)  # but earns no new transit fee


def test_an_operator_voted_back_in_gets_its_old_seat(market, federation, founder, network_team):
    federation.setRoles(network_team, BUYER, {"from": founder})
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    federation.remove(network_team, {"from": founder})
    federation.proposeOperator(network_team, "CERNET network team", {"from": founder})  # the founder's one vote
    assert federation.rolesOf(network_team) == OPERATOR
    assert plain(market.seatOf(network_team)) == (True, 1)
    assert list(market.transitOperators()) == [founder.address, network_team.address]


def test_a_withdrawal_takes_the_balance_first_then_transit_credits(
    market, stage2_backed, matched, founder, cloud_team, buyer, token
):
    deal, _ = matched()
    market.start(*deal, {"from": cloud_team})
    market.complete(*deal, CID, {"from": cloud_team})
    market.settle(*deal, {"from": buyer})
    token.approve(market, 10**18, {"from": founder})
    market.deposit(10**18, {"from": founder})
    assert market.balanceOf(founder) == 10**18 + TRANSIT[0]
    with brownie.reverts(err("InsufficientBalance", founder.address, 10**18 + TRANSIT[0], 10**18 + TRANSIT[0] + 1)):
        market.withdraw(10**18 + TRANSIT[0] + 1, {"from": founder})
    market.withdraw(10**18 + 1, {"from": founder})  # all the deposit and one unit of the credits
    assert market.balanceOf(founder) == TRANSIT[0] - 1
    market.withdraw(TRANSIT[0] - 1, {"from": founder})
    assert market.balanceOf(founder) == 0


def test_seats_run_out_after_96_operators_and_a_doomed_proposal_is_refused_up_front(
    market, federation, founder, accounts
):
    seated = len(market.transitOperators())
    for i in range(96 - seated):
        federation.admit(accounts.add().address, OPERATOR, f"operator {i}", {"from": founder})
    assert len(market.transitOperators()) == 96
    newcomer = accounts.add().address
    assert not market.hasSeatFor(newcomer) and market.hasSeatFor(founder)
    with brownie.reverts(err("TooManyOperators", 96)):
        federation.admit(newcomer, OPERATOR, "one too many", {"from": founder})
    federation.admit(newcomer, CLOUD, "a cloud still joins", {"from": founder})
    assert plain(market.seatOf(newcomer)) == (False, 0) and plain(market.seatOf(ZERO_ADDRESS)) == (False, 0)
    with brownie.reverts(err("TooManyOperators", 96)):
        federation.setRoles(newcomer, CLOUD | OPERATOR, {"from": founder})
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    late = accounts.add().address
    with brownie.reverts(err("NoOperatorSeatLeft", late)):  # its vote could never be executed
        federation.proposeOperator(late, "too late", {"from": founder})
