"""Path algorithms beyond the single constrained shortest path: k shortest paths (Yen) and the
cheapest path under a latency bound (exact label setting, or the LARAC Lagrangian heuristic).

Cost of a path = sum over its links of the owning operator's transit price (token base units per
Gbps-hour); peering links cost nothing. See ``suanwang.network.model`` for the unit.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import numpy as np
from scipy.sparse.csgraph import dijkstra

from suanwang.errors import InfeasibleError, InputError
from suanwang.network.model import LATENCY_EPSILON_MS, CheapestResult, Network, Path

EXACT_MAX_ROUTERS = 300
EXACT_MAX_LABELS = 2_000_000


def _tree_path(net: Network, weights: np.ndarray, src: int, dst: int) -> list[int] | None:
    """Shortest path src -> dst under per-arc ``weights`` (inf = unusable), or None."""
    dist, pred = dijkstra(net._csr(weights), directed=True, indices=dst, return_predecessors=True)
    if not np.isfinite(dist[src]):
        return None
    return net._walk(pred, src, dst)


def k_shortest_paths(
    net: Network, src: str | int, dst: str | int, k: int, min_bandwidth_gbps: float | None = None, *, srv6: bool = True
) -> list[Path]:
    """Up to ``k`` loopless paths from src to dst in increasing latency (Yen 1971), optionally only
    over links with ``min_bandwidth_gbps`` free."""
    if k < 1:
        raise InputError(f"k must be >= 1; got {k}", field="k")
    s, t = net.router_index(src), net.router_index(dst)
    base = net._arc_latency.copy()
    if min_bandwidth_gbps:
        base[net.free_gbps()[net._arc_link] < min_bandwidth_gbps - 1e-9] = np.inf
    first = _tree_path(net, base, s, t)
    if first is None:
        raise InfeasibleError(
            f"no path from {net.routers[s].name} to {net.routers[t].name}"
            + (f" with {min_bandwidth_gbps} Gbps free" if min_bandwidth_gbps else ""),
            field="path",
        )
    lat = net.link_latency_ms

    def latency(nodes: list[int]) -> float:
        return float(sum(lat[net._link_of[(nodes[i], nodes[i + 1])]] for i in range(len(nodes) - 1)))

    found: list[list[int]] = [first]
    candidates: list[tuple[float, list[int]]] = []
    seen = {tuple(first)}
    while len(found) < k:
        prev = found[-1]
        for i in range(len(prev) - 1):
            spur, root = prev[i], prev[: i + 1]
            weights = base.copy()
            banned_links = {net._link_of[(p[i], p[i + 1])] for p in found if len(p) > i + 1 and p[: i + 1] == root}
            arc_banned = np.isin(net._arc_link, list(banned_links))
            if i > 0:
                banned_nodes = np.array(root[:-1])
                arc_banned |= np.isin(net._arc_src, banned_nodes) | np.isin(net._arc_dst, banned_nodes)
            weights[arc_banned] = np.inf
            tail = _tree_path(net, weights, spur, t)
            if tail is None:
                continue
            cand = root[:-1] + tail
            if tuple(cand) not in seen:
                seen.add(tuple(cand))
                heapq.heappush(candidates, (latency(cand), cand))
        if not candidates:
            break
        found.append(heapq.heappop(candidates)[1])
    return [net.make_path(p, srv6=srv6) for p in found]


def _path_cost(net: Network, nodes: list[int]) -> int:
    return sum(net.link_price[net._link_of[(nodes[i], nodes[i + 1])]] for i in range(len(nodes) - 1))


def _path_latency(net: Network, nodes: Iterable[int]) -> float:
    seq = list(nodes)
    return float(sum(net.link_latency_ms[net._link_of[(seq[i], seq[i + 1])]] for i in range(len(seq) - 1)))


def cheapest_path(
    net: Network, src: str | int, dst: str | int, max_latency_ms: float, method: str = "auto", *, srv6: bool = True
) -> CheapestResult:
    """The path of least transit cost whose latency is at most ``max_latency_ms``.

    ``method``: "exact" (label setting, proven optimal), "larac" (Lagrangian relaxation, Juttner
    et al. 2001: fast, returns a feasible path and a lower bound on the optimum), or "auto" (exact up
    to EXACT_MAX_ROUTERS routers, LARAC above).
    """
    s, t = net.router_index(src), net.router_index(dst)
    if method == "auto":
        method = "exact" if len(net.routers) <= EXACT_MAX_ROUTERS else "larac"
    shortest = net.path(s, t, srv6=False)
    if shortest.latency_ms > max_latency_ms + LATENCY_EPSILON_MS:
        raise InfeasibleError(
            f"no path from {net.routers[s].name} to {net.routers[t].name} within {max_latency_ms} ms: "
            f"the shortest takes {shortest.latency_ms:.3f} ms",
            field="max_latency_ms",
        )
    if method == "exact":
        return _exact(net, s, t, max_latency_ms, srv6)
    if method == "larac":
        return _larac(net, s, t, max_latency_ms, srv6)
    raise InputError(f"unknown method {method!r}; use auto, exact or larac", field="method")


def _exact(net: Network, s: int, t: int, bound: float, srv6: bool) -> CheapestResult:
    """Label setting in (cost, latency) order with a latency-to-go lower bound for pruning.

    Labels leave the heap in increasing cost; a label at a router is kept only if its latency beats
    every label that left earlier at that router (those cost no more), so every kept label is
    Pareto-optimal, and the first one to reach ``t`` is the cheapest feasible path.
    """
    to_go = net._tree(t)[0]
    limit = bound + LATENCY_EPSILON_MS
    best_latency = np.full(len(net.routers), np.inf)
    labels: list[tuple[int, int]] = [(s, -1)]  # (router, parent label)
    heap: list[tuple[int, float, int]] = [(0, 0.0, 0)]
    indptr, arc_dst, arc_link = net._indptr, net._arc_dst, net._arc_link
    lat, price = net.link_latency_ms, net.link_price
    while heap:
        cost, latency, label = heapq.heappop(heap)
        node = labels[label][0]
        if latency >= best_latency[node]:
            continue
        best_latency[node] = latency
        if node == t:
            nodes = []
            while label >= 0:
                nodes.append(labels[label][0])
                label = labels[label][1]
            path = net.make_path(nodes[::-1], srv6=srv6)
            return CheapestResult(path, cost, float(cost), True, len(labels))
        for arc in range(indptr[node], indptr[node + 1]):
            nxt = int(arc_dst[arc])
            li = int(arc_link[arc])
            nl = latency + lat[li]
            if nl + to_go[nxt] > limit or nl >= best_latency[nxt]:
                continue
            labels.append((nxt, label))
            heapq.heappush(heap, (cost + price[li], nl, len(labels) - 1))
        if len(labels) > EXACT_MAX_LABELS:
            raise InfeasibleError(
                f"exact search exceeded {EXACT_MAX_LABELS} labels; use method='larac'", field="method"
            )
    raise InfeasibleError(f"no path within {bound} ms", field="max_latency_ms")


def _larac(net: Network, s: int, t: int, bound: float, srv6: bool) -> CheapestResult:
    arc_cost = np.array([net.link_price[li] for li in net._arc_link], dtype=np.float64)
    arc_lat = net._arc_latency
    limit = bound + LATENCY_EPSILON_MS
    # Cheapest path, ties broken by latency (the tiny weight never outweighs a unit of cost).
    tie = 1e-9 * max(1.0, float(arc_cost.max(initial=0.0))) / max(1.0, float(arc_lat.sum()))
    pc = _tree_path(net, arc_cost + tie * arc_lat, s, t)
    pd = net.path(s, t, srv6=False).router_indices
    assert pc is not None
    pd_nodes = list(pd)
    iterations = 1
    if _path_latency(net, pc) <= limit:
        return CheapestResult(net.make_path(pc, srv6=srv6), _path_cost(net, pc), float(_path_cost(net, pc)), True, 1)
    lower = 0.0
    while True:
        iterations += 1
        cc, dc = _path_cost(net, pc), _path_latency(net, pc)
        cd, dd = _path_cost(net, pd_nodes), _path_latency(net, pd_nodes)
        if dc <= dd:  # cannot happen with exact arithmetic; guards a zero denominator
            break
        lam = (cd - cc) / (dc - dd)  # >= 0: pc is cheaper but slower than pd
        r = _tree_path(net, arc_cost + lam * arc_lat, s, t)
        assert r is not None
        cr, dr = _path_cost(net, r), _path_latency(net, r)
        lower = max(lower, cr + lam * (dr - bound))
        if abs((cr + lam * dr) - (cc + lam * dc)) <= 1e-9 * max(1.0, abs(cc + lam * dc)) or iterations > 100:
            break
        if dr <= limit:
            pd_nodes = r
        else:
            pc = r
    cost = _path_cost(net, pd_nodes)
    return CheapestResult(net.make_path(pd_nodes, srv6=srv6), cost, min(float(cost), lower), cost <= lower, iterations)
