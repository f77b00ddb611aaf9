"""The typed gateway (suanwang.chain.contracts) against the contracts deployed on Anvil: each read gives what
the contract holds, as a typed value, after the transaction that changes it."""

from __future__ import annotations

from eth_account import Account

from suanwang.chain.contracts import ChainGateway, Unstaking
from suanwang.roles import Role
from suanwang.states import RoleName, role_names_of
from tests.support.stack import BUILD_DIR, Chain, Deployments

TOKEN = 10**18


def gateway(chain: Chain) -> ChainGateway:
    return ChainGateway.bind(chain.w3, chain.deployment, BUILD_DIR)


def test_the_head_time_is_the_latest_blocks(chain: Chain) -> None:
    assert gateway(chain).head_time() == chain.w3.eth.get_block("latest")["timestamp"]


def test_roles_epoch_and_buyer_role_are_read_from_the_federation(chain: Chain) -> None:
    federation = gateway(chain).federation
    buyer = chain.account_with(Role.BUYER).address
    assert federation.has_role(buyer, Role.BUYER) is True
    assert federation.has_role(Account.create().address, Role.BUYER) is False
    assert RoleName.BUYER in role_names_of(federation.roles_of(buyer))
    assert federation.epoch() == chain.contract("Federation").functions.epoch().call()


def test_the_nonce_floor_follows_a_cancel_of_all_orders(chain: Chain) -> None:
    market = gateway(chain).market
    buyer = chain.account_with(Role.BUYER)
    assert market.nonce_floor_of(buyer.address) == 0
    chain.transact(buyer, chain.contract("Market").functions.cancelAllOrders())
    assert market.nonce_floor_of(buyer.address) == 1 << 40


def test_wallet_escrow_stake_and_unstaking_follow_the_sellers_moves(deployments: Deployments) -> None:
    with deployments.chain(2) as chain:
        chain_gateway = gateway(chain)
        market, token = chain_gateway.market, chain_gateway.token
        seller = chain.account_with(Role.CLOUD)
        wallet = token.balance_of(seller.address)
        stake = market.stake_of(seller.address)
        assert wallet > 0 and market.unstaking_of(seller.address) == Unstaking(0, 0)

        escrow = market.balance_of(seller.address)
        chain.transact(seller, chain.contract("SettlementToken").functions.approve(market.address, 5 * TOKEN))
        assert token.allowance(seller.address, market.address) == 5 * TOKEN
        chain.transact(seller, chain.contract("Market").functions.deposit(5 * TOKEN))
        assert token.balance_of(seller.address) == wallet - 5 * TOKEN
        assert market.balance_of(seller.address) == escrow + 5 * TOKEN
        chain.transact(seller, chain.contract("Market").functions.stake(5 * TOKEN))
        assert market.stake_of(seller.address) == stake + 5 * TOKEN
        assert market.balance_of(seller.address) == escrow
        assert market.required_stake_of(seller.address) == (
            chain.contract("Market").functions.requiredStakeOf(seller.address).call()
        )

        chain.transact(seller, chain.contract("Market").functions.requestUnstake(2 * TOKEN))
        unstaking = market.unstaking_of(seller.address)
        assert unstaking.amount == 2 * TOKEN and unstaking.ready_at > chain_gateway.head_time()
        assert market.stake_of(seller.address) == stake + 3 * TOKEN


def test_an_operator_proposal_and_its_votes_are_read_typed(deployments: Deployments) -> None:
    with deployments.chain(3) as chain:
        federation = gateway(chain).federation
        proposer = chain.account_with(Role.OPERATOR)
        candidate = Account.create().address
        before = federation.proposal_count()
        chain.transact(proposer, chain.contract("Federation").functions.proposeOperator(candidate, "Newcomer"))
        assert federation.proposal_count() == before + 1

        proposal = federation.proposal(before)
        assert (proposal.id, proposal.account, proposal.name) == (before, candidate, "Newcomer")
        assert proposal.admit and not proposal.executed and proposal.roles == Role.OPERATOR
        assert proposal.open_at(gateway(chain).head_time()) and not proposal.open_at(proposal.deadline + 1)
        assert federation.has_voted(before, proposer.address) == (proposal.yes == 1)
