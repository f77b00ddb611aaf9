"""Governance under attack (issue 14, attack 8, and the Federation's part of item 9).

Each attack is performed as written: the call's revert data must be exactly the custom error the test names
(compared byte for byte with the error encoded from the compiled ABIs), the same call is then sent as a real
transaction, which must be mined reverted, and the state the attack aimed at must be as it was before. Each
test ends with the honest path the attack tried to block or bend, so a refusal is the attack's doing.
"""

from __future__ import annotations

import pytest
from attacks import defeated, record_if_asked
from brownie import web3
from conftest import ARBITER, BUYER, CLOUD, MATCHER, OPERATOR, plain
from eth_abi import encode
from revert_data import describe, encode_error, error_types, eth_call

VOTING_PERIOD = 7 * 24 * 3600


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    record_if_asked()


@pytest.fixture(scope="module")
def types(Federation, NodeRegistry, Market, SettlementToken):
    return error_types([Federation, NodeRegistry, Market, SettlementToken])


@pytest.fixture
def stage3(federation, market, founder):
    """Stage 3 with the market wired: the founder and its network team are the operators."""
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})


def refused(types, call, sender, *error) -> None:
    """The attack `call` (a brownie contract call with its arguments bound) from `sender`: its revert data is
    exactly `error`, and sent for real it is mined reverted."""
    fn, args = call
    data = fn.encode_input(*args)
    outcome = eth_call(sender.address, fn._address, data)
    expected = encode_error(types, *error) if error else b""
    assert outcome == (False, expected), f"expected {error}, got {describe(types, outcome)}"
    txid = web3.eth.send_transaction({"from": sender.address, "to": fn._address, "data": data, "gas": 2_000_000})
    assert web3.eth.wait_for_transaction_receipt(txid)["status"] == 0


def governance_state(federation, market, *accounts) -> tuple:
    """What an attack on the operator set could change: members' roles, the electorate, every proposal with
    its voters, and the market's seats and mirrored operator count."""
    proposals = []
    for pid in range(federation.proposalCount()):
        voters = tuple(a.address for a in accounts if federation.hasVoted(pid, a))
        proposals.append((plain(federation.getProposal(pid)), voters))
    roles = tuple(int(federation.rolesOf(a)) for a in accounts)
    return (roles, int(federation.operatorCount()), tuple(proposals), plain(market.transitOperators()))


def test_founder_cannot_admit_a_candidate_under_vote_to_sink_the_last_vote(
    federation, market, stage3, types, founder, network_team, accounts
):
    candidate = accounts[5]
    pid = federation.proposeOperator(candidate, "China Mobile", {"from": founder}).return_value
    assert plain(federation.getProposal(pid))[3:5] == (1, 2)  # one yes of the two needed: the network team's is last
    before = governance_state(federation, market, founder, network_team, candidate)

    refused(types, (federation.admit, (candidate, CLOUD, "China Mobile")), founder, "CandidateUnderVote", candidate,
            pid)
    refused(types, (federation.admit, (candidate, OPERATOR, "China Mobile")), founder, "CandidateUnderVote",
            candidate, pid)

    assert governance_state(federation, market, founder, network_team, candidate) == before
    tx = federation.vote(pid, {"from": network_team})  # the last vote executes
    assert "ProposalExecuted" in tx.events and federation.rolesOf(candidate) == OPERATOR
    defeated("founder_admits_candidate_mid_vote", "CandidateUnderVote; the last vote then executes")


def test_founder_cannot_change_or_remove_an_operator_under_a_removal_vote(
    federation, market, stage3, types, founder, network_team
):
    pid = federation.proposeOperatorRemoval(network_team, {"from": founder}).return_value
    before = governance_state(federation, market, founder, network_team)

    refused(types, (federation.setRoles, (network_team, OPERATOR | BUYER)), founder, "CandidateUnderVote",
            network_team, pid)
    refused(types, (federation.remove, (network_team,)), founder, "CandidateUnderVote", network_team, pid)

    assert governance_state(federation, market, founder, network_team) == before
    federation.vote(pid, {"from": network_team})
    assert federation.rolesOf(network_team) == 0 and federation.operatorCount() == 1
    defeated("founder_changes_operator_under_removal_vote", "CandidateUnderVote")


def test_a_candidate_under_vote_cannot_be_proposed_again(
    federation, market, stage3, types, founder, network_team, accounts
):
    candidate = accounts[5]
    pid = federation.proposeOperator(candidate, "China Mobile", {"from": founder}).return_value
    before = governance_state(federation, market, founder, network_team, candidate)

    refused(types, (federation.proposeOperator, (candidate, "China Mobile")), network_team, "CandidateUnderVote",
            candidate, pid)

    assert governance_state(federation, market, founder, network_team, candidate) == before
    federation.vote(pid, {"from": network_team})
    assert federation.rolesOf(candidate) == OPERATOR
    defeated("candidate_proposed_twice", "CandidateUnderVote")


def test_founder_cannot_make_internal_teams_operators_in_stage_two_to_pack_the_electorate(
    federation, market, types, founder, network_team, cloud_team, buyer, accounts
):
    federation.advanceStage(2, {"from": founder})
    before = governance_state(federation, market, founder, network_team, cloud_team, buyer)

    refused(types, (federation.setRoles, (buyer, BUYER | OPERATOR)), founder, "RoleNotAllowedInStage", OPERATOR, 2)
    refused(types, (federation.setRoles, (cloud_team, CLOUD | OPERATOR)), founder, "RoleNotAllowedInStage",
            OPERATOR, 2)
    refused(types, (federation.admit, (accounts[5], OPERATOR, "a fresh team")), founder, "RoleNotAllowedInStage",
            OPERATOR, 2)

    assert governance_state(federation, market, founder, network_team, cloud_team, buyer) == before
    federation.advanceStage(3, {"from": founder})
    pid = federation.proposeOperator(accounts[6], "China Mobile", {"from": founder}).return_value
    assert federation.getProposal(pid)[4] == 2  # the electorate stage 1 left: the founder and its network team
    defeated("founder_packs_the_electorate",
             "RoleNotAllowedInStage(1, 2): the internal operator set is frozen from stage 2")


def test_an_operator_admitted_after_a_proposal_cannot_vote_on_it(
    federation, market, stage3, types, founder, network_team, accounts
):
    first, late = accounts[5], accounts[6]
    pid = federation.proposeOperator(first, "China Mobile", {"from": founder}).return_value
    later = federation.proposeOperator(late, "China Unicom", {"from": founder}).return_value
    federation.vote(later, {"from": network_team})  # `late` is an operator now, admitted after `pid`
    assert federation.rolesOf(late) == OPERATOR and federation.operatorCount() == 3
    assert not federation.mayVote(pid, late) and federation.mayVote(pid, network_team)
    before = governance_state(federation, market, founder, network_team, first, late)

    refused(types, (federation.vote, (pid,)), late, "NotInElectorate", pid, late, later + 1)

    assert governance_state(federation, market, founder, network_team, first, late) == before
    assert not federation.hasVoted(pid, late) and federation.getProposal(pid)[3] == 1
    federation.vote(pid, {"from": network_team})  # an operator of the snapshot casts the deciding vote
    assert federation.rolesOf(first) == OPERATOR
    defeated("late_operator_votes", "NotInElectorate: the electorate is snapshotted at proposal time")


def test_a_proposal_naming_roles_beyond_operator_no_longer_exists(
    federation, market, stage3, founder, network_team, accounts
):
    candidate = accounts[5]
    before = governance_state(federation, market, founder, network_team, candidate)
    for extra in (MATCHER, ARBITER):
        # The old proposeOperator(address,uint8,string): the selector is gone and there is no fallback.
        selector = web3.keccak(text="proposeOperator(address,uint8,string)")[:4]
        args = encode(["address", "uint8", "string"], [candidate.address, OPERATOR | extra, "China Mobile"])
        data = "0x" + (bytes(selector) + args).hex()
        assert eth_call(founder.address, federation.address, data) == (False, b"")
        txid = web3.eth.send_transaction({"from": founder.address, "to": federation.address, "data": data,
                                          "gas": 2_000_000})
        assert web3.eth.wait_for_transaction_receipt(txid)["status"] == 0
    assert governance_state(federation, market, founder, network_team, candidate) == before
    defeated("proposal_grants_matcher_or_arbiter",
             "proposals grant OPERATOR only: proposeOperator(account, name); the roles-taking call no longer exists")


def test_a_passed_proposal_grants_operator_alone(federation, market, stage3, founder, network_team, accounts):
    candidate = accounts[5]
    pid = federation.proposeOperator(candidate, "China Mobile", {"from": founder}).return_value
    assert federation.getProposal(pid)[5] == OPERATOR
    tx = federation.vote(pid, {"from": network_team})
    assert tx.events["MemberAdmitted"]["roles"] == OPERATOR
    assert federation.rolesOf(candidate) == OPERATOR
    assert not federation.hasRole(candidate, MATCHER) and not federation.hasRole(candidate, ARBITER)


def test_third_party_clouds_are_counted_past_255(federation, founder):
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    clouds = [web3.to_checksum_address(f"0x{0xC10D0000 + i:040x}") for i in range(256)]
    sent = [  # sent straight through web3: 256 of brownie's transactions take ~20 s more
        web3.eth.send_transaction({"from": founder.address, "to": federation.address, "gas": 500_000,
                                   "data": federation.admit.encode_input(cloud, CLOUD, f"cloud {i}")})
        for i, cloud in enumerate(clouds)
    ]
    # The 256th overflowed the uint8 counter (Panic 0x11) and its admission reverted.
    assert [web3.eth.wait_for_transaction_receipt(t)["status"] for t in sent] == [1] * 256
    assert federation.thirdPartyClouds() == 256 and federation.rolesOf(clouds[-1]) == CLOUD
    federation.remove(clouds[0], {"from": founder})
    assert federation.thirdPartyClouds() == 255
    defeated("third_party_clouds_overflow", "thirdPartyClouds is a uint32: the 256th third-party cloud is admitted")
