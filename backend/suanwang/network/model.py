"""The multi-operator network: routers, links, free bandwidth, and the path API the matcher uses.

Transit fee unit (stated once, here and in docs/network-model.md): an operator's transit price is in
settlement-token base units per Gbps-hour of reserved bandwidth per link of that operator that the
path crosses. A path's fee per operator is ``price x (number of its links on the path)`` per
Gbps-hour; a lease pays that times its reserved Gbps times its duration in hours. Peering links
between operators are free.

Reservations are symmetric: reserving G Gbps for a lease takes G from every link of its path (both
directions of a full-duplex link carry the lease, so a link's capacity is per direction and one
number per link suffices).
"""

from __future__ import annotations

import difflib
import heapq
import ipaddress
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NoReturn

import numpy as np
from eth_hash.auto import keccak
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from suanwang.errors import InfeasibleError, InputError, NotFoundError
from suanwang.network.srv6 import END_X_MAX_ADJACENCIES, Behavior, Locator
from suanwang.network.topology import (
    Topology,
    fibre_latency_ms,
    haversine_km,
)

BANDWIDTH_EPSILON_GBPS = 1e-9
LATENCY_EPSILON_MS = 1e-9
_TREE_CACHE_SIZE = 4096
_LANDMARKS = 8


def router_id(operator: str, label: str) -> bytes:
    """bytes32 router id = keccak256("<operator>/<router label>") (PRODUCT.md shared data model)."""
    return keccak(f"{operator}/{label}".encode())


@dataclass(frozen=True, slots=True)
class Operator:
    """A network operator: its topology and its transit price (token base units per Gbps-hour per link)."""

    name: str
    topology: Topology
    transit_price_per_gbps_hour: int


@dataclass(frozen=True, slots=True)
class Peering:
    """A peering link between two operators' routers, given as "Operator/Label" names."""

    a: str
    b: str
    capacity_gbps: float


@dataclass(frozen=True, slots=True)
class Router:
    index: int
    operator: str
    operator_number: int
    label: str
    graphml_id: str
    latitude: float
    longitude: float
    router_id: bytes
    locator: Locator

    @property
    def name(self) -> str:
        return f"{self.operator}/{self.label}"


@dataclass(frozen=True, slots=True)
class Link:
    index: int
    a: int
    b: int
    km: float
    latency_ms: float
    capacity_gbps: float
    operator: str | None  # None for a peering link


@dataclass(frozen=True, slots=True)
class Path:
    """A route through the network, priced and (optionally) turned into an SRv6 segment list."""

    routers: tuple[str, ...]
    router_indices: tuple[int, ...]
    links: tuple[int, ...]
    latency_ms: float
    bandwidth_gbps: float  # bottleneck free bandwidth when the path was computed
    capacity_gbps: float  # bottleneck capacity
    operators: tuple[str, ...]
    transit_fee_per_gbps_hour: dict[str, int]
    segments: tuple[str, ...] = ()

    def transit_fee(self, gbps: float, seconds: int) -> dict[str, int]:
        """Token base units owed to each operator for ``gbps`` reserved for ``seconds`` (rounded up)."""
        scale = Fraction(gbps) * Fraction(seconds, 3600)
        out = {}
        for op, rate in self.transit_fee_per_gbps_hour.items():
            fee = rate * scale
            out[op] = -((-fee.numerator) // fee.denominator)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "path": list(self.routers),
            "latency_ms": self.latency_ms,
            "bandwidth_gbps": self.bandwidth_gbps,
            "capacity_gbps": self.capacity_gbps,
            "segments": list(self.segments),
            "operators": list(self.operators),
            "transit_fee_per_gbps_hour": {k: str(v) for k, v in self.transit_fee_per_gbps_hour.items()},
            "hops": len(self.links),
        }


@dataclass(frozen=True, slots=True)
class _State:
    """Free bandwidth at one reservation version: per link, and the bottleneck of every segment."""

    version: int
    free: list[float]
    segment_free: list[float]  # one more entry, inf, for the search's arcs that end a query (segment -1)


@dataclass(slots=True)
class _Reservation:
    links: np.ndarray
    gbps: float


@dataclass(slots=True)
class CheapestResult:
    """A cheapest path under a latency bound; ``lower_bound`` is a proven bound on the optimum's cost."""

    path: Path
    cost_per_gbps_hour: int
    lower_bound: float
    exact: bool
    labels_or_iterations: int = 0
    notes: list[str] = field(default_factory=list)


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
        self._state: _State | None = None  # per-version snapshot of free bandwidth (see _snapshot)
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
        self._build_search()

    def _build_search(self) -> None:
        """Structures for the constrained search (``_search``), all fixed by the topology.

        Chains: a router with exactly two links (most routers of these networks) can only pass traffic
        through, so the search jumps over maximal runs of them in one step. A "stop" is a router with
        another number of links (plus one router of any ring that has none); a segment is the run of
        links from a stop to the next stop. Heuristic: landmark (ALT) bounds on the latency to the
        destination, admissible whatever latencies the links were given (see below).
        """
        n = len(self.routers)
        nbrs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for ln in self.links:
            nbrs[ln.a].append((ln.b, ln.index))
            nbrs[ln.b].append((ln.a, ln.index))
        stop = [len(x) != 2 for x in nbrs]
        lat = self._latency_list
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
                # unless the destination lies on it (see _search): only ``out`` lists those.
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
        self._seg_nodes, self._seg_links, self._seg_cum, self._seg_of = seg_nodes, seg_links, seg_cum, seg_of
        self._seg_out, self._seg_live, self._seg_start_of = out, live, seg_start_of
        # Segments into a router with one link (dead ends): the search takes them only toward that router.
        self._seg_into: list[list[int]] = [[] for _ in range(n)]
        for k, nodes in enumerate(seg_nodes):
            if len(nbrs[nodes[-1]]) == 1 and nodes[-1] != nodes[0]:
                self._seg_into[nodes[-1]].append(k)
        flat = [li for links in seg_links for li in links]
        self._seg_flat = np.array(flat, dtype=np.int64)
        self._seg_start = np.cumsum([0] + [len(x) for x in seg_links[:-1]]).astype(np.int64)

        # Landmarks (ALT, Goldberg & Harrelson 2005): whole-graph latency from a few far-apart routers.
        # |d(l, v) - d(l, t)| <= d(v, t) (triangle inequality), and dropping links for a bandwidth bound
        # only lengthens paths, so the bound holds for constrained searches too. Unreachable -> 0: a
        # router and a destination on different sides of a landmark are not connected anyway.
        self._landmarks: list[list[float]] = []
        self._zeros = [0.0] * n
        nearest = np.full(n, np.inf)
        pick = 0
        for i in range(min(_LANDMARKS, n)):
            if i:
                pick = int(np.argmax(np.where(np.isfinite(nearest), nearest, -1.0)))
            d = np.asarray(dijkstra(self._graph, directed=True, indices=pick))
            if not i:  # start from the router farthest from router 0, not router 0 itself
                pick = int(np.argmax(np.where(np.isfinite(d), d, -1.0)))
                d = np.asarray(dijkstra(self._graph, directed=True, indices=pick))
            nearest = np.minimum(nearest, d)
            self._landmarks.append(np.where(np.isfinite(d), d, 0.0).tolist())

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
        runs over the links with enough free bandwidth, pruned at the latency bound.
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
            bottleneck = self._bottleneck(widest, s, t)
            if bottleneck < need:  # no path anywhere has the bandwidth
                self._explain(s, t, max_latency_ms, min_bandwidth_gbps, state, bottleneck)
        found = self._search(s, t, limit, need, state)
        if found is None:
            self._explain(s, t, max_latency_ms, min_bandwidth_gbps, state)
        return self._make_path(found[1], srv6, state.free, found[2])

    def _snapshot(self) -> _State:
        """Free bandwidth as Python lists (fast to index) for the current reservation version."""
        state = self._state
        if state is None or state.version != self._version:
            with self._lock:
                free = self._free
                flat = self._seg_flat
                seg_free = np.minimum.reduceat(free[flat], self._seg_start) if len(flat) else free[:0]
                state = self._state = _State(self._version, free.tolist(), [*seg_free.tolist(), math.inf])
        return state

    def _drop_caches(self) -> None:
        """Forget every derived cache (trees, free-bandwidth snapshot, widest-path tree); for benchmarks."""
        self._trees.clear()
        self._state = None
        self._widest = None

    def _search(
        self, s: int, t: int, limit: float, need: float, state: _State
    ) -> tuple[float, list[int], list[int]] | None:
        """(latency, routers, links) of a lowest-latency path s -> t using only links with >= ``need``
        free and at most ``limit`` ms, or None.

        A* over segments (chains of two-link routers jumped in one step, see ``_build_search``) with
        the landmark lower bound (the two landmarks that bound d(s, t) best). A router may be
        re-opened, so the bound only needs to be admissible. Anything whose latency so far plus the
        bound exceeds ``limit`` is pruned.
        """
        if s == t:
            return 0.0, [s], []
        # The two landmarks that bound d(s, t) best serve as the query's bound.
        la = lb = self._zeros  # both set in the loop below (a network has at least one router)
        ta = tb = 0.0
        best_a = best_b = -1.0
        for lm in self._landmarks:
            bound = abs(lm[s] - lm[t])
            if bound > best_a:
                la, ta, best_a, lb, tb, best_b = lm, lm[t], bound, la, ta, best_a
            elif bound > best_b:
                lb, tb, best_b = lm, lm[t], bound
        if best_b < 0:  # fewer than two landmarks
            lb, tb = la, ta
        seg_nodes, seg_cum, seg_links = self._seg_nodes, self._seg_cum, self._seg_links
        seg_free, free = state.segment_free, state.free  # seg_free[-1] is inf: arcs with k = -1 always pass
        # Segments that reach t: through it (t inside a chain: cut at t) or ending at it (even dead ends).
        # Their start routers expand over every segment, with these replaced; the others skip dead ends.
        # Arcs are (router, latency, segment or -1, routers, links); ``came`` keeps the arc taken.
        to_t: dict[int, tuple[int, float, int, list[int], list[int]]] = {}
        for k, pos in self._seg_of[t]:
            links = seg_links[k][:pos]
            for li in links:
                if free[li] < need:
                    break
            else:
                to_t[k] = (t, seg_cum[k][pos], -1, seg_nodes[k][: pos + 1], links)
        for k in self._seg_into[t]:
            if seg_free[k] >= need:
                to_t[k] = (t, seg_cum[k][-1], -1, seg_nodes[k], seg_links[k])
        seg_out, seg_live = self._seg_out, self._seg_live
        special = {self._seg_start_of[k] for k in to_t}
        push, pop, inf = heapq.heappush, heapq.heappop, math.inf
        g = [inf] * len(la)  # latency so far per router
        g[s] = 0.0
        came: dict[int, tuple[int, float, int, list[int], list[int]]] = {}
        heap: list[tuple[float, float, int]] = []

        if self._seg_of[s]:  # s inside a chain: walk to both ends (or to t on the way)
            t_at = dict(self._seg_of[t])
            for k, pos in self._seg_of[s]:
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

    def _explain(
        self,
        s: int,
        t: int,
        max_latency_ms: float | None,
        min_bandwidth_gbps: float | None,
        state: _State,
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
            found = self._search(s, t, math.inf, -math.inf, state)
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
        return self._bottleneck(widest, s, t)

    def _build_widest(self) -> tuple[int, list[int], list[float]]:
        """Kruskal reconstruction tree of free bandwidth (links joined widest first): leaves are routers,
        each inner node is the join made by one link and carries its free bandwidth, so the widest
        bottleneck between two routers is the weight of their lowest common ancestor. Inner nodes are
        numbered in join order, so a parent's number is always above its children's."""
        with self._lock:
            version, free = self._version, self._free.copy()
        n, m = len(self.routers), len(self.links)
        top = 2 * n  # sentinel: parent of every root, weight 0 (not connected)
        parent = list(range(top + 1))
        weight = [math.inf] * n + [0.0] * (n + 1)
        for i in range(n):
            parent[i] = top
        uf = list(range(n))
        node_of = list(range(n))  # union-find root -> its tree node
        ends = [(ln.a, ln.b) for ln in self.links]
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
        widest = (version, parent, weight)
        self._widest = widest
        return widest

    @staticmethod
    def _bottleneck(widest: tuple[int, list[int], list[float]], s: int, t: int) -> float:
        _, parent, weight = widest
        while s != t:
            if s < t:
                s = parent[s]
            else:
                t = parent[t]
        return weight[s]

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
