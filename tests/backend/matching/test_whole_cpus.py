"""The engine reserves the whole CPUs a job is given, where the node's provider reports its CPUs.

A provider runs each job on whole CPUs, the bought share of the node rounded up (lifecycle/resources.py),
so a node of 8,000 mCU on 2 CPUs holds two 1,000-mCU jobs at once, not eight: matching eight would leave
six waiting in the scheduler's queue while their deals' time runs."""

from __future__ import annotations

import numpy as np

from suanwang.matching.market import MarketEngine, MarketNode, MarketOrder, MarketPlacement
from suanwang.matching.market_model import NodeCondition
from suanwang.matching.model import StagePolicy

BUYER = "0x" + "b" * 40


def engine(cpus: int) -> MarketEngine:
    node = MarketNode(1, "0x" + "a" * 40, "0xop", 0, 8_000, 0, 0, 65_536, 0, 0, 1, 10**15)
    market = MarketEngine([node], None, StagePolicy(3), platform_fee_bps=0)
    market.set_conditions({1: NodeCondition(cpus=cpus)})
    return market


def order(n: int, logic_mcu: int = 1_000) -> MarketOrder:
    return MarketOrder(f"o{n}", BUYER, logic_mcu, 0, 0, 256, 0, 0, 0, 60, 10**18, 10**20, 0, 0.0, 0.0)


def placed(market: MarketEngine, order: MarketOrder) -> bool:
    return isinstance(market.place(order), MarketPlacement)


def test_orders_take_whole_cpus_where_the_provider_reports_them() -> None:
    reported, unreported = engine(cpus=2), engine(cpus=0)
    assert sum(placed(reported, order(n)) for n in range(8)) == 2  # 4,000 mCU (one CPU) each
    assert sum(placed(unreported, order(n)) for n in range(8)) == 8  # the mCU bought alone


def test_an_order_for_more_than_one_cpu_rounds_up_and_a_release_returns_it_all() -> None:
    market = engine(cpus=2)
    assert placed(market, order(1, logic_mcu=4_001))  # two CPUs: the whole node
    assert not placed(market, order(2))
    market.release("o1")
    assert (market.state.reserved == 0).all()
    assert placed(market, order(2))


def test_batch_clearing_counts_whole_cpus_too() -> None:
    market = engine(cpus=2)
    result = market.clear_batch([order(n) for n in range(5)])
    assert len(result.placements) == 2
    assert market.state.reserved[0, 0] == 8_000


def test_whole_cpus_never_make_a_too_large_order_fit() -> None:
    market = engine(cpus=2)
    assert market.state.demand_at((9_000, 0, 0), np.array([0]))[0, 0] == 9_000
    assert not placed(market, order(1, logic_mcu=9_000))
