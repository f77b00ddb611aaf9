import brownie
import pytest
from conftest import ARBITER, BUYER, CLOUD, MATCHER, OPERATOR, PLATFORM_FEE_BPS, PROVIDER, err, plain


def test_deployer_is_founding_operator_at_stage_one(federation, founder):
    assert federation.founder() == founder
    assert federation.stage() == 1
    assert federation.platformFeeBps() == PLATFORM_FEE_BPS
    assert federation.rolesOf(founder) == OPERATOR | MATCHER | ARBITER
    assert federation.hasRole(founder, OPERATOR)
    assert federation.operatorCount() == 2  # founder and its network team


def test_founder_admits_internal_team(federation, founder, accounts):
    tx = federation.admit(accounts[5], CLOUD | BUYER, "storage team", {"from": founder})
    assert tx.events["MemberAdmitted"]["member"] == accounts[5]
    assert tx.events["MemberAdmitted"]["roles"] == CLOUD | BUYER
    assert tx.events["MemberAdmitted"]["name"] == "storage team"
    assert federation.rolesOf(accounts[5]) == CLOUD | BUYER
    assert not federation.isThirdParty(accounts[5])


def test_non_founder_cannot_govern(federation, buyer, accounts):
    with brownie.reverts(err("NotGovernance", buyer.address)):
        federation.admit(accounts[5], CLOUD, "x", {"from": buyer})
    with brownie.reverts(err("NotGovernance", buyer.address)):
        federation.setPlatformFee(10, {"from": buyer})
    with brownie.reverts(err("NotGovernance", buyer.address)):
        federation.advanceStage(2, {"from": buyer})


def test_provider_not_allowed_in_stage_one(federation, founder, accounts):
    with brownie.reverts(err("RoleNotAllowedInStage", PROVIDER, 1)):
        federation.admit(accounts[5], PROVIDER, "idle servers inc", {"from": founder})


def test_invalid_roles_rejected(federation, founder, accounts):
    with brownie.reverts(err("InvalidRoles", 0)):
        federation.admit(accounts[5], 0, "nobody", {"from": founder})
    with brownie.reverts(err("InvalidRoles", 64)):
        federation.admit(accounts[5], 64, "bad", {"from": founder})


def test_member_admitted_twice_rejected(federation, founder, buyer):
    with brownie.reverts(err("AlreadyMember", buyer.address)):
        federation.admit(buyer, BUYER, "again", {"from": founder})


def test_roles_change_and_removal(federation, founder, buyer):
    tx = federation.setRoles(buyer, BUYER | CLOUD, {"from": founder})
    assert plain(tx.events["MemberRolesChanged"].values()) == plain((buyer, BUYER, BUYER | CLOUD))
    tx = federation.remove(buyer, {"from": founder})
    assert tx.events["MemberRemoved"]["member"] == buyer
    assert federation.rolesOf(buyer) == 0
    with brownie.reverts(err("NotMember", buyer.address)):
        federation.remove(buyer, {"from": founder})
    with brownie.reverts(err("NotMember", buyer.address)):
        federation.setRoles(buyer, BUYER, {"from": founder})


def test_founder_is_permanent(federation, founder):
    with brownie.reverts(err("FounderIsPermanent")):
        federation.remove(founder, {"from": founder})
    with brownie.reverts(err("FounderIsPermanent")):
        federation.setRoles(founder, MATCHER, {"from": founder})


def test_stage_moves_forward_one_at_a_time(federation, founder):
    with brownie.reverts(err("InvalidStageTransition", 1, 3)):
        federation.advanceStage(3, {"from": founder})
    with brownie.reverts(err("InvalidStageTransition", 1, 1)):
        federation.advanceStage(1, {"from": founder})
    tx = federation.advanceStage(2, {"from": founder})
    assert plain(tx.events["StageAdvanced"].values()) == plain((1, 2))
    with brownie.reverts(err("InvalidStageTransition", 2, 1)):
        federation.advanceStage(1, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    with brownie.reverts(err("InvalidStageTransition", 3, 4)):
        federation.advanceStage(4, {"from": founder})
    assert federation.stage() == 3


def test_platform_fee_is_capped(federation, founder):
    tx = federation.setPlatformFee(500, {"from": founder})
    assert plain(tx.events["PlatformFeeChanged"].values()) == plain((PLATFORM_FEE_BPS, 500))
    with brownie.reverts(err("FeeTooHigh", 2001, 2000)):
        federation.setPlatformFee(2001, {"from": founder})


def test_stage_two_admits_one_third_party_cloud(federation, founder, accounts):
    federation.advanceStage(2, {"from": founder})
    federation.admit(accounts[5], CLOUD | BUYER, "Aliyun", {"from": founder})
    assert federation.isThirdParty(accounts[5])
    assert federation.thirdPartyClouds() == 1
    with brownie.reverts(err("ThirdPartyCloudLimit", 1)):
        federation.admit(accounts[6], CLOUD, "Tencent Cloud", {"from": founder})


def test_stage_two_refuses_third_party_operator_provider_or_plain_buyer(federation, founder, accounts):
    federation.advanceStage(2, {"from": founder})
    with brownie.reverts(err("RoleNotAllowedInStage", OPERATOR, 2)):
        federation.admit(accounts[5], OPERATOR, "China Mobile", {"from": founder})
    with brownie.reverts(err("RoleNotAllowedInStage", PROVIDER, 2)):
        federation.admit(accounts[5], PROVIDER, "idle servers", {"from": founder})
    with brownie.reverts(err("RoleNotAllowedInStage", BUYER, 2)):
        federation.admit(accounts[5], BUYER, "a third-party buyer", {"from": founder})


def test_stage_three_admits_providers_directly(federation, founder, accounts):
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    federation.admit(accounts[5], PROVIDER, "idle servers", {"from": founder})
    federation.admit(accounts[6], CLOUD, "cloud one", {"from": founder})
    federation.admit(accounts[7], CLOUD, "cloud two", {"from": founder})
    assert federation.hasRole(accounts[5], PROVIDER)


def test_stage_three_operator_needs_majority_vote(federation, founder, network_team, accounts):
    candidate = accounts[5]
    with brownie.reverts(err("VotingNotOpen", 1)):
        federation.proposeOperator(candidate, "China Mobile", {"from": founder})
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    with brownie.reverts(err("OperatorVoteRequired", candidate.address)):
        federation.admit(candidate, OPERATOR, "China Mobile", {"from": founder})
    tx = federation.proposeOperator(candidate, "China Mobile", {"from": founder})
    pid = tx.return_value
    assert tx.events["OperatorVoted"]["needed"] == 2  # two operators: strict majority is 2
    assert federation.rolesOf(candidate) == 0
    with brownie.reverts(err("AlreadyVoted", pid, founder.address)):
        federation.vote(pid, {"from": founder})
    tx = federation.vote(pid, {"from": network_team})
    assert "ProposalExecuted" in tx.events
    assert tx.events["MemberAdmitted"]["member"] == candidate
    assert federation.rolesOf(candidate) == OPERATOR
    assert federation.operatorCount() == 3
    with brownie.reverts(err("ProposalClosed", pid)):
        federation.vote(pid, {"from": network_team})


def test_stage_three_operator_removal_by_vote(federation, founder, network_team, buyer):
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    with brownie.reverts(err("OperatorVoteRequired", network_team.address)):
        federation.remove(network_team, {"from": founder})
    with brownie.reverts(err("MissingRole", buyer.address, OPERATOR, BUYER)):
        federation.proposeOperatorRemoval(network_team, {"from": buyer})
    pid = federation.proposeOperatorRemoval(network_team, {"from": founder}).return_value
    tx = federation.vote(pid, {"from": network_team})
    assert tx.events["MemberRemoved"]["member"] == network_team
    assert federation.operatorCount() == 1


def test_expired_proposal_cannot_pass(federation, founder, network_team, accounts, chain):
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    pid = federation.proposeOperator(accounts[5], "late", {"from": founder}).return_value
    chain.sleep(7 * 24 * 3600 + 10)
    chain.mine()
    with brownie.reverts(err("ProposalClosed", pid)):
        federation.vote(pid, {"from": network_team})
    with brownie.reverts(err("UnknownProposal", 99)):
        federation.vote(99, {"from": network_team})


def test_founder_grants_an_operator_voted_in_its_other_roles(federation, founder, network_team, accounts):
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    pid = federation.proposeOperator(accounts[5], "China Mobile", {"from": founder}).return_value
    federation.vote(pid, {"from": network_team})
    federation.setRoles(accounts[5], OPERATOR | MATCHER | BUYER, {"from": founder})
    assert federation.rolesOf(accounts[5]) == OPERATOR | MATCHER | BUYER


def test_a_candidate_is_free_again_once_its_proposal_expires(federation, founder, accounts, chain):
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    federation.proposeOperator(accounts[5], "China Mobile", {"from": founder})
    chain.sleep(7 * 24 * 3600 + 10)
    chain.mine()
    federation.admit(accounts[5], CLOUD, "China Mobile cloud", {"from": founder})
    assert federation.rolesOf(accounts[5]) == CLOUD


def test_founder_may_still_remove_an_internal_operator_in_stage_two(federation, founder, network_team):
    federation.advanceStage(2, {"from": founder})
    federation.setRoles(network_team, BUYER, {"from": founder})
    assert federation.operatorCount() == 1 and federation.rolesOf(network_team) == BUYER


def test_only_operators_of_the_proposal_time_may_vote_on_it(federation, founder, network_team, buyer, accounts):
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    pid = federation.proposeOperator(accounts[5], "China Mobile", {"from": founder}).return_value
    assert federation.mayVote(pid, network_team)
    assert not federation.mayVote(pid, founder)  # voted when proposing
    assert not federation.mayVote(pid, buyer)  # not an operator
    assert not federation.mayVote(pid + 1, network_team)  # no such proposal


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_seller_roles_per_stage(federation, stage):
    expected = {1: CLOUD, 2: CLOUD, 3: CLOUD | PROVIDER | OPERATOR}[stage]
    assert federation.sellerRoles(stage) == expected
