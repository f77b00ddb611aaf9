"""Constrained paths, reservations, k shortest paths, cheapest paths, multi-operator fees."""

from __future__ import annotations

import itertools
import random
import threading

import networkx as nx
import numpy as np
import pytest

from suanwang.errors import InfeasibleError, InputError, NotFoundError
from suanwang.network.algorithms import cheapest_path, k_shortest_paths
from suanwang.network.config import load_network
from suanwang.network.model import router_id
from tests.backend.network.conftest import SHIPPED


def _reserve_randomly(net, rng, n):
    ids = []
    for _ in range(n):
        s, t = rng.sample(range(len(net.routers)), 2)
        try:
            p = net.path(s, t, srv6=False)
            ids.append(net.reserve(p, rng.uniform(0.5, 6.0)))
        except InfeasibleError:
            pass
    return ids


@pytest.mark.parametrize("name", SHIPPED)
def test_constrained_paths_never_violate_their_bounds(name):
    net = load_network([name])
    rng = random.Random(11)
    _reserve_randomly(net, rng, 60)
    free = net.free_gbps()
    checked = 0
    for _ in range(150):
        s, t = rng.sample(range(len(net.routers)), 2)
        shortest = net.latency_from(t)[s]
        if not np.isfinite(shortest):
            continue
        max_ms = shortest * rng.uniform(0.9, 1.6)
        min_bw = float(np.quantile(free, rng.choice([0.1, 0.3, 0.5, 0.7])))
        try:
            p = net.path(s, t, max_ms, min_bw)
        except InfeasibleError as exc:
            # Infeasible must really be infeasible: check with networkx on the filtered graph.
            g = nx.Graph()
            g.add_nodes_from(range(len(net.routers)))
            g.add_weighted_edges_from((ln.a, ln.b, ln.latency_ms) for ln in net.links if free[ln.index] >= min_bw)
            assert not nx.has_path(g, s, t) or nx.shortest_path_length(g, s, t, weight="weight") > max_ms, exc
            continue
        checked += 1
        assert p.latency_ms <= max_ms + 1e-9
        assert all(free[li] >= min_bw - 1e-9 for li in p.links)
        assert p.bandwidth_gbps >= min_bw - 1e-9
        g = nx.Graph()
        g.add_weighted_edges_from((ln.a, ln.b, ln.latency_ms) for ln in net.links if free[ln.index] >= min_bw)
        assert p.latency_ms == pytest.approx(nx.shortest_path_length(g, s, t, weight="weight"), rel=1e-9)
    assert checked > 10


def test_concurrent_reservations_never_oversubscribe():
    net = load_network(["Abilene"])
    rng = random.Random(3)
    paths = [net.path(*rng.sample(range(11), 2), srv6=False) for _ in range(40)]
    granted: list[tuple[int, object, float]] = []
    lock = threading.Lock()

    def worker(seed):
        r = random.Random(seed)
        for _ in range(200):
            p = r.choice(paths)
            g = r.uniform(0.1, 3.0)
            try:
                rid = net.reserve(p, g)
            except InfeasibleError:
                continue
            with lock:
                granted.append((rid, p, g))
            if r.random() < 0.3:
                with lock:
                    victim = granted.pop(r.randrange(len(granted)))
                net.release(victim[0])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load = np.zeros(len(net.links))
    for _, p, g in granted:
        for li in p.links:
            load[li] += g
    assert (load <= net.link_capacity_gbps + 1e-6).all()
    assert np.allclose(net.free_gbps(), net.link_capacity_gbps - load)
    for rid, _, _ in granted:
        net.release(rid)
    assert np.allclose(net.free_gbps(), net.link_capacity_gbps)


def test_reservation_steers_later_queries_and_release_restores():
    net = load_network(["Abilene"])
    p = net.path("New York", "Los Angeles")
    rid = net.reserve(p, 8.0)
    detour = net.path("New York", "Los Angeles", min_bandwidth_gbps=5.0)
    assert not set(detour.links) & set(p.links) or detour.latency_ms > p.latency_ms
    with pytest.raises(InfeasibleError, match="cannot reserve"):
        net.reserve(p, 5.0)
    net.release(rid)
    assert net.path("New York", "Los Angeles", min_bandwidth_gbps=5.0).links == p.links
    with pytest.raises(NotFoundError):
        net.release(rid)


def test_impossible_sla_and_unknown_router_errors_explain():
    net = load_network(["Abilene"])
    with pytest.raises(InfeasibleError, match="the shortest takes"):
        net.path("New York", "Los Angeles", max_latency_ms=1.0)
    with pytest.raises(InfeasibleError, match=r"widest path anywhere has 10\.000 Gbps"):
        net.path("New York", "Los Angeles", min_bandwidth_gbps=40)
    with pytest.raises(NotFoundError, match="did you mean Los Angeles"):
        net.path("New York", "Los Angelos")
    with pytest.raises(InputError, match="min bandwidth must be >= 0"):
        net.path("New York", "Chicago", min_bandwidth_gbps=-1)


def test_k_shortest_paths_match_networkx(networks):
    net = networks["Geant2012"]
    g = nx.Graph()
    g.add_weighted_edges_from((ln.a, ln.b, ln.latency_ms) for ln in net.links)
    ours = k_shortest_paths(net, 0, 30, 8, srv6=False)
    theirs = list(itertools.islice(nx.shortest_simple_paths(g, 0, 30, weight="weight"), 8))
    assert [p.latency_ms for p in ours] == pytest.approx(
        [nx.path_weight(g, q, "weight") for q in theirs], rel=1e-9)
    assert all(len(set(p.router_indices)) == len(p.router_indices) for p in ours)


def test_cheapest_path_exact_is_optimal_and_larac_is_feasible(world):
    rng = random.Random(2)
    for _ in range(25):
        s, t = rng.sample(range(len(world.routers)), 2)
        shortest = world.latency_from(t)[s]
        if not np.isfinite(shortest):
            continue
        bound = shortest * 1.25
        exact = cheapest_path(world, s, t, bound, "exact", srv6=False)
        larac = cheapest_path(world, s, t, bound, "larac", srv6=False)
        assert exact.path.latency_ms <= bound + 1e-9 and larac.path.latency_ms <= bound + 1e-9
        assert larac.cost_per_gbps_hour >= exact.cost_per_gbps_hour >= larac.lower_bound - 1e-6
        assert exact.cost_per_gbps_hour == sum(exact.path.transit_fee_per_gbps_hour.values())


def test_cheapest_exact_equals_brute_force_on_abilene():
    net = load_network(["Abilene"])
    g = nx.Graph()
    g.add_weighted_edges_from((ln.a, ln.b, ln.latency_ms) for ln in net.links)
    for s, t in [(0, 5), (3, 9), (2, 4)]:
        bound = net.latency_from(s)[t] * 1.2
        best = min(len(p) - 1 for p in nx.all_simple_paths(g, s, t)
                   if nx.path_weight(g, p, "weight") <= bound + 1e-9)
        res = cheapest_path(net, s, t, bound, "exact")
        assert res.cost_per_gbps_hour == best * net.operators[0].transit_price_per_gbps_hour


def test_multi_operator_path_pays_each_operator(world):
    p = world.path("Cernet/Beijing", "Cogentco/Chicago")
    assert p.operators[0] == "Cernet" and p.operators[-1] == "Cogentco"
    prices = {op.name: op.transit_price_per_gbps_hour for op in world.operators}
    for op, fee in p.transit_fee_per_gbps_hour.items():
        own = sum(1 for li in p.links if world.links[li].operator == op)
        assert fee == prices[op] * own
    fees = p.transit_fee(gbps=2.5, seconds=5400)
    assert fees == {op: -(-rate * 25 * 5400 // (10 * 3600)) for op, rate in p.transit_fee_per_gbps_hour.items()}
    assert world.routers[p.router_indices[0]].router_id == router_id("Cernet", "Beijing")


def test_path_fields_match_a_recount_from_its_links(world):
    """Latency, bottlenecks, operators and fees of constrained answers, recounted link by link (the
    one-operator shortcut and the general count both)."""
    rng = random.Random(5)
    free = world.free_gbps()
    prices = {op.name: op.transit_price_per_gbps_hour for op in world.operators}
    seen_multi = seen_single = 0
    for _ in range(300):
        s, t = rng.sample(range(len(world.routers)), 2)
        try:
            p = world.path(s, t, None, rng.choice([0.5, 1.0, 5.0]), srv6=False)
        except InfeasibleError:
            continue
        links = [world.links[li] for li in p.links]
        assert p.routers == tuple(world.routers[i].name for i in p.router_indices)
        assert [{ln.a, ln.b} for ln in links] == [{a, b} for a, b in itertools.pairwise(p.router_indices)]
        assert p.latency_ms == pytest.approx(sum(ln.latency_ms for ln in links), abs=1e-9)
        assert p.bandwidth_gbps == min(float(free[ln.index]) for ln in links)
        assert p.capacity_gbps == min(ln.capacity_gbps for ln in links)
        ops = [k for k, _ in itertools.groupby(world.routers[i].operator for i in p.router_indices)]
        assert list(p.operators) == ops
        fees: dict[str, int] = {}
        for ln in links:
            if ln.operator is not None:
                fees[ln.operator] = fees.get(ln.operator, 0) + prices[ln.operator]
        assert p.transit_fee_per_gbps_hour == fees and list(p.transit_fee_per_gbps_hour) == list(fees)
        seen_multi += len(ops) > 1
        seen_single += len(ops) == 1
    assert seen_multi and seen_single


def test_ambiguous_label_asks_for_the_operator(world):
    with pytest.raises(InputError, match=r"Abilene/Chicago, .*Cogentco/Chicago"):
        world.router_index("Chicago")
