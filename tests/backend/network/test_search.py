"""The constrained search (A* over chain segments with landmark bounds) against networkx,
on the shipped topologies and on small graphs built to hit its special cases: rings with no branch
router, dead ends, source and destination inside chains, disconnected parts, and link latencies that
do not follow the routers' coordinates (any bound derived from geography would have to shrink)."""

from __future__ import annotations

import contextlib
import math
import random

import networkx as nx
import numpy as np
import pytest

from suanwang.errors import InfeasibleError
from suanwang.network.config import load_network
from suanwang.network.model import Network, Operator
from suanwang.network.topology import LinkSpec, RouterSpec, Topology, fibre_latency_ms, haversine_km
from tests.backend.network.conftest import SHIPPED


def _reference(net: Network, s: int, t: int, max_ms: float, min_bw: float) -> float | None:
    free = net.free_gbps()
    g = nx.Graph()
    g.add_nodes_from(range(len(net.routers)))
    g.add_weighted_edges_from((ln.a, ln.b, ln.latency_ms) for ln in net.links if free[ln.index] >= min_bw - 1e-9)
    try:
        d = nx.shortest_path_length(g, s, t, weight="weight")
    except nx.NetworkXNoPath:
        return None
    return d if d <= max_ms + 1e-9 else None


def _check(net: Network, rng: random.Random, queries: int) -> int:
    free = net.free_gbps()
    n = len(net.routers)
    found = 0
    for _ in range(queries):
        s, t = rng.randrange(n), rng.randrange(n)
        shortest = net.latency_from(t)[s]
        max_ms = float(shortest * rng.uniform(0.9, 2.0)) if np.isfinite(shortest) else rng.uniform(1, 50)
        min_bw = float(np.quantile(free, rng.choice([0.0, 0.2, 0.5, 0.8]))) if len(free) else 0.0
        net._trees.clear()  # the search, not the cached-tree shortcut
        ref = _reference(net, s, t, max_ms, min_bw)
        try:
            p = net.path(s, t, max_ms, min_bw or 1e-6, srv6=False)
        except InfeasibleError:
            assert ref is None, (s, t, max_ms, min_bw)
            continue
        assert ref is not None, (s, t, max_ms, min_bw)
        assert p.latency_ms == pytest.approx(ref, rel=1e-9, abs=1e-12)
        assert p.router_indices[0] == s and p.router_indices[-1] == t
        assert len(set(p.router_indices)) == len(p.router_indices)
        assert all(free[li] >= min_bw - 1e-9 for li in p.links)
        assert sum(net.link_latency_ms[li] for li in p.links) == pytest.approx(p.latency_ms)
        found += 1
    return found


def _reserve_randomly(net: Network, rng: random.Random, count: int) -> None:
    for _ in range(count):
        s, t = rng.sample(range(len(net.routers)), 2)
        with contextlib.suppress(InfeasibleError):
            net.reserve(net.path(s, t, srv6=False), rng.uniform(0.5, 6.0))


@pytest.mark.parametrize("name", SHIPPED)
def test_search_matches_networkx_on_shipped_topologies(name):
    net = load_network([name])
    rng = random.Random(5)
    _reserve_randomly(net, rng, len(net.routers) // 3)
    assert _check(net, rng, 150) > 20


def test_search_matches_networkx_on_the_four_operator_network():
    net = load_network(["global-research-and-transit.yaml"])
    rng = random.Random(6)
    _reserve_randomly(net, rng, 80)
    assert _check(net, rng, 150) > 20


def _topology(points: list[tuple[float, float]], edges: list[tuple[int, int]], *,
              latency_scale: float = 1.0, capacity: float = 10.0) -> Topology:
    routers = [RouterSpec(f"r{i}", str(i), lat, lon, False) for i, (lat, lon) in enumerate(points)]
    links = []
    for a, b in edges:
        km = haversine_km(*points[a], *points[b])
        links.append(LinkSpec(min(a, b), max(a, b), km, fibre_latency_ms(km) * latency_scale, capacity))
    return Topology("T", routers, links, "test")


def _random_graph(rng: random.Random, n: int, scale: float) -> Topology:
    """Rings, chains, dead ends and a separate component."""
    points = [(rng.uniform(30, 50), rng.uniform(-10, 20)) for _ in range(n)]
    edges: set[tuple[int, int]] = set()
    core = n * 2 // 3
    for i in range(1, core):  # a random tree on the core, then long chains closing cycles
        edges.add((rng.randrange(i), i))
    for _ in range(core // 4):
        a, b = rng.sample(range(core), 2)
        if (min(a, b), max(a, b)) not in edges and a != b:
            edges.add((min(a, b), max(a, b)))
    rest = list(range(core, n))  # a ring with no branch router (a separate component)
    for i, r in enumerate(rest):
        edges.add((min(r, rest[(i + 1) % len(rest)]), max(r, rest[(i + 1) % len(rest)])))
    return _topology(points, sorted(edges), latency_scale=scale)


@pytest.mark.parametrize("seed", range(8))
def test_search_on_rings_chains_dead_ends_and_islands(seed):
    rng = random.Random(seed)
    # latency_scale < 1: links faster than light in fibre over their chord; bounds must stay admissible.
    topo = _random_graph(rng, rng.randrange(12, 40), rng.choice([1.0, 1.7, 0.3]))
    net = Network([Operator("T", topo, 1)])
    _reserve_randomly_connected(net, rng)
    _check(net, rng, 200)


def _reserve_randomly_connected(net: Network, rng: random.Random) -> None:
    for _ in range(len(net.routers)):
        s, t = rng.sample(range(len(net.routers)), 2)
        if math.isfinite(net.latency_from(t)[s]):
            with contextlib.suppress(InfeasibleError):
                net.reserve(net.path(s, t, srv6=False), rng.uniform(1.0, 6.0))


def test_pure_ring_and_same_chain_endpoints():
    pts = [(40.0, float(i)) for i in range(8)]
    ring = [(i, (i + 1) % 8) for i in range(8)]
    net = Network([Operator("T", _topology(pts, [(min(a, b), max(a, b)) for a, b in ring]), 1)])
    rng = random.Random(1)
    assert _check(net, rng, 200) > 50
    # a reservation cuts the short way round: the search must go the long way
    p = net.path(1, 3, srv6=False)
    assert p.router_indices == (1, 2, 3)
    net.reserve(net.make_path([2, 3]), 9.5)
    net._trees.clear()
    assert net.path(1, 3, min_bandwidth_gbps=1.0, srv6=False).router_indices == (1, 0, 7, 6, 5, 4, 3)
    assert net.path(2, 2, min_bandwidth_gbps=1.0, srv6=False).router_indices == (2,)


def test_widest_bottleneck_matches_brute_force():
    net = load_network(["Cernet"])
    rng = random.Random(9)
    _reserve_randomly(net, rng, 40)
    free = net.free_gbps()
    values = sorted(set(free.tolist()))
    for _ in range(60):
        s, t = rng.sample(range(len(net.routers)), 2)
        best = 0.0
        for v in values:  # widest = largest v such that links with >= v free connect s and t
            g = nx.Graph()
            g.add_nodes_from(range(len(net.routers)))
            g.add_edges_from((ln.a, ln.b) for ln in net.links if free[ln.index] >= v)
            if nx.has_path(g, s, t):
                best = v
        assert net._widest_bottleneck(s, t) == best
