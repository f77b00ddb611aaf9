"""The exact batch clearing against exhaustive search: on random small batches, CP-SAT's answer is the
lexicographic optimum (most orders matched, then least cost) within the candidates, and the reported
lower bound never exceeds that optimum."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suanwang.compute import default_catalog
from suanwang.matching import Engine, Node, Order
from suanwang.matching.batch import Candidates, candidates

CATALOG = default_catalog()
T4 = CATALOG.by_name("nvidia-t4").code
A100 = CATALOG.by_name("nvidia-a100-sxm4-80gb").code


@st.composite
def instances(draw):
    nodes = []
    for i in range(draw(st.integers(1, 3))):
        gpus = draw(st.sampled_from([0, 1, 2]))
        nodes.append(Node(
            f"n{i}", draw(st.integers(2, 16)) * 1000, draw(st.integers(4, 64)) * 1024, gpus,
            draw(st.sampled_from([T4, A100])) if gpus else 0, price_per_cu_hour=draw(st.integers(1, 9)) * 10**14,
        ))
    orders = []
    for i in range(draw(st.integers(1, 6))):
        num_gpu = draw(st.sampled_from([0, 1, 1, 2]))
        share = draw(st.sampled_from([300, 500, 700, 1000])) if num_gpu == 1 else 1000
        orders.append(Order(f"o{i}", draw(st.integers(1, 8)) * 1000, draw(st.integers(1, 16)) * 1024, num_gpu, share,
                            duration_s=draw(st.sampled_from([3600, 7200]))))
    return nodes, orders


def node_holds(engine: Engine, n: int, members: list[Order]) -> bool:
    """Whether node ``n`` can hold all of ``members`` at once: CPU, memory, and some way of giving each
    shared order one GPU and each whole-GPU order untouched GPUs."""
    c = engine.cluster
    if sum(o.cpu_milli for o in members) > c.cpu_free[n] or sum(o.memory_mib for o in members) > c.mem_free[n]:
        return False
    free = [int(f) for f in c.gpu_free[n, : c.gpu_count[n]]]
    shared = [o.gpu_share for o in members if o.num_gpu == 1 and o.gpu_share < 1000]
    whole = sum(o.num_gpu for o in members if o.num_gpu and o.gpu_share >= 1000)
    for gpus in itertools.product(range(len(free)), repeat=len(shared)):
        load = [0] * len(free)
        for g, share in zip(gpus, shared, strict=True):
            load[g] += share
        if all(load[g] <= free[g] for g in range(len(free))):
            untouched = sum(1 for g in range(len(free)) if free[g] == 1000 and load[g] == 0)
            if untouched >= whole:
                return True
    return False


def optimum(engine: Engine, orders: list[Order], cands: Candidates) -> tuple[int, float]:
    """(most orders matched, least cost at that count) over every assignment within the candidates."""
    best = (0, 0.0)
    options = [[None, *range(cands.nodes[i].size)] for i in range(len(orders))]
    for pick in itertools.product(*options):
        by_node: dict[int, list[Order]] = defaultdict(list)
        cost = 0.0
        for i, j in enumerate(pick):
            if j is not None:
                by_node[int(cands.nodes[i][j])].append(orders[i])
                cost += float(cands.costs[i][j])
        count = sum(len(m) for m in by_node.values())
        if (count, -cost) > (best[0], -best[1]) and all(node_holds(engine, n, m) for n, m in by_node.items()):
            best = (count, cost)
    return best


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.integers(1, 3))
def test_cp_sat_clearing_is_the_lexicographic_optimum(instance, k):
    nodes, orders = instance
    reference = Engine(nodes)
    cands = candidates(reference, orders, k)
    count, cost = optimum(reference, orders, cands)

    result = Engine(nodes).clear_batch(orders, k=k, solver="cp-sat", time_limit_s=5.0)
    assert result.optimal
    assert result.matched == count
    # CP-SAT prices in units of 10^-9 of the largest candidate cost; the answer is optimal up to that.
    tolerance = 1e-8 * max((float(v.max()) for v in cands.costs if v.size), default=0.0) * len(orders)
    assert abs(result.total_cost - cost) <= tolerance
    assert result.lp_bound is not None and result.lp_bound <= cost + tolerance
    assert result.matched >= max(result.greedy_matched, result.greedy_claims_matched)


def test_the_bound_and_the_answer_on_a_batch_too_large_for_the_exact_model():
    rng = np.random.default_rng(3)
    nodes = [Node(f"n{i}", 32000, 65536, 4, T4, price_per_cu_hour=int(rng.integers(1, 10)) * 10**14)
             for i in range(30)]
    orders = [Order(f"o{i}", int(rng.integers(1, 8)) * 1000, 4096, 1, int(rng.choice([250, 500, 1000])))
              for i in range(300)]
    result = Engine(nodes).clear_batch(orders, k=4, exact_limit=10)
    assert result.solver in {"greedy", "greedy-claims"}
    assert result.matched == max(result.greedy_matched, result.greedy_claims_matched)
    assert result.lp_bound is not None and 0 < result.lp_bound <= result.total_cost
