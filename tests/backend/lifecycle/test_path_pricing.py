"""The matcher prices the path live, through the service: it ranks nodes by the whole bill at the tariffs
the operators published on chain, and when the best node's exact bill breaks one of the buyer's limits
it tries the next best node instead of leaving the order unmatched.

The buyer is in GEANT (Geant2012/FR). Node A (the market fixture's) is in CERNET, Beijing: its path
crosses GEANT and CERNET and its bill pays three operators. Node B, added here, is in GEANT (DE): its
bill pays one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from suanwang.network.config import load_peering_file
from tests.backend.lifecycle.conftest import GLOBAL_NETWORK, TOKEN, Market
from tests.support.orders import node_public_key

ACCESS = "Geant2012/FR"


def add_node_in_geant(market: Market, price_per_cu_hour: int) -> int:
    """Node B: the individual provider's, in Geant2012/DE, on China Mobile's network."""
    chain = market.chain
    seller = market.account("Idle-GPU lab (individual provider)")
    operator = market.account("China Mobile (second operator)")
    token, escrow, registry = (chain.contract(n) for n in ("SettlementToken", "Market", "NodeRegistry"))
    chain.transact(seller, token.functions.approve(escrow.address, 1_000 * TOKEN))
    chain.transact(seller, escrow.functions.deposit(1_000 * TOKEN))
    chain.transact(seller, escrow.functions.stake(1_000 * TOKEN))
    router = next(r for r in load_peering_file(GLOBAL_NETWORK).routers if r.name == "Geant2012/DE")
    spec = (64_000, 20_000, 0, 65_536, 0, 0, 1, price_per_cu_hour, operator.address,
            router.router_id, router.locator.prefix, router.locator.length,
            node_public_key(seller, chain.deployment.chain_id))  # fmt: skip
    chain.transact(seller, registry.functions.registerNode(spec))
    return int(registry.functions.nodeCount().call())


def matched(market: Market, order: dict[str, Any]) -> dict[str, Any]:
    placed = market.submit(order, ACCESS, ["true"])
    return market.wait_for(placed["id"], lambda o: o["state"] in ("on_chain", "unmatched"))


def test_the_engine_ranks_nodes_by_the_whole_bill_at_the_published_tariffs(
    market_factory: Callable[..., Market],
) -> None:
    market = market_factory()
    # B's compute is dearer than A's (1.6 against 1.5 tokens per CU-hour); A's path is made dear by
    # CERNET's network team, which publishes a transit tariff of 10 tokens per Gbps-hour.
    node_b = add_node_in_geant(market, 16 * 10**17)
    cernet = market.account("CERNET network team")
    market.chain.transact(cernet, market.chain.contract("Market").functions.setTransitTariff(10 * TOKEN))
    market.let_chain_time_pass(1)
    order = matched(market, market.order())
    assert order["state"] == "on_chain", order
    assert order["node_id"] == node_b, f"matched on node {order['node_id']}: {order['bill']}"
    # A's compute alone is cheaper: only the path's price, as published, makes B the better buy.
    assert int(order["bill"]["compute_fee"]) > 5_000 * 600 * 15 * 10**17 // 3_600_000


def test_an_order_over_its_transit_limit_on_the_best_node_goes_to_the_next(
    market_factory: Callable[..., Market],
) -> None:
    market = market_factory()
    node_b = add_node_in_geant(market, 16 * 10**17)
    market.let_chain_time_pass(1)
    # A's whole bill is the lowest (its compute saves more than its three transit lines cost), so the
    # engine ranks it first; but A's transit (about 1.25e14) is over the buyer's transit cap of 1e14,
    # and B's (5e13) is not.
    order = matched(market, market.order(maxTransit=10**14))
    assert order["state"] == "on_chain", order
    assert order["node_id"] == node_b
    assert sum(int(line["fee"]) for line in order["bill"]["transit"]) <= 10**14
