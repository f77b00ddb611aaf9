"""The chain side of the federation in a replay: funding the parties, admitting members (by the founder
or by the operators' vote), operators publishing their transit tariffs, and sellers staking and
registering their nodes (which the engine then offers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from web3.logs import DISCARD

from suanwang.matching.market import MarketNode
from suanwang.replay.chain import ReplayError, fund_gas
from suanwang.replay.records import OPERATOR, NodeState
from suanwang.replay.scenario import ROLE_BITS, TOKEN

if TYPE_CHECKING:
    from suanwang.replay.runner import Replay

# A seller's automatic stake: what its nodes require times this, the rest backing its open deals' locks.
STAKE_HEADROOM = 2


def setup(r: Replay) -> None:
    """Mints, funds, admits the start members and registers their nodes (before the 'before' snapshot)."""
    token, market = r.c["SettlementToken"], r.market
    for p in r.parties.values():
        fund_gas(r.w3, p.address)
        spec = r.s.party(p.name)
        if spec.tokens:
            r.tx(r.founder.name, "mint", token.functions.mint(p.address, spec.tokens))
    fed = r.c["Federation"]
    for name, address in r.extra_accounts.items():
        if int(fed.functions.rolesOf(address).call()):
            # The deployment's demo members are not in the scenario: they leave, so that the
            # federation (and every operators' vote) has only the scenario's parties.
            r.tx(r.founder.name, "remove", fed.functions.remove(address))
            r.note(f"{name} removed from the federation (not in the scenario)")
    start = [spec.name for spec in r.s.parties if spec.admitted == "start"]
    for name in start:
        admit(r, name, register=False)
    publish_tariffs(r)
    for name in start:
        register_nodes(r, name)
    for spec in r.s.parties:
        if spec.deposit:
            r.tx(spec.name, "approve", token.functions.approve(market.address, spec.deposit))
            r.tx(spec.name, "deposit", market.functions.deposit(spec.deposit))


def admit(r: Replay, name: str, register: bool = True) -> None:
    party = r.parties[name]
    fed = r.c["Federation"]
    if party is r.founder:
        if party.roles != OPERATOR:
            r.tx(r.founder.name, "setRoles", fed.functions.setRoles(party.address, party.roles))
    else:
        r.tx(r.founder.name, "admit", fed.functions.admit(party.address, party.roles, name))
    party.member = True
    party.internal = r.stage == 1
    r.note(f"{name} admitted ({role_names(party.roles)})")
    if register:
        register_nodes(r, name)
    r.refresh_engine()


def role_names(mask: int) -> str:
    return ", ".join(r for r, bit in ROLE_BITS.items() if mask & bit)


def vote(r: Replay, candidate: str, proposer: str, voters: list[str]) -> None:
    fed = r.c["Federation"]
    party = r.parties[candidate]
    proposal = int(fed.functions.proposalCount().call())
    r.tx(proposer, "proposeOperator", fed.functions.proposeOperator(party.address, candidate))
    needed = int(fed.functions.getProposal(proposal).call()[4])
    yes = 1
    for voter in voters:
        if int(fed.functions.rolesOf(party.address).call()):
            break
        r.tx(voter, "vote", fed.functions.vote(proposal))
        yes += 1
    if not int(fed.functions.rolesOf(party.address).call()):
        raise ReplayError(f"the vote on {candidate} got {yes} of {needed} votes needed; name more voters")
    if party.roles != OPERATOR:  # a vote grants OPERATOR alone; the founder grants the party's other roles
        r.tx(r.founder.name, "setRoles", fed.functions.setRoles(party.address, party.roles))
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
    registry, market, token = r.c["NodeRegistry"], r.market, r.c["SettlementToken"]
    spec_party = r.s.party(owner)
    if spec_party.stake == "auto":
        # What its nodes require, and as much again to back its open deals: from stage 2 each deal
        # locks its compute fee of the seller's stake above the requirement until it is final.
        need = sum(int(registry.functions.minStake(n.spec["tier"]).call()) for n in mine)
        stake = max(0, STAKE_HEADROOM * need - int(market.functions.stakeOf(party.address).call()))
    else:
        stake = int(spec_party.stake)
    if stake:
        escrow = int(market.functions.balanceOf(party.address).call())
        if escrow < stake:
            r.tx(owner, "approve", token.functions.approve(market.address, stake - escrow))
            r.tx(owner, "deposit", market.functions.deposit(stake - escrow))
        r.tx(owner, "stake", market.functions.stake(stake))
    for node in mine:
        operator = r.parties[node.operator_party]
        if not operator.member:
            raise ReplayError(
                f"node {node.label} attaches to {node.router}, whose operator "
                f"{node.operator_party} is not a member yet; admit it first"
            )
        router = r.network.routers[node.router_index]
        spec = (
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
            bytes(32),  # no encryption key
        )
        receipt = r.tx(owner, "registerNode", registry.functions.registerNode(spec))
        events = registry.events.NodeRegistered().process_receipt(receipt, errors=DISCARD)
        node.node_id = int(events[0]["args"]["nodeId"])
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
    fed = r.c["Federation"]
    for name, party in r.parties.items():
        prices = [op.transit_price_per_gbps_hour for op in r.s.operators if op.paid_to == name]
        if name in r.tariffs or not prices or not party.member:
            continue
        if not int(fed.functions.rolesOf(party.address).call()) & OPERATOR:
            continue
        r.tx(name, "setTransitTariff", r.market.functions.setTransitTariff(max(prices)))
        r.tariffs[name] = max(prices)
        r.note(f"{name} published its transit tariff, {max(prices) / TOKEN:g} tokens per Gbps-hour")


def top_up(r: Replay, owner: str) -> None:
    """A slashed seller restores the stake its nodes require (otherwise the market refuses every
    further match on its nodes with InsufficientStake)."""
    party = r.parties[owner]
    market, token = r.market, r.c["SettlementToken"]
    short = STAKE_HEADROOM * int(market.functions.requiredStakeOf(party.address).call()) - int(
        market.functions.stakeOf(party.address).call()
    )
    if short <= 0 or r.stage < 2:
        return
    escrow = int(market.functions.balanceOf(party.address).call())
    if escrow < short:
        r.tx(owner, "approve", token.functions.approve(market.address, short - escrow))
        r.tx(owner, "deposit", market.functions.deposit(short - escrow))
    r.tx(owner, "stake", market.functions.stake(short))
    r.counts["stake_top_ups"] += 1
    r.note(f"{owner} topped its stake up by {short / TOKEN:g} tokens after a slash")
