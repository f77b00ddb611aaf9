"""The constrained path search over the network's links (latency-first A* with a bandwidth floor),
and the widest-bottleneck tree that tells at once when no path anywhere has the bandwidth.

Both are built from the topology and the free bandwidth the :class:`~suanwang.network.model.Network`
hands them; the network keeps the reservations, the caches and the lock.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from suanwang.network.elements import Link

_LANDMARKS = 8


@dataclass(frozen=True, slots=True)
class FreeState:
    """Free bandwidth at one reservation version: per link, and the bottleneck of every segment."""

    version: int
    free: list[float]
    segment_free: list[float]  # one more entry, inf, for the search's arcs that end a query (segment -1)


class SegmentIndex:
    """Structures for the constrained search (:meth:`search`), all fixed by the topology.

    Chains: a router with exactly two links (most routers of these networks) can only pass traffic
    through, so the search jumps over maximal runs of them in one step. A "stop" is a router with
    another number of links (plus one router of any ring that has none); a segment is the run of
    links from a stop to the next stop. Heuristic: landmark (ALT) bounds on the latency to the
    destination, admissible whatever latencies the links were given (see below).
    """

    def __init__(self, router_count: int, all_links: Sequence[Link], latency: list[float], graph: csr_matrix) -> None:
        n = router_count
        nbrs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for ln in all_links:
            nbrs[ln.a].append((ln.b, ln.index))
            nbrs[ln.b].append((ln.a, ln.index))
        stop = [len(x) != 2 for x in nbrs]
        lat = latency
        seg_nodes: list[list[int]] = []
        seg_links: list[list[int]] = []
        seg_cum: list[list[float]] = []  # latency from the segment's first router to each of its routers
        seg_of: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # interior router -> (segment, position)
        out: list[list[tuple[int, float, int, list[int], list[int]]]] = [[] for _ in range(n)]
        live: list[list[tuple[int, float, int, list[int], list[int]]]] = [[] for _ in range(n)]
        seg_start_of: list[int] = []

        def segments_from(u: int) -> None:
            for v, li in nbrs[u]:
                nodes, links, cum = [u, v], [li], [0.0, lat[li]]
                prev, cur = u, v
                while not stop[cur]:
                    (a, la), (b, lb) = nbrs[cur]
                    nxt, lnk = (b, lb) if a == prev else (a, la)
                    nodes.append(nxt)
                    links.append(lnk)
                    cum.append(cum[-1] + lat[lnk])
                    prev, cur = cur, nxt
                k = len(seg_nodes)
                for pos in range(1, len(nodes) - 1):
                    seg_of[nodes[pos]].append((k, pos))
                seg_nodes.append(nodes)
                seg_links.append(links)
                seg_cum.append(cum)
                # A segment back to its own start, or into a router with one link, leads nowhere new
                # unless the destination lies on it (see search): only ``out`` lists those.
                entry = (cur, cum[-1], k, nodes, links)
                out[u].append(entry)
                if cur != u and len(nbrs[cur]) != 1:
                    live[u].append(entry)
                seg_start_of.append(u)

        for u in range(n):
            if stop[u]:
                segments_from(u)
        for u in range(n):  # rings with no stop at all: make one of their routers a stop
            if not stop[u] and not seg_of[u]:
                stop[u] = True
                segments_from(u)
        self.nodes, self.links, self.cum, self.of = seg_nodes, seg_links, seg_cum, seg_of
        self.out, self.live, self.start_of = out, live, seg_start_of
        # Segments into a router with one link (dead ends): the search takes them only toward that router.
        self.into: list[list[int]] = [[] for _ in range(n)]
        for k, nodes in enumerate(seg_nodes):
            if len(nbrs[nodes[-1]]) == 1 and nodes[-1] != nodes[0]:
                self.into[nodes[-1]].append(k)
        flat = [li for links in seg_links for li in links]
        self.flat = np.array(flat, dtype=np.int64)
        self.start = np.cumsum([0] + [len(x) for x in seg_links[:-1]]).astype(np.int64)

        # Landmarks (ALT, Goldberg & Harrelson 2005): whole-graph latency from a few far-apart routers.
        # |d(l, v) - d(l, t)| <= d(v, t) (triangle inequality), and dropping links for a bandwidth bound
        # only lengthens paths, so the bound holds for constrained searches too. Unreachable -> 0: a
        # router and a destination on different sides of a landmark are not connected anyway.
        self.landmarks: list[list[float]] = []
        self.zeros = [0.0] * n
        nearest = np.full(n, np.inf)
        pick = 0
        for i in range(min(_LANDMARKS, n)):
            if i:
                pick = int(np.argmax(np.where(np.isfinite(nearest), nearest, -1.0)))
            d = np.asarray(dijkstra(graph, directed=True, indices=pick))
            if not i:  # start from the router farthest from router 0, not router 0 itself
                pick = int(np.argmax(np.where(np.isfinite(d), d, -1.0)))
                d = np.asarray(dijkstra(graph, directed=True, indices=pick))
            nearest = np.minimum(nearest, d)
            self.landmarks.append(np.where(np.isfinite(d), d, 0.0).tolist())

    def search(
        self, s: int, t: int, limit: float, need: float, state: FreeState
    ) -> tuple[float, list[int], list[int]] | None:
        """(latency, routers, links) of a lowest-latency path s -> t using only links with >= ``need``
        free and at most ``limit`` ms, or None.

        A* over segments (chains of two-link routers jumped in one step, see the class) with
        the landmark lower bound (the two landmarks that bound d(s, t) best). A router may be
        re-opened, so the bound only needs to be admissible. Anything whose latency so far plus the
        bound exceeds ``limit`` is pruned.
        """
        if s == t:
            return 0.0, [s], []
        # The two landmarks that bound d(s, t) best serve as the query's bound.
        la = lb = self.zeros  # both set in the loop below (a network has at least one router)
        ta = tb = 0.0
        best_a = best_b = -1.0
        for lm in self.landmarks:
            bound = abs(lm[s] - lm[t])
            if bound > best_a:
                la, ta, best_a, lb, tb, best_b = lm, lm[t], bound, la, ta, best_a
            elif bound > best_b:
                lb, tb, best_b = lm, lm[t], bound
        if best_b < 0:  # fewer than two landmarks
            lb, tb = la, ta
        seg_nodes, seg_cum, seg_links = self.nodes, self.cum, self.links
        seg_free, free = state.segment_free, state.free  # seg_free[-1] is inf: arcs with k = -1 always pass
        # Segments that reach t: through it (t inside a chain: cut at t) or ending at it (even dead ends).
        # Their start routers expand over every segment, with these replaced; the others skip dead ends.
        # Arcs are (router, latency, segment or -1, routers, links); ``came`` keeps the arc taken.
        to_t: dict[int, tuple[int, float, int, list[int], list[int]]] = {}
        for k, pos in self.of[t]:
            links = seg_links[k][:pos]
            for li in links:
                if free[li] < need:
                    break
            else:
                to_t[k] = (t, seg_cum[k][pos], -1, seg_nodes[k][: pos + 1], links)
        for k in self.into[t]:
            if seg_free[k] >= need:
                to_t[k] = (t, seg_cum[k][-1], -1, seg_nodes[k], seg_links[k])
        seg_out, seg_live = self.out, self.live
        special = {self.start_of[k] for k in to_t}
        push, pop, inf = heapq.heappush, heapq.heappop, math.inf
        g = [inf] * len(la)  # latency so far per router
        g[s] = 0.0
        came: dict[int, tuple[int, float, int, list[int], list[int]]] = {}
        heap: list[tuple[float, float, int]] = []

        if self.of[s]:  # s inside a chain: walk to both ends (or to t on the way)
            t_at = dict(self.of[t])
            for k, pos in self.of[s]:
                nodes, links, cum = seg_nodes[k], seg_links[k], seg_cum[k]
                end = len(nodes) - 1
                if t_at.get(k, -1) > pos:
                    end = t_at[k]  # t lies between s and the segment's end
                v, gv = nodes[end], cum[end] - cum[pos]
                if gv >= g[v]:
                    continue
                for li in links[pos:end]:
                    if free[li] < need:
                        break
                else:
                    h = la[v] - ta
                    if h < 0:
                        h = -h
                    a = lb[v] - tb
                    if a > h:
                        h = a
                    elif -a > h:
                        h = -a
                    f = gv + h
                    if f <= limit:
                        g[v] = gv
                        came[v] = (v, gv, -1, nodes[pos : end + 1], links[pos:end])
                        if v == t:
                            limit = gv
                        push(heap, (f, gv, v))
        else:
            heap.append((0.0, 0.0, s))
        while heap:
            _, gu, u = pop(heap)
            if gu > g[u]:
                continue
            if u == t:
                nodes_out, links_out = [t], []
                while u != s:
                    arc = came[u]
                    via_nodes = arc[3]
                    nodes_out.extend(via_nodes[-2::-1])
                    links_out.extend(arc[4][::-1])
                    u = via_nodes[0]
                nodes_out.reverse()
                links_out.reverse()
                return gu, nodes_out, links_out
            if u in special:
                arcs = []
                for arc in seg_out[u]:
                    k = arc[2]
                    if k in to_t:
                        arcs.append(to_t[k])
                    elif arc[0] != u and len(seg_out[arc[0]]) != 1:
                        arcs.append(arc)
            else:
                arcs = seg_live[u]
            for arc in arcs:
                v, w, k = arc[0], arc[1], arc[2]
                if seg_free[k] < need:
                    continue
                gv = gu + w
                if gv < g[v]:
                    h = la[v] - ta
                    if h < 0:
                        h = -h
                    a = lb[v] - tb
                    if a > h:
                        h = a
                    elif -a > h:
                        h = -a
                    f = gv + h
                    if f <= limit:
                        g[v] = gv
                        came[v] = arc
                        if v == t:  # a path to t: nothing longer can beat it, so prune at its latency
                            limit = gv
                        push(heap, (f, gv, v))
        return None



def widest_tree(
    router_count: int, ends: Sequence[tuple[int, int]], free: np.ndarray
) -> tuple[list[int], list[float]]:
    """Kruskal reconstruction tree of free bandwidth (links joined widest first): leaves are routers,
    each inner node is the join made by one link and carries its free bandwidth, so the widest
    bottleneck between two routers is the weight of their lowest common ancestor. Inner nodes are
    numbered in join order, so a parent's number is always above its children's."""
    n, m = router_count, len(ends)
    top = 2 * n  # sentinel: parent of every root, weight 0 (not connected)
    parent = list(range(top + 1))
    weight = [math.inf] * n + [0.0] * (n + 1)
    for i in range(n):
        parent[i] = top
    uf = list(range(n))
    node_of = list(range(n))  # union-find root -> its tree node
    nxt = n
    for li in np.argsort(-free, kind="stable").tolist() if m else []:
        a, b = ends[li]
        while uf[a] != a:
            uf[a] = uf[uf[a]]
            a = uf[a]
        while uf[b] != b:
            uf[b] = uf[uf[b]]
            b = uf[b]
        if a == b:
            continue
        parent[node_of[a]] = parent[node_of[b]] = nxt
        parent[nxt] = top
        weight[nxt] = float(free[li])
        uf[b] = a
        node_of[a] = nxt
        nxt += 1
    return parent, weight


def bottleneck(widest: tuple[int, list[int], list[float]], s: int, t: int) -> float:
    """The widest bottleneck between routers s and t: the weight of their lowest common ancestor in a
    (version, parents, weights) tree from :func:`widest_tree`."""
    _, parent, weight = widest
    while s != t:
        if s < t:
            s = parent[s]
        else:
            t = parent[t]
    return weight[s]

