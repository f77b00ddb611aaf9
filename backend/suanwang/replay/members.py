"""The chain side of the federation in a replay: funding the parties, admitting members (by the founder
or by the operators' vote), operators publishing their transit tariffs, and sellers staking and
registering their nodes (which the engine then offers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from suanwang.chain.contracts import NodeSpec
from suanwang.matching.market import MarketNode
from suanwang.privacy import node_key_pair
from suanwang.replay.chain import ReplayError, fund_gas
from suanwang.replay.records import OPERATOR, NodeState
from suanwang.replay.scenario import ROLE_BITS, TOKEN

if TYPE_CHECKING:
    from suanwang.replay.runner import Replay

# A seller's automatic stake: what its nodes require times this, the rest backing its open deals' locks.
STAKE_HEADROOM = 2


def setup(r: Replay) -> None:
    """Mints, funds, admits the start members and registers their nodes (before the 'before' snapshot)."""
    token, market, fed = r.chain.token, r.market, r.chain.federation
    for p in r.parties.values():
        fund_gas(r.w3, p.address)
        spec = r.s.party(p.name)
        if spec.tokens:
            r.tx(r.founder.name, "mint", token.mint(p.address, spec.tokens))
    for name, address in r.extra_accounts.items():
        if fed.roles_of(address):
            # The deployment's demo members are not in the scenario: they leave, so that the
            # federation (and every operators' vote) has only the scenario's parties.
            r.tx(r.founder.name, "remove", fed.remove(address))
            r.note(f"{name} removed from the federation (not in the scenario)")
    start = [spec.name for spec in r.s.parties if spec.admitted == "start"]
    for name in start:
        admit(r, name, register=False)
    publish_tariffs(r)
    for name in start:
        register_nodes(r, name)
    for spec in r.s.parties:
        if spec.deposit:
            r.tx(spec.name, "approve", token.approve(market.address, spec.deposit))
            r.tx(spec.name, "deposit", market.deposit(spec.deposit))


def admit(r: Replay, name: str, register: bool = True) -> None:
    party = r.parties[name]
    fed = r.chain.federation
    if party is r.founder:
        if party.roles != OPERATOR:
            r.tx(r.founder.name, "setRoles", fed.set_roles(party.address, party.roles))
    else:
        r.tx(r.founder.name, "admit", fed.admit(party.address, party.roles, name))
    party.member = True
    party.internal = r.stage == 1
    r.note(f"{name} admitted ({role_names(party.roles)})")
    if register:
        register_nodes(r, name)
    r.refresh_engine()


def role_names(mask: int) -> str:
    return ", ".join(r for r, bit in ROLE_BITS.items() if mask & bit)


def vote(r: Replay, candidate: str, proposer: str, voters: list[str]) -> None:
    fed = r.chain.federation
    party = r.parties[candidate]
    proposal = fed.proposal_count()
    r.tx(proposer, "proposeOperator", fed.propose_operator(party.address, candidate))
    needed = fed.proposal(proposal).needed
    yes = 1
    for voter in voters:
        if fed.roles_of(party.address):
            break
        r.tx(voter, "vote", fed.vote(proposal))
        yes += 1
    if not fed.roles_of(party.address):
        raise ReplayError(f"the vote on {candidate} got {yes} of {needed} votes needed; name more voters")
    if party.roles != OPERATOR:  # a vote grants OPERATOR alone; the founder grants the party's other roles
        r.tx(r.founder.name, "setRoles", fed.set_roles(party.address, party.roles))
    party.member = True
    party.admitted_by_vote = True
    r.counts["admitted_by_vote"] += 1
    r.note(f"{candidate} admitted by the operators' vote ({yes} of {needed} needed; proposed by {proposer})")
    register_nodes(r, candidate)
    r.refresh_engine()


def register_nodes(r: Replay, owner: str) -> None:
    mine = [n for n in r.nodes if n.owner == owner and not n.registered]
    if not mine:
        return
    party = r.parties[owner]
    registry, market, token = r.chain.registry, r.market, r.chain.token
    spec_party = r.s.party(owner)
    if spec_party.stake == "auto":
        # What its nodes require, and as much again to back its open deals: from stage 2 each deal
        # locks its compute fee of the seller's stake above the requirement until it is final.
        need = sum(registry.min_stake(n.spec["tier"]) for n in mine)
        stake = max(0, STAKE_HEADROOM * need - market.stake_of(party.address))
    else:
        stake = int(spec_party.stake)
    if stake:
        escrow = market.balance_of(party.address)
        if escrow < stake:
            r.tx(owner, "approve", token.approve(market.address, stake - escrow))
            r.tx(owner, "deposit", market.deposit(stake - escrow))
        r.tx(owner, "stake", market.stake(stake))
    # Its nodes carry the key its agent derives from its account key (privacy.keys), as a real seller's do.
    node_key = node_key_pair(party.key, r.chain_id)
    for node in mine:
        operator = r.parties[node.operator_party]
        if not operator.member:
            raise ReplayError(
                f"node {node.label} attaches to {node.router}, whose operator "
                f"{node.operator_party} is not a member yet; admit it first"
            )
        router = r.network.routers[node.router_index]
        spec = NodeSpec(
            node.spec["logic_mcu"],
            node.spec["parallel_mcu"],
            node.spec["neural_mcu"],
            node.spec["memory_mib"],
            node.spec["gpu_model"],
            node.spec["gpu_count"],
            node.spec["tier"],
            node.price,
            operator.address,
            router.router_id,
            router.locator.prefix,
            router.locator.length,
            node_key.public_key,
        )
        receipt = r.tx(owner, "registerNode", registry.register_node(spec))
        (node.node_id,) = registry.registered_ids(receipt)
        node.registered = True
        r.engine.add_node(market_node(r, node))
    r.note(f"{owner} registered {len(mine)} node(s)" + (f", staked {stake / TOKEN:g} tokens" if stake else ""))


def market_node(r: Replay, node: NodeState) -> MarketNode:
    return MarketNode(
        node_id=node.node_id,
        owner=r.parties[node.owner].address,
        operator=r.parties[node.operator_party].address,
        router=node.router_index,
        logic_mcu=node.spec["logic_mcu"],
        parallel_mcu=node.spec["parallel_mcu"],
        neural_mcu=node.spec["neural_mcu"],
        memory_mib=node.spec["memory_mib"],
        gpu_model=node.spec["gpu_model"],
        gpu_count=node.spec["gpu_count"],
        tier=node.spec["tier"],
        price_per_cu_hour=node.price,
    )


# ------------------------------------------------------------------ routing and bills


def publish_tariffs(r: Replay) -> None:
    """Every operator party that is a member and is paid for some topology's transit publishes its tariff
    (once): the highest transit price of the topologies it is paid for."""
    fed = r.chain.federation
    for name, party in r.parties.items():
        prices = [op.transit_price_per_gbps_hour for op in r.s.operators if op.paid_to == name]
        if name in r.tariffs or not prices or not party.member:
            continue
        if not fed.roles_of(party.address) & OPERATOR:
            continue
        r.tx(name, "setTransitTariff", r.market.set_transit_tariff(max(prices)))
        r.tariffs[name] = max(prices)
        r.note(f"{name} published its transit tariff, {max(prices) / TOKEN:g} tokens per Gbps-hour")


def top_up(r: Replay, owner: str) -> None:
    """A slashed seller restores the stake its nodes require (otherwise the market refuses every
    further match on its nodes with InsufficientStake)."""
    party = r.parties[owner]
    market, token = r.market, r.chain.token
    short = STAKE_HEADROOM * market.required_stake_of(party.address) - market.stake_of(party.address)
    if short <= 0 or r.stage < 2:
        return
    escrow = market.balance_of(party.address)
    if escrow < short:
        r.tx(owner, "approve", token.approve(market.address, short - escrow))
        r.tx(owner, "deposit", market.deposit(short - escrow))
    r.tx(owner, "stake", market.stake(short))
    r.counts["stake_top_ups"] += 1
    r.note(f"{owner} topped its stake up by {short / TOKEN:g} tokens after a slash")
