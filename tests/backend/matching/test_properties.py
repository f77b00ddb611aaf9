"""Property tests: no over-allocation, filters respected, batch feasible and no worse than greedy,
an explanation for every unmatched order."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suanwang.compute import default_catalog
from suanwang.matching import Engine, Node, Order, Placement, Unplaced
from suanwang.matching.batch import candidates, greedy

CATALOG = default_catalog()
GPU_MODELS = [CATALOG.by_name(n).code for n in ("nvidia-t4", "nvidia-a100-sxm4-80gb", "nvidia-tesla-v100-sxm2-32gb")]
PROFILES = ["default", "fgd", "best_fit", "dot_product", "gpu_packing", "random", "cheapest"]


class LineNetwork:
    def latency_ms(self, access_point, routers):
        return 5.0 * np.abs(np.asarray(routers) - access_point)

    def bandwidth_gbps(self, access_point, routers):
        return 100.0 / (1 + np.abs(np.asarray(routers) - access_point))


@st.composite
def nodes(draw):
    count = draw(st.integers(2, 7))
    result = []
    for i in range(count):
        gpus = draw(st.sampled_from([0, 1, 2, 4, 8]))
        result.append(Node(
            f"n{i}", draw(st.integers(2, 64)) * 1000, draw(st.integers(4, 512)) * 1024, gpus,
            draw(st.sampled_from(GPU_MODELS)) if gpus else 0,
            owner=draw(st.sampled_from(["operator", "cloud", "provider"])), router=draw(st.integers(0, 9)),
            price_per_cu_hour=draw(st.integers(0, 10)) * 10**14, reliability=draw(st.floats(0.5, 1.0)),
        ))
    return result


@st.composite
def orders(draw, prefix="o"):
    count = draw(st.integers(1, 25))
    result = []
    for i in range(count):
        num_gpu = draw(st.sampled_from([0, 0, 1, 1, 1, 2, 4]))
        share = draw(st.sampled_from([100, 250, 500, 700, 1000])) if num_gpu == 1 else 1000
        sla = draw(st.booleans())
        result.append(Order(
            f"{prefix}{i}", draw(st.integers(1, 16)) * 1000, draw(st.integers(1, 64)) * 1024, num_gpu, share,
            gpu_models=tuple(sorted(set(draw(st.lists(st.sampled_from(GPU_MODELS), max_size=2))))) if num_gpu else (),
            access_point=draw(st.integers(0, 9)),
            max_latency_ms=draw(st.sampled_from([5.0, 20.0, 50.0])) if sla else None,
            max_price_per_hour=draw(st.sampled_from([None, 10**16, 10**17])),
        ))
    return result


def assert_not_over_allocated(engine: Engine) -> None:
    c = engine.cluster
    assert (c.cpu_free >= 0).all() and (c.cpu_free <= c.cpu_cap).all()
    assert (c.mem_free >= 0).all() and (c.mem_free <= c.mem_cap).all()
    assert (c.gpu_free >= 0).all() and (c.gpu_free <= 1000).all()
    for i, count in enumerate(c.gpu_count):
        assert (c.gpu_free[i, count:] == 0).all()
    used_cpu = np.zeros(c.size, dtype=np.int64)
    used_gpu = np.zeros_like(c.gpu_free)
    for p in engine.placements.values():
        used_cpu[p.node_index] += p.cpu_milli
        for g in p.gpu_indices:
            used_gpu[p.node_index, g] += p.gpu_milli
    assert (used_cpu == c.cpu_cap - c.cpu_free).all()
    for i, count in enumerate(c.gpu_count):
        assert (used_gpu[i, :count] == 1000 - c.gpu_free[i, :count]).all()


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(nodes(), orders(), st.sampled_from(PROFILES), st.data())
def test_online_placement_never_over_allocates_and_respects_filters(cluster, stream, profile, data):
    engine = Engine(cluster, profile=profile, network=LineNetwork())
    for order in stream:
        allowed = set(engine.feasible(order).tolist())
        result = engine.place(order)
        if isinstance(result, Placement):
            assert result.node_index in allowed
        else:
            assert not allowed
            assert result.explanation.sentences, "an unmatched order must be explained"
        assert_not_over_allocated(engine)
        if engine.placements and data.draw(st.booleans()):
            engine.release(engine.placements[data.draw(st.sampled_from(sorted(engine.placements)))])
            assert_not_over_allocated(engine)


@SETTINGS
@given(nodes(), orders(), st.sampled_from(["cp-sat", "greedy"]), st.integers(1, 4))
def test_batch_is_feasible_and_no_worse_than_greedy(cluster, batch, solver, k):
    reference = Engine(cluster, network=LineNetwork())
    allowed = {o.id: set(reference.feasible(o).tolist()) for o in batch}
    cands = candidates(reference, batch, k)
    base = greedy(reference, batch, cands)
    base_cost = sum(float(cands.costs[i][list(cands.nodes[i]).index(n)]) for i, (n, _) in base.items())

    engine = Engine(cluster, network=LineNetwork())
    result = engine.clear_batch(batch, k=k, solver=solver)
    assert_not_over_allocated(engine)
    for p in result.placements:
        assert p.node_index in allowed[p.order_id]
    assert result.matched >= len(base)
    if result.matched == len(base):
        assert result.total_cost <= base_cost * (1 + 1e-9) + 1e-6
    assert {u.order_id for u in result.unplaced} | {p.order_id for p in result.placements} == {o.id for o in batch}
    for unmatched in result.unplaced:
        assert isinstance(unmatched, Unplaced) and unmatched.explanation.sentences
