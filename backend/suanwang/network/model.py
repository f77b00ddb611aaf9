"""The multi-operator network: routers, links, free bandwidth, and the path API the matcher uses.

Transit fee unit (stated once, here and in docs/network-model.md): an operator's transit price is in
settlement-token base units per Gbps-hour of reserved bandwidth per link of that operator that the
path crosses. A path's fee per operator is ``price x (number of its links on the path)`` per
Gbps-hour; a lease pays that times its reserved Gbps times its duration in hours. Peering links
between operators are free.

Reservations are symmetric: reserving G Gbps for a lease takes G from every link of its path (both
directions of a full-duplex link carry the lease, so a link's capacity is per direction and one
number per link suffices).

The routers, links and priced paths are defined in ``network.elements``; the constrained search and the
widest-bottleneck tree in ``network.search``. This module joins them: the network, its shortest-path
trees and SRv6 segment lists, and the reservations.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from suanwang.errors import InfeasibleError, InputError, NotFoundError
from suanwang.network.elements import (
    BANDWIDTH_EPSILON_GBPS,
    LATENCY_EPSILON_MS,
    CheapestResult,
    Link,
    Operator,
    Path,
    Peering,
    Router,
    router_id,
)
from suanwang.network.search import FreeState, SegmentIndex, bottleneck, widest_tree
from suanwang.network.srv6 import END_X_MAX_ADJACENCIES, Behavior, Locator
from suanwang.network.topology import fibre_latency_ms, haversine_km

# The vocabulary lives in network.elements, the constrained search in network.search; these names stay
# importable from here.
__all__ = [
    "BANDWIDTH_EPSILON_GBPS",
    "LATENCY_EPSILON_MS",
    "CheapestResult",
    "Link",
    "Network",
    "Operator",
    "Path",
    "Peering",
    "Router",
    "router_id",
]

_TREE_CACHE_SIZE = 4096


@dataclass(slots=True)
class _Reservation:
    links: np.ndarray
    gbps: float


class Network:
    """Several operators' topologies joined by peering links, with path computation and reservations.

    Routers are numbered 0..n-1 (``router_index``); arrays returned by ``latency_from`` use that order.
    Thread-safe for concurrent queries and reservations.
    """

    def __init__(self, operators: Sequence[Operator], peerings: Sequence[Peering] = ()) -> None:
        if not operators:
            raise InputError("a network needs at least one operator", field="operators")
        names = [op.name for op in operators]
        if len(set(names)) != len(names):
            raise InputError(f"operator names repeat: {names}", field="operators")
        self.operators: tuple[Operator, ...] = tuple(operators)
        self.report: list[str] = []
        routers: list[Router] = []
        links: list[Link] = []
        for number, op in enumerate(operators, start=1):
            if op.transit_price_per_gbps_hour < 0:
                raise InputError(f"{op.name}: transit price must be >= 0", field="transit_price_per_gbps_hour")
            base = len(routers)
            for i, spec in enumerate(op.topology.routers):
                routers.append(
                    Router(
                        base + i,
                        op.name,
                        number,
                        spec.label,
                        spec.graphml_id,
                        spec.latitude,
                        spec.longitude,
                        router_id(op.name, spec.label),
                        Locator.for_router(number, i),
                    )
                )
            for ln in op.topology.links:
                links.append(
                    Link(len(links), base + ln.a, base + ln.b, ln.km, ln.latency_ms, ln.capacity_gbps, op.name)
                )
            self.report += [f"{op.name}: {line}" for line in op.topology.report]
        self.routers: tuple[Router, ...] = tuple(routers)
        self._by_name = {r.name: r.index for r in routers}
        self._by_label: dict[str, list[int]] = {}
        for r in routers:
            self._by_label.setdefault(r.label, []).append(r.index)
        seen = {(min(ln.a, ln.b), max(ln.a, ln.b)) for ln in links}
        for p in peerings:
            a, b = self.router_index(p.a), self.router_index(p.b)
            if self.routers[a].operator == self.routers[b].operator:
                raise InputError(f"peering {p.a} - {p.b} joins two routers of one operator", field="peering")
            if (min(a, b), max(a, b)) in seen:
                raise InputError(f"peering {p.a} - {p.b} is listed twice", field="peering")
            if p.capacity_gbps <= 0:
                raise InputError(f"peering {p.a} - {p.b}: capacity must be > 0", field="peering")
            seen.add((min(a, b), max(a, b)))
            ra, rb = self.routers[a], self.routers[b]
            km = haversine_km(ra.latitude, ra.longitude, rb.latitude, rb.longitude)
            links.append(Link(len(links), a, b, km, fibre_latency_ms(km), float(p.capacity_gbps), None))
        self.links: tuple[Link, ...] = tuple(links)
        self._build_arrays()

    # ---- construction -------------------------------------------------------------------------

    def _build_arrays(self) -> None:
        n, m = len(self.routers), len(self.links)
        a = np.fromiter((ln.a for ln in self.links), dtype=np.int32, count=m)
        b = np.fromiter((ln.b for ln in self.links), dtype=np.int32, count=m)
        self.link_latency_ms = np.fromiter((ln.latency_ms for ln in self.links), dtype=np.float64, count=m)
        self.link_capacity_gbps = np.fromiter((ln.capacity_gbps for ln in self.links), dtype=np.float64, count=m)
        op_index = {op.name: i for i, op in enumerate(self.operators)}
        self.link_operator = np.fromiter(
            (op_index[ln.operator] if ln.operator is not None else -1 for ln in self.links), dtype=np.int32, count=m
        )
        prices = np.array([op.transit_price_per_gbps_hour for op in self.operators] + [0], dtype=object)
        self.link_price: list[int] = [int(prices[o]) for o in self.link_operator]
        self._free = self.link_capacity_gbps.copy()
        # CSR with both directions of every link; arcs of a row sorted by neighbour index.
        src = np.concatenate([a, b])
        dst = np.concatenate([b, a])
        lid = np.concatenate([np.arange(m), np.arange(m)]).astype(np.int32)
        order = np.lexsort((dst, src))
        self._arc_src, self._arc_dst, self._arc_link = src[order], dst[order], lid[order]
        self._indptr = np.zeros(n + 1, dtype=np.int32)
        np.add.at(self._indptr, self._arc_src + 1, 1)
        self._indptr = np.cumsum(self._indptr).astype(np.int32)
        self._arc_latency = self.link_latency_ms[self._arc_link]
        self._graph = self._csr(self._arc_latency)
        self._link_of = {}
        for ln in self.links:
            self._link_of[(ln.a, ln.b)] = ln.index
            self._link_of[(ln.b, ln.a)] = ln.index
        degree = np.diff(self._indptr)
        if n and degree.max(initial=0) > END_X_MAX_ADJACENCIES:
            raise InputError(
                f"a router has {degree.max()} links; End.X SIDs number at most {END_X_MAX_ADJACENCIES}",
                field="topology",
            )
        self._trees: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._version = 0  # bumps on every reservation change
        self._state: FreeState | None = None  # per-version snapshot of free bandwidth (see _snapshot)
        self._widest: tuple[int, list[int], list[float]] | None = None  # (version, Kruskal tree parents, weights)
        self._names = [r.name for r in self.routers]
        self._router_operator = [r.operator for r in self.routers]
        self._transit_price = {op.name: op.transit_price_per_gbps_hour for op in self.operators}
        self._latency_list = self.link_latency_ms.tolist()
        self._capacity_list = self.link_capacity_gbps.tolist()
        self._link_operator_name = [ln.operator for ln in self.links]
        self._lock = threading.Lock()
        self._reservations: dict[int, _Reservation] = {}
        self._next_reservation = 1
        self._segments = SegmentIndex(n, self.links, self._latency_list, self._graph)

    def _csr(self, weights: np.ndarray) -> csr_matrix:
        n = len(self.routers)
        return csr_matrix((weights, self._arc_dst, self._indptr), shape=(n, n))

    # ---- names --------------------------------------------------------------------------------

    def router_index(self, router: str | int) -> int:
        """The index of a router given as "Operator/Label", a label unique in the network, or an index."""
        if type(router) is int and 0 <= router < len(self.routers):
            return router
        if isinstance(router, int | np.integer):
            if 0 <= router < len(self.routers):
                return int(router)
            raise NotFoundError(f"router index {router} is outside 0..{len(self.routers) - 1}", field="router")
        if router in self._by_name:
            return self._by_name[router]
        matches = self._by_label.get(router, [])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InputError(
                f"router label {router!r} exists in several operators; say which: "
                + ", ".join(self.routers[i].name for i in matches),
                field="router",
            )
        close = difflib.get_close_matches(router, list(self._by_name) + list(self._by_label), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NotFoundError(
            f"no router {router!r} in operators {', '.join(op.name for op in self.operators)} "
            f"({len(self.routers)} routers){hint}",
            field="router",
        )

    def adjacency(self, router: int) -> list[int]:
        """Neighbours of ``router`` in adjacency order; the j-th is reached by End.X function 0x0100 + j."""
        return self._arc_dst[self._indptr[router] : self._indptr[router + 1]].tolist()

    def sid(self, router: int, behavior: Behavior, neighbor: int | None = None) -> ipaddress.IPv6Address:
        loc = self.routers[router].locator
        if behavior is Behavior.END_X:
            nbrs = self.adjacency(router)
            if neighbor not in nbrs:
                raise InputError(f"{self.routers[router].name} has no link to router {neighbor}", field="neighbor")
            return loc.sid(Behavior.END_X + nbrs.index(neighbor))
        return loc.sid(behavior)

    # ---- shortest paths -----------------------------------------------------------------------

    def _tree(self, root: int) -> tuple[np.ndarray, np.ndarray]:
        """(latency from every router to ``root``, next hop of every router toward ``root``), cached.

        The next hop is the predecessor in the shortest-path tree rooted at ``root``; hop-by-hop
        forwarding on these next hops (what the data plane installs) follows exactly these paths.
        """
        tree = self._trees.get(root)
        if tree is None:
            dist, pred = dijkstra(self._graph, directed=True, indices=root, return_predecessors=True)
            dist.flags.writeable = False
            pred.flags.writeable = False
            if len(self._trees) >= _TREE_CACHE_SIZE:
                self._trees.pop(next(iter(self._trees)))
            tree = self._trees[root] = (dist, pred)
        return tree

    def latency_from(self, router: str | int) -> np.ndarray:
        """One-way latency in ms of the shortest path from ``router`` to every router (inf if unreachable)."""
        return self._tree(self.router_index(router))[0]

    @staticmethod
    def _walk(pred: np.ndarray, start: int, root: int) -> list[int]:
        nodes = [start]
        node = start
        while node != root:
            node = int(pred[node])
            if node < 0:
                raise AssertionError("predecessor tree broken")
            nodes.append(node)
        return nodes

    def make_path(self, nodes: Sequence[int], *, srv6: bool = True) -> Path:
        """A Path object for a router sequence (every consecutive pair must share a link)."""
        return self._make_path([int(i) for i in nodes], srv6, self._snapshot().free)

    def _make_path(self, nodes: Sequence[int], srv6: bool, free: list[float], links: list[int] | None = None) -> Path:
        if links is None:
            link_of = self._link_of
            try:
                links = [link_of[(nodes[i], nodes[i + 1])] for i in range(len(nodes) - 1)]
            except KeyError as exc:
                raise InputError(f"routers {exc.args[0]} share no link", field="path") from None
        latency, operator, price, capacity = (
            self._latency_list,
            self._link_operator_name,
            self.link_price,
            self._capacity_list,
        )
        lat = 0.0
        for li in links:
            lat += latency[li]
        on = [self._router_operator[i] for i in nodes]
        fees: dict[str, int]
        if not on or on.count(on[0]) == len(on):
            # One operator (a peering link joins two operators, so every link is this operator's).
            operators = on[:1]
            fees = {on[0]: self._transit_price[on[0]] * len(links)} if links else {}
        else:
            operators = []
            for op in on:
                if not operators or operators[-1] != op:
                    operators.append(op)
            fees = {}
            for li in links:
                lop = operator[li]
                if lop is not None:
                    fees[lop] = fees.get(lop, 0) + price[li]
        segments = tuple(str(x) for x in self.segment_list(nodes)) if srv6 and len(nodes) > 1 else ()
        names = self._names
        return Path(
            tuple([names[i] for i in nodes]),
            tuple(nodes),
            tuple(links),
            lat,
            min([free[li] for li in links]) if links else math.inf,
            min([capacity[li] for li in links]) if links else math.inf,
            tuple(operators),
            fees,
            segments,
        )

    def path(
        self,
        src: str | int,
        dst: str | int,
        max_latency_ms: float | None = None,
        min_bandwidth_gbps: float | None = None,
        *,
        srv6: bool = True,
    ) -> Path:
        """The lowest-latency path from ``src`` to ``dst`` whose every link has at least
        ``min_bandwidth_gbps`` free and whose latency is at most ``max_latency_ms``.

        Raises InfeasibleError (saying what the best available is) when no path meets the bounds.
        Without a bandwidth bound the path follows the shortest-path tree rooted at ``dst`` (cached;
        the data plane's next hops). With one: if that tree is cached, its path is tried first (if it
        has the bandwidth it is also the constrained optimum); otherwise an A* search (``_search``)
        runs over the links with enough free bandwidth, pruned at the latency bound (search.SegmentIndex).
        """
        s, t = self.router_index(src), self.router_index(dst)
        if min_bandwidth_gbps is not None and min_bandwidth_gbps < 0:
            raise InputError(f"min bandwidth must be >= 0 Gbps; got {min_bandwidth_gbps}", field="min_bandwidth_gbps")
        if max_latency_ms is not None and max_latency_ms < 0:
            raise InputError(f"max latency must be >= 0 ms; got {max_latency_ms}", field="max_latency_ms")
        limit = math.inf if max_latency_ms is None else max_latency_ms + LATENCY_EPSILON_MS
        state = self._snapshot()
        tree = self._trees.get(t)
        if tree is not None or not min_bandwidth_gbps:
            dist, pred = tree if tree is not None else self._tree(t)
            if not (dist[s] <= limit):  # also catches inf (not connected)
                self._explain(s, t, max_latency_ms, min_bandwidth_gbps, state)
            nodes = self._walk(pred, s, t)
            if not min_bandwidth_gbps:
                return self._make_path(nodes, srv6, state.free)
            need = min_bandwidth_gbps - BANDWIDTH_EPSILON_GBPS
            free, link_of = state.free, self._link_of
            if all(free[link_of[(nodes[i], nodes[i + 1])]] >= need for i in range(len(nodes) - 1)):
                return self._make_path(nodes, srv6, free)
        need = min_bandwidth_gbps - BANDWIDTH_EPSILON_GBPS
        widest = self._widest
        if widest is not None and widest[0] == state.version:
            widest_gbps = bottleneck(widest, s, t)
            if widest_gbps < need:  # no path anywhere has the bandwidth
                self._explain(s, t, max_latency_ms, min_bandwidth_gbps, state, widest_gbps)
        found = self._segments.search(s, t, limit, need, state)
        if found is None:
            self._explain(s, t, max_latency_ms, min_bandwidth_gbps, state)
        return self._make_path(found[1], srv6, state.free, found[2])

    def _snapshot(self) -> FreeState:
        """Free bandwidth as Python lists (fast to index) for the current reservation version."""
        state = self._state
        if state is None or state.version != self._version:
            with self._lock:
                free = self._free
                flat = self._segments.flat
                seg_free = np.minimum.reduceat(free[flat], self._segments.start) if len(flat) else free[:0]
                state = self._state = FreeState(self._version, free.tolist(), [*seg_free.tolist(), math.inf])
        return state

    def _drop_caches(self) -> None:
        """Forget every derived cache (trees, free-bandwidth snapshot, widest-path tree); for benchmarks."""
        self._trees.clear()
        self._state = None
        self._widest = None

    def _explain(
        self,
        s: int,
        t: int,
        max_latency_ms: float | None,
        min_bandwidth_gbps: float | None,
        state: FreeState,
        widest: float | None = None,
    ) -> NoReturn:
        """Raise InfeasibleError saying what the network can offer between s and t."""
        a, b = self._names[s], self._names[t]
        tree = self._trees.get(t)
        links: list[int] | None = None
        if tree is not None:
            shortest = float(tree[0][s])
            if math.isfinite(shortest):
                nodes = self._walk(tree[1], s, t)
                links = [self._link_of[(nodes[i], nodes[i + 1])] for i in range(len(nodes) - 1)]
        else:  # unconstrained search: a shortest path (the tree's, but for ties)
            found = self._segments.search(s, t, math.inf, -math.inf, state)
            if found is not None:
                shortest, _, links = found
        if links is None:
            raise InfeasibleError(f"{a} and {b} are not connected", field="path")
        if max_latency_ms is not None and shortest > max_latency_ms + LATENCY_EPSILON_MS:
            raise InfeasibleError(
                f"no path from {a} to {b} within {max_latency_ms} ms: the shortest takes {shortest:.3f} ms",
                field="max_latency_ms",
            )
        free = state.free
        on_shortest = min([free[li] for li in links], default=math.inf)
        raise InfeasibleError(
            f"no path from {a} to {b} with {min_bandwidth_gbps} Gbps free on every link"
            + (f" within {max_latency_ms} ms" if max_latency_ms is not None else "")
            + f"; the shortest path ({shortest:.3f} ms) has {on_shortest:.3f} Gbps free and the widest path "
            f"anywhere has {self._widest_bottleneck(s, t) if widest is None else widest:.3f} Gbps",
            field="min_bandwidth_gbps",
        )

    def _widest_bottleneck(self, s: int, t: int) -> float:
        """Largest free bandwidth B such that some path from s to t has >= B on every link."""
        widest = self._widest
        if widest is None or widest[0] != self._version:
            widest = self._build_widest()
        return bottleneck(widest, s, t)

    def _build_widest(self) -> tuple[int, list[int], list[float]]:
        """The widest-bottleneck tree (search.widest_tree) of the free bandwidth now, cached per version."""
        with self._lock:
            version, free = self._version, self._free.copy()
        parent, weight = widest_tree(len(self.routers), [(ln.a, ln.b) for ln in self.links], free)
        widest = self._widest = (version, parent, weight)
        return widest

    # ---- SRv6 ---------------------------------------------------------------------------------

    def segment_list(self, nodes: Sequence[int], *, decap: Behavior = Behavior.END_DT6) -> list[ipaddress.IPv6Address]:
        """The fewest SIDs that force a packet entering at ``nodes[0]`` along ``nodes`` (RFC 8986).

        A node SID (End) of ``nodes[j]`` takes the packet from ``nodes[i]`` along the path when
        hop-by-hop shortest-path forwarding toward ``nodes[j]`` follows ``nodes[i..j]`` exactly; an
        adjacency SID (End.X) of ``nodes[j]`` does the same and then crosses the link to
        ``nodes[j+1]`` whatever the shortest path says. A shortest-path DP over path positions picks
        the fewest SIDs, and among those the fewest End.X (node SIDs survive link changes better).
        The last SID is the egress router's ``decap`` SID (End.DT6 by default), which doubles as
        its node SID.
        """
        last = len(nodes) - 1
        if last < 1:
            raise InputError("a segment list needs a path of at least one link", field="path")
        # reach_from[j] = smallest i such that shortest-path forwarding toward nodes[j] follows nodes[i..j].
        reach_from = [0] * (last + 1)
        for j in range(1, last + 1):
            pred = self._tree(nodes[j])[1]
            i = j
            while i > 0 and pred[nodes[i - 1]] == nodes[i]:
                i -= 1
            reach_from[j] = i
        inf = (len(nodes) * 2, 0)
        # best[k]: (SIDs, End.X count) to have the packet at nodes[k]; final: done with decap.
        best: list[tuple[int, int]] = [inf] * (last + 1)
        how: list[tuple[int, ipaddress.IPv6Address] | None] = [None] * (last + 1)
        best[0] = (0, 0)
        final, final_how = inf, None
        for i in range(last + 1):
            if best[i] == inf:
                continue
            c, x = best[i]
            for j in range(i, last + 1):
                if reach_from[j] > i:
                    continue
                if j > i:
                    if j == last:
                        if (c + 1, x) < final:
                            final, final_how = (c + 1, x), (i, self.sid(nodes[j], decap))
                    elif (c + 1, x) < best[j]:
                        best[j], how[j] = (c + 1, x), (i, self.sid(nodes[j], Behavior.END))
                if j < last and (c + 1, x + 1) < best[j + 1]:
                    best[j + 1], how[j + 1] = (c + 1, x + 1), (i, self.sid(nodes[j], Behavior.END_X, nodes[j + 1]))
        if best[last] != inf and (best[last][0] + 1, best[last][1]) < final:
            final, final_how = (best[last][0] + 1, best[last][1]), (last, self.sid(nodes[last], decap))
        assert final_how is not None
        sids = [final_how[1]]
        k = final_how[0]
        while k > 0:
            step = how[k]
            assert step is not None
            sids.append(step[1])
            k = step[0]
        return sids[::-1]

    # ---- reservations -------------------------------------------------------------------------

    def free_gbps(self) -> np.ndarray:
        """Free bandwidth per link (a copy), in link index order."""
        with self._lock:
            return self._free.copy()

    def reserve(self, path: Path, gbps: float) -> int:
        """Take ``gbps`` from every link of ``path``; returns a reservation id for ``release``.

        Atomic: either every link has room and all are charged, or InfeasibleError names the links
        that lack it and nothing changes.
        """
        if not gbps > 0:
            raise InputError(f"a reservation needs a positive bandwidth; got {gbps}", field="gbps")
        links = np.fromiter(path.links, dtype=np.int64, count=len(path.links))
        with self._lock:
            short = [int(li) for li in links if self._free[li] + BANDWIDTH_EPSILON_GBPS < gbps]
            if short:
                desc = ", ".join(
                    f"{self.routers[self.links[li].a].name}-{self.routers[self.links[li].b].name} "
                    f"({self._free[li]:.3f} Gbps free)"
                    for li in short[:5]
                )
                raise InfeasibleError(f"cannot reserve {gbps} Gbps: {desc}", field="gbps")
            self._free[links] -= gbps
            self._version += 1
            rid = self._next_reservation
            self._next_reservation += 1
            self._reservations[rid] = _Reservation(links, gbps)
            return rid

    def release(self, reservation_id: int) -> None:
        with self._lock:
            res = self._reservations.pop(reservation_id, None)
            if res is None:
                raise NotFoundError(
                    f"no reservation {reservation_id}; {len(self._reservations)} are active", field="reservation_id"
                )
            self._version += 1
            self._free[res.links] = np.minimum(self._free[res.links] + res.gbps, self.link_capacity_gbps[res.links])

    @property
    def reservations(self) -> dict[int, tuple[tuple[int, ...], float]]:
        with self._lock:
            return {k: (tuple(int(x) for x in v.links), v.gbps) for k, v in self._reservations.items()}
