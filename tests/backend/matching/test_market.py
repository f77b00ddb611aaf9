"""The marketplace mode (MarketEngine): on-chain units, the contract's checks and arithmetic."""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suanwang import fees
from suanwang.errors import InputError, NotFoundError
from suanwang.matching import (
    Engine,
    MarketEngine,
    MarketNode,
    MarketOrder,
    MarketPlacement,
    Node,
    StagePolicy,
    Unplaced,
)
from suanwang.matching.market import compute_fee, fee_vectors, platform_fee

TOKEN = 10**18
A100 = 19  # any non-zero uint16 code; the market compares codes, it does not grade them


class LineNetwork:
    """Routers on a line, 5 ms apart; bandwidth 100 Gbps over one hop, less over more."""

    def latency_ms(self, access_point, routers):
        return 5.0 * np.abs(np.asarray(routers) - access_point)

    def bandwidth_gbps(self, access_point, routers):
        return 100.0 / (1 + np.abs(np.asarray(routers) - access_point))


def node(node_id, *, owner="operator", router=0, logic=64_000, parallel=10_000, neural=0, memory=256 * 1024,
         gpu_model=0, gpu_count=0, tier=1, price=TOKEN, reliability=1.0):
    return MarketNode(node_id, owner, "op-a", router, logic, parallel, neural, memory, gpu_model, gpu_count, tier,
                      price, reliability)


def order(order_id="o1", *, logic=1000, parallel=0, neural=0, memory=1024, gpu_model=0, gpu_count=0, min_tier=0,
          duration=3600, max_price=10 * TOKEN, max_total=10**30, access_point=0, max_latency=0.0, min_bandwidth=0.0):
    return MarketOrder(order_id, "buyer", logic, parallel, neural, memory, gpu_model, gpu_count, min_tier, duration,
                       max_price, max_total, access_point, max_latency, min_bandwidth)


def engine(nodes, *, fee_bps=250, transit=None, stage=None):
    return MarketEngine(nodes, LineNetwork(), stage or StagePolicy(3), fee_bps, transit)


# ---------------------------------------------------------------------- the chain, written out independently
def chain_accepts(o: MarketOrder, n: MarketNode, reserved: tuple[int, int, int], p: MarketPlacement, fee_bps: int,
                  transit: int) -> None:
    """Market._match / NodeRegistry.reserve / Market._checkBill for this placement; asserts each check."""
    assert p.node_id == n.node_id
    for have, taken, want in zip(n.capacity, reserved, o.demand, strict=True):
        assert taken + want <= have  # InsufficientCapacity
    assert n.price_per_cu_hour <= o.max_price_per_cu_hour  # PriceAboveLimit
    assert n.memory_mib >= o.memory_mib  # NodeDoesNotFit memoryMib
    assert o.gpu_model == 0 or n.gpu_model == o.gpu_model
    assert n.gpu_count >= o.gpu_count and n.tier >= o.min_tier
    mcu = o.logic_mcu + o.parallel_mcu + o.neural_mcu
    compute = (n.price_per_cu_hour * mcu * o.duration_s) // (1000 * 3600)
    assert p.compute_fee == compute  # ComputeFeeMismatch
    assert p.platform_fee == compute * fee_bps // 10_000  # PlatformFeeMismatch
    assert p.transit_estimate == transit
    assert p.total == compute + p.platform_fee + transit <= o.max_total  # BillAboveLimit


# ---------------------------------------------------------------------- placement and reservation
def test_a_match_reserves_the_orders_mcu_and_release_returns_it():
    e = engine([node(1, logic=4000, parallel=2000, neural=1000)])
    first = e.place(order("a", logic=3000, parallel=2000, neural=1000))
    assert isinstance(first, MarketPlacement) and first.node_id == 1
    assert e.state.free[0].tolist() == [1000, 0, 0]
    second = e.place(order("b", logic=2000))
    assert isinstance(second, Unplaced)
    assert second.explanation.text == "1 node has too little logic capacity left."
    e.release("a")
    assert isinstance(e.place(order("b", logic=2000)), MarketPlacement)
    with pytest.raises(NotFoundError):
        e.release("a")


def test_memory_gpu_and_tier_are_checked_but_not_consumed():
    e = engine([node(1, logic=100_000, memory=8192, gpu_model=A100, gpu_count=2, tier=2)])
    for i in range(5):  # each needs all the memory and both GPUs; none of it is used up
        assert isinstance(e.place(order(f"o{i}", memory=8192, gpu_model=A100, gpu_count=2, min_tier=2)),
                          MarketPlacement)
    refused = e.explain(order("x", memory=16384, gpu_model=A100 + 1, gpu_count=4, min_tier=3))
    # One node, counted once under the first check that refuses it.
    assert [r.code for r in refused.rejections] == ["gpu_model"]
    assert e.explain(order("y", gpu_count=4)).text == "1 node has fewer than 4 GPUs."
    assert e.explain(order("z", min_tier=3)).text == "1 node is below the super-large tier."
    assert e.explain(order("w", memory=16384)).text == "1 node has less than 16 GiB of memory."


def test_gpu_model_zero_means_any():
    e = engine([node(1, gpu_model=A100, gpu_count=1), node(2, gpu_model=A100 + 1, gpu_count=1)])
    assert set(e.feasible(order(gpu_model=0, gpu_count=1))) == {1, 2}
    assert e.feasible(order(gpu_model=A100 + 1, gpu_count=1)) == [2]


def test_explanation_is_plain_sentences_per_reason():
    nodes = [
        node(1, neural=1000, router=0),  # too little neural
        node(2, neural=1000, router=0),  # too little neural
        node(3, neural=100_000, price=3 * TOKEN, router=0),  # over the price
        node(4, neural=100_000, router=5),  # 25 ms away
        node(5, neural=100_000, router=6),
        node(6, neural=100_000, router=9),
        node(7, neural=100_000, router=2),  # the one that can
    ]
    e = engine(nodes)
    o = order(neural=50_000, max_price=2 * TOKEN, max_latency=20.0)
    assert e.explain(o).text == (
        "2 nodes have too little neural capacity left; 1 node's price is over your 2 tokens per CU-hour; "
        "3 nodes are farther than 20 ms."
    )
    placed = e.place(o)
    assert isinstance(placed, MarketPlacement) and placed.node_id == 7 and placed.latency_ms == 10.0
    explanation = e.explain(dataclasses.replace(o, order_id="o2"))
    assert explanation.reason_for(1) == "rejected by mcu_capacity (neural)"
    assert explanation.reason_for(7).startswith("feasible")


def test_bill_over_max_total_is_refused_with_transit_counted():
    def transit(o, n):
        return 10**17 * n.router

    e = engine([node(1, router=0, price=TOKEN), node(2, router=3, price=TOKEN)], fee_bps=0, transit=transit)
    # 1 CU for 1 h at 1 token = 1 token compute; node 2 adds 0.3 tokens transit.
    o = order(logic=1000, max_total=TOKEN + 2 * 10**17)
    assert e.explain(o).sentences[0] == "1 node's bill would be over your maximum of 1.2 tokens"
    placed = e.place(o)
    assert isinstance(placed, MarketPlacement)
    assert (placed.node_id, placed.compute_fee, placed.transit_estimate, placed.total) == (1, TOKEN, 0, TOKEN)


def test_fees_equal_the_contract_formula_at_large_values():
    price = 10**18 + 7
    big = [node(1, logic=2**61, parallel=2**61, neural=2**61, price=price)]
    e = engine(big, fee_bps=333)
    o = order(logic=2**40 + 1, parallel=2**39 + 3, neural=12_345_679, duration=2**32 - 1, max_price=2**128 - 1,
              max_total=2**128 - 1)
    placed = e.place(o)
    assert isinstance(placed, MarketPlacement)
    mcu = o.logic_mcu + o.parallel_mcu + o.neural_mcu
    expected = price * mcu * o.duration_s // 3_600_000
    assert placed.compute_fee == expected == compute_fee(price, mcu, o.duration_s)
    assert placed.platform_fee == expected * 333 // 10_000 == platform_fee(expected, 333)
    assert placed.total == expected + placed.platform_fee
    assert expected > 2**63  # the exact (Python integer) path, not int64
    # A bill the chain cannot even carry (computeFee is uint128) is over every maxTotal.
    huge = order("huge", logic=2**60, duration=2**32 - 1, max_price=2**128 - 1, max_total=2**128 - 1)
    assert e.explain(huge).rejections[0].code == "total"
    # Floors, exactly: 1 mCU for 1 s at 3,599,999 base units per CU-hour bills 0.
    small = engine([node(1, price=3_599_999)])
    tiny = small.place(order(logic=1, duration=1))
    assert isinstance(tiny, MarketPlacement) and tiny.compute_fee == 0


def test_fee_in_int64_range_matches_formula_for_many_prices():
    rng = np.random.default_rng(3)
    prices = [int(p) for p in rng.integers(0, 10**15, 50)]
    e = engine([node(i + 1, price=p) for i, p in enumerate(prices)], fee_bps=123)
    o = order(logic=1234, parallel=0, duration=7777, max_price=10**16)
    compute, platform, _, total = e.bills(o, np.arange(len(prices)))
    for p, c, f, t in zip(prices, compute, platform, total, strict=True):
        assert int(c) == p * 1234 * 7777 // 3_600_000 and int(f) == int(c) * 123 // 10_000 and int(t) == int(c) + int(f)


def test_price_check_is_exact_at_the_limit():
    e = engine([node(1, price=2**100), node(2, price=2**100 + 1)])
    assert e.feasible(order(max_price=2**100, max_total=2**128 - 1)) == [1]


def test_scores_prefer_cheaper_total_then_nearer_then_tighter_fit():
    e = engine([node(1, price=2 * TOKEN, router=0), node(2, price=TOKEN, router=4)])
    placed = e.place(order("cheap"))
    assert isinstance(placed, MarketPlacement) and placed.node_id == 2
    same_price = engine([node(1, router=4), node(2, router=1)])
    placed = same_price.place(order("near"))
    assert isinstance(placed, MarketPlacement) and placed.node_id == 2
    # Same price and place: a CPU order goes to the CPU-only node, not the one with idle neural capacity.
    fit = engine([node(1, logic=64_000, neural=500_000), node(2, logic=64_000)])
    placed = fit.place(order("cpu", logic=8000))
    assert isinstance(placed, MarketPlacement) and placed.node_id == 2


def test_stage_policy_limits_sellers():
    e = engine([node(1, owner="0xOperator"), node(2, owner="0xSeller")], stage=StagePolicy(1, "0xOperator"))
    assert e.feasible(order()) == [1]
    assert "in stage 1 only 0xOperator's own nodes serve" in e.explain(order()).text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**96 - 1) | st.integers(0, 10**12), min_size=1, max_size=8),
       st.integers(1, 3 * 2**62), st.integers(1, 2**32 - 1), st.integers(0, 10_000))
def test_fee_vectors_equal_the_fees_module_on_the_int64_and_the_exact_path(prices, mcu, duration, fee_bps):
    compute, platform = fee_vectors(prices, mcu, duration, fee_bps)
    expected = [fees.compute_fee(p, mcu, duration) for p in prices]
    assert [int(c) for c in compute] == expected
    assert [int(f) for f in platform] == [fees.platform_fee(c, fee_bps) for c in expected]
    # The market module's names are the fees module's functions, not a copy.
    assert (compute_fee, platform_fee) == (fees.compute_fee, fees.platform_fee)


def test_fee_vectors_take_the_int64_path_only_when_nothing_can_overflow():
    assert fee_vectors([10**6], 1000, 3600, 250)[0].dtype == np.int64
    assert fee_vectors([2**40], 2**20, 2**20, 250)[0].dtype == object


# ---------------------------------------------------------------------- excluding nodes
def test_place_excluding_the_best_node_takes_the_best_of_the_others():
    e = engine([node(1, price=3 * TOKEN), node(2, price=TOKEN), node(3, price=2 * TOKEN)])
    placed = e.place(order("a"), exclude={2})
    assert isinstance(placed, MarketPlacement) and placed.node_id == 3
    assert e.state.free[e.state.slot(2)].tolist() == [64_000, 10_000, 0]  # nothing reserved on the excluded node


def test_feasible_leaves_out_excluded_nodes():
    e = engine([node(1), node(2), node(3, memory=1)])
    assert e.feasible(order(), exclude={1}) == [2]
    assert e.feasible(order(), exclude=set()) == [1, 2]


def test_excluding_every_feasible_node_says_the_caller_excluded_them():
    e = engine([node(1), node(2), node(3, memory=1)])
    unplaced = e.place(order("a"), exclude={1, 2, 3})
    assert isinstance(unplaced, Unplaced)
    explanation = unplaced.explanation
    assert explanation.feasible == 0
    # Node 3 fails a check, which is its reason; only the nodes that pass every check count as excluded.
    assert explanation.text == "1 node has less than 1 GiB of memory; 2 nodes were excluded by the caller."
    assert explanation.reason_for(1) == "rejected by market (excluded)"
    assert explanation.reason_for(3) == "rejected by node_fit (memory)"
    assert "a" not in e.reservations


def test_excluding_an_unknown_node_is_an_error():
    with pytest.raises(NotFoundError, match="no node 9"):
        engine([node(1)]).place(order(), exclude={9})


# ---------------------------------------------------------------------- node lifecycle
def test_update_node_keeps_reservations_and_refuses_capacity_below_them():
    e = engine([node(1, logic=10_000, price=TOKEN)])
    assert isinstance(e.place(order("a", logic=6000)), MarketPlacement)
    e.update_node(node(1, logic=8000, price=2 * TOKEN))
    assert e.state.free[0, 0] == 2000
    assert e.feasible(order("b", logic=2000, max_price=TOKEN)) == []
    with pytest.raises(InputError) as error:
        e.update_node(node(1, logic=5000))
    assert error.value.field == "1:logic_mcu"
    with pytest.raises(NotFoundError):
        e.update_node(node(9))


def test_removed_node_takes_no_new_orders_but_releases_and_can_resume():
    e = engine([node(1), node(2)])
    placed = e.place(order("a"))
    assert isinstance(placed, MarketPlacement)
    e.remove_node(placed.node_id)
    assert placed.node_id not in e.feasible(order("b"))
    assert "1 node is paused or retired" in e.explain(order("b")).text
    e.release("a")
    e.add_node(node(placed.node_id, logic=1000))
    assert placed.node_id in e.feasible(order("b"))
    with pytest.raises(InputError):
        e.add_node(node(placed.node_id))
    e.add_node(node(3, owner="new-seller"))
    assert 3 in e.feasible(order("b"))


def test_reserve_existing_rebuilds_state_after_restart():
    e = engine([node(1, logic=4000, price=5 * TOKEN)])
    # The deal was matched before a price rise; it is recorded without market checks.
    e.reserve_existing(order("old", logic=3000, max_price=TOKEN), 1)
    assert e.state.free[0, 0] == 1000
    with pytest.raises(InputError) as error:
        e.reserve_existing(order("too-big", logic=2000), 1)
    assert error.value.field == "too-big:logic_mcu"
    with pytest.raises(InputError):
        e.reserve_existing(order("old", logic=1), 1)
    with pytest.raises(NotFoundError):
        e.reserve_existing(order("x"), 42)
    e.release("old")
    assert e.state.free[0, 0] == 4000


# ---------------------------------------------------------------------- validation and profiles
@pytest.mark.parametrize(("change", "field"), [
    ({"logic": 0}, "o1:logic_mcu"),
    ({"neural": -1}, "o1:neural_mcu"),
    ({"duration": 0}, "o1:duration_s"),
    ({"min_tier": 4}, "o1:min_tier"),
    ({"gpu_count": 2**16}, "o1:gpu_count"),
    ({"max_total": -1}, "o1:max_total"),
    ({"max_price": 2**128}, "o1:max_price_per_cu_hour"),
    ({"max_latency": -1.0}, "o1:max_latency_ms"),
    ({"min_bandwidth": float("nan")}, "o1:min_bandwidth_gbps"),
])
def test_malformed_orders_name_the_field(change, field):
    e = engine([node(1)])
    with pytest.raises(InputError) as error:
        e.place(order(**change))
    assert error.value.field == field


@pytest.mark.parametrize(("change", "field"), [
    ({"logic": 0, "parallel": 0, "neural": 0}, "5:logic_mcu"),
    ({"gpu_model": A100}, "5:gpu_count"),
    ({"tier": 7}, "5:tier"),
    ({"price": -1}, "5:price_per_cu_hour"),
    ({"reliability": 1.5}, "5:reliability"),
])
def test_malformed_nodes_name_the_field(change, field):
    with pytest.raises(InputError) as error:
        engine([node(5, **change)])
    assert error.value.field == field


def test_engines_refuse_each_others_profiles():
    with pytest.raises(InputError):
        Engine([Node("n", 1000, 1024)], profile="market")
    with pytest.raises(InputError):
        MarketEngine([node(1)], None, StagePolicy(3), 0, profile="default")


def test_placing_the_same_order_twice_is_an_error():
    e = engine([node(1)])
    e.place(order("a"))
    with pytest.raises(InputError):
        e.place(order("a"))


# ---------------------------------------------------------------------- batch
def test_batch_matches_more_than_greedy_when_order_matters():
    # Greedy sends the small order to the cheap node, leaving no room for the big one there.
    e = engine([node(1, logic=4000, price=TOKEN), node(2, logic=2000, price=2 * TOKEN)])
    result = e.clear_batch([order("small", logic=2000), order("big", logic=4000)])
    assert result.greedy_matched == 1 and result.matched == 2 and result.solver == "cp-sat" and result.optimal
    assert {p.order_id: p.node_id for p in result.placements} == {"small": 2, "big": 1}
    assert e.state.free[:, 0].sum() == 0


def test_batch_explains_unmatched_orders():
    e = engine([node(1, logic=1000)])
    result = e.clear_batch([order("a"), order("b"), order("c", logic=5000)])
    assert result.matched == 1
    texts = {u.order_id: u.explanation.text for u in result.unplaced}
    assert "1 node has too little logic capacity left" in texts["c"]
    other = next(i for i in ("a", "b") if i in texts)
    assert "went to other orders in this clearing" in texts[other]


# ---------------------------------------------------------------------- properties
@st.composite
def market_nodes(draw):
    count = draw(st.integers(1, 8))
    out = []
    for i in range(count):
        gpus = draw(st.sampled_from([0, 0, 1, 8]))
        out.append(node(
            i + 1, owner=draw(st.sampled_from(["operator", "cloud", "seller"])), router=draw(st.integers(0, 9)),
            logic=draw(st.integers(0, 16)) * 1000, parallel=draw(st.integers(0, 16)) * 1000,
            neural=draw(st.integers(1, 16)) * 1000, memory=draw(st.integers(1, 64)) * 1024,
            gpu_model=draw(st.sampled_from([A100, A100 + 1])) if gpus else 0, gpu_count=gpus,
            tier=draw(st.integers(0, 3)), price=draw(st.integers(0, 4)) * TOKEN // 2,
        ))
    return out


@st.composite
def market_orders(draw, prefix):
    count = draw(st.integers(1, 15))
    out = []
    for i in range(count):
        demand = [draw(st.integers(0, 4)) * 1000 for _ in range(3)]
        if not any(demand):
            demand[0] = 500
        out.append(order(
            f"{prefix}{i}", logic=demand[0], parallel=demand[1], neural=demand[2],
            memory=draw(st.integers(0, 16)) * 1024, gpu_model=draw(st.sampled_from([0, 0, A100, A100 + 1])),
            gpu_count=draw(st.sampled_from([0, 0, 0, 1, 4])), min_tier=draw(st.sampled_from([0, 0, 1, 3])),
            duration=draw(st.sampled_from([1, 600, 3600, 86_400])), max_price=draw(st.integers(0, 4)) * TOKEN // 2,
            max_total=draw(st.integers(0, 40)) * TOKEN // 4, access_point=draw(st.integers(0, 9)),
            max_latency=draw(st.sampled_from([0.0, 0.0, 10.0, 30.0])),
            min_bandwidth=draw(st.sampled_from([0.0, 0.0, 20.0])),
        ))
    return out


def _transit(o, n):
    return abs(n.router - o.access_point) * 10**16


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=market_nodes(), online=market_orders("o"), batch=market_orders("b"), fee_bps=st.integers(0, 10_000),
       release_every=st.integers(2, 5))
def test_reservations_stay_within_capacity_and_the_chain_accepts_every_match(nodes, online, batch, fee_bps,
                                                                              release_every):
    e = engine(nodes, fee_bps=fee_bps, transit=_transit)
    by_id = {n.node_id: n for n in nodes}
    reserved = {n.node_id: [0, 0, 0] for n in nodes}

    def accept(o, p):
        n = by_id[p.node_id]
        chain_accepts(o, n, tuple(reserved[n.node_id]), p, fee_bps, _transit(o, n))
        if o.max_latency_ms:
            assert p.latency_ms is not None and p.latency_ms <= o.max_latency_ms
        for c in range(3):
            reserved[n.node_id][c] += o.demand[c]

    placed = {}
    for i, o in enumerate(online):
        result = e.place(o)
        if isinstance(result, MarketPlacement):
            accept(o, result)
            placed[o.order_id] = (o, result.node_id)
        else:
            assert result.explanation.sentences, "an unmatched order must say why"
        if i % release_every == 0 and placed:
            gone, (g, n_id) = next(iter(placed.items()))
            e.release(gone)
            for c in range(3):
                reserved[n_id][c] -= g.demand[c]
            del placed[gone]
        assert (e.state.reserved >= 0).all() and (e.state.reserved <= e.state.capacity).all()
    result = e.clear_batch(batch)
    orders = {o.order_id: o for o in batch}
    for p in result.placements:
        accept(orders[p.order_id], p)
    assert result.matched >= result.greedy_matched
    assert {u.order_id for u in result.unplaced} | {p.order_id for p in result.placements} == set(orders)
    for u in result.unplaced:
        assert u.explanation.sentences
    for slot, n in enumerate(e.state.nodes):
        assert e.state.reserved[slot].tolist() == reserved[n.node_id]
        assert (e.state.reserved[slot] <= e.state.capacity[slot]).all()


def test_batch_candidates_look_past_nodes_earlier_orders_filled():
    # Every order's single cheapest node is node 1; with K = 1 they still spread over all five.
    e = engine([node(i, logic=1000, price=i * TOKEN) for i in range(1, 6)])
    result = e.clear_batch([order(f"o{i}", logic=1000) for i in range(5)], k=1)
    assert result.matched == 5
    assert sorted(p.node_id for p in result.placements) == [1, 2, 3, 4, 5]


def test_an_empty_market_explains_and_finds_nothing() -> None:
    from suanwang.matching.model import StagePolicy

    engine = MarketEngine([], None, StagePolicy(), platform_fee_bps=0)
    order = MarketOrder(order_id="o", buyer="b", logic_mcu=1000, parallel_mcu=0, neural_mcu=0, memory_mib=0,
                        gpu_model=0, gpu_count=0, min_tier=0, duration_s=60, max_price_per_cu_hour=1, max_total=10**18,
                        access_point=0, max_latency_ms=0, min_bandwidth_gbps=0)
    assert engine.feasible(order) == []
    assert isinstance(engine.place(order), Unplaced)
