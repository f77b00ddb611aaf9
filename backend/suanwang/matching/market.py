"""The marketplace mode: matching in the units the chain checks (contracts/Market.sol).

On chain a node offers milli-compute-units (mCU) per class (logic, parallel, neural); a match
*reserves* the order's mCU of each class on the node (released when the deal ends), while
memory, GPU model and count and tier are *checks* only (node value >= order value; the model
equal unless the order's is 0 = any). The market also checks the node's price against the
order's ``maxPricePerCuHour`` and the whole bill against ``maxTotal``, with integer arithmetic
(contracts/libraries/Splits.sol)::

    computeFee  = price * (logic + parallel + neural mCU) * duration // 3_600_000
    platformFee = computeFee * feeBps // 10_000
    total       = computeFee + platformFee + sum(transit fees)

:class:`MarketEngine` places orders one at a time (``place``) or together (``clear_batch``)
through the same framework as :class:`~suanwang.matching.engine.Engine`: the ``market``
profile's filters (``stage``, ``node_fit``, ``mcu_capacity``, ``market_price``, ``network``,
``bill``; plugins in ``market_plugins``) and weighted scores. Every placement it returns passes
every check ``Market._match`` makes, so the chain accepts it unless the chain's state moved
(another matcher reserved the capacity first).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
from ortools.sat.python import cp_model

from suanwang.errors import InputError, NotFoundError
from suanwang.matching.framework import REGISTRY, FilterPlugin, Profile, ScorePlugin, profile_named
from suanwang.matching.model import Explanation, NetworkCost, Rejection, StagePolicy, Unplaced

if TYPE_CHECKING:
    from suanwang.matching.cluster import BoolArray, FloatArray, IntArray
    from suanwang.matching.engine import Cycle, Engine

MCU_SECONDS_PER_CU_HOUR = 1000 * 3600  # Splits.MS_PER_HOUR_MCU
BPS = 10_000
CLASSES = ("logic", "parallel", "neural")
# Chain integer widths (IMarket.Order, INodeRegistry.NodeSpec).
UINT16, UINT32, UINT128 = 2**16 - 1, 2**32 - 1, 2**128 - 1
# mCU are uint64 on chain; the engine keeps them in int64 and caps each figure so that sums of
# reservations on a node cannot overflow.
MAX_MCU = 2**62
INT64_SAFE = 2**63 - 1
DEFAULT_K = 8

ObjectArray = npt.NDArray[np.object_]
TransitFee = Callable[["MarketOrder", "MarketNode"], int]


# ---------------------------------------------------------------------- data
@dataclass(frozen=True, slots=True)
class MarketNode:
    """A node as registered on chain (INodeRegistry.NodeSpec plus its owner and id).

    ``router`` is the index the routing function understands for the node's attachment router;
    ``operator`` the network operator whose domain it attaches to; ``reliability`` (0..1) the
    seller's delivery record, a preference only.
    """

    node_id: int
    owner: str
    operator: str
    router: int
    logic_mcu: int
    parallel_mcu: int
    neural_mcu: int
    memory_mib: int
    gpu_model: int
    gpu_count: int
    tier: int
    price_per_cu_hour: int
    reliability: float = 1.0

    @property
    def capacity(self) -> tuple[int, int, int]:
        return (self.logic_mcu, self.parallel_mcu, self.neural_mcu)


@dataclass(frozen=True, slots=True)
class MarketOrder:
    """A buyer's order as signed (IMarket.Order). ``gpu_model`` 0 = any; ``max_latency_ms`` 0 = no
    latency limit and ``min_bandwidth_gbps`` 0 = no bandwidth floor (as the chain's zero values)."""

    order_id: str
    buyer: str
    logic_mcu: int
    parallel_mcu: int
    neural_mcu: int
    memory_mib: int
    gpu_model: int
    gpu_count: int
    min_tier: int
    duration_s: int
    max_price_per_cu_hour: int
    max_total: int
    access_point: int
    max_latency_ms: float
    min_bandwidth_gbps: float

    @property
    def id(self) -> str:
        return self.order_id

    @property
    def demand(self) -> tuple[int, int, int]:
        return (self.logic_mcu, self.parallel_mcu, self.neural_mcu)

    @property
    def total_mcu(self) -> int:
        return self.logic_mcu + self.parallel_mcu + self.neural_mcu


@dataclass(frozen=True, slots=True)
class MarketPlacement:
    """A match ready for ``Market.matchSigned``/``matchPosted``: the node and the bill's fees.

    ``transit_estimate`` is the engine's estimate of the transit fees (from ``transit_fee``); the
    bill submitted must carry transit fees summing to no more than it for ``total`` to hold.
    """

    order_id: str
    node_id: int
    compute_fee: int
    platform_fee: int
    transit_estimate: int
    total: int
    latency_ms: float | None
    score: float


@dataclass(frozen=True)
class MarketBatchResult:
    placements: list[MarketPlacement]
    unplaced: list[Unplaced]
    total: int
    solver: str
    k: int
    optimal: bool
    greedy_matched: int
    greedy_total: int
    seconds: float

    @property
    def matched(self) -> int:
        return len(self.placements)


# ---------------------------------------------------------------------- the contract's arithmetic
def compute_fee(price_per_cu_hour: int, total_mcu: int, duration_s: int) -> int:
    """Splits.computeFee: price x CU x hours, rounded down, in token base units."""
    return price_per_cu_hour * total_mcu * duration_s // MCU_SECONDS_PER_CU_HOUR


def platform_fee(compute: int, fee_bps: int) -> int:
    """Splits.platformFee: ``compute`` x fee / 10,000, rounded down."""
    return compute * fee_bps // BPS


def fee_vectors(
    prices: list[int], total_mcu: int, duration_s: int, fee_bps: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(compute fees, platform fees) for many prices, exactly as :func:`compute_fee` and
    :func:`platform_fee`: int64 arrays when no intermediate product can overflow, else arrays of
    Python integers (object dtype), which are exact at any size."""
    scale = total_mcu * duration_s
    if prices and max(prices) * scale * max(fee_bps, 1) <= INT64_SAFE:
        compute = np.array(prices, dtype=np.int64) * scale // MCU_SECONDS_PER_CU_HOUR
        return compute, compute * fee_bps // BPS
    compute = np.array([p * scale // MCU_SECONDS_PER_CU_HOUR for p in prices], dtype=object)
    return compute, np.array([c * fee_bps // BPS for c in compute], dtype=object)


def tokens(amount: int) -> str:
    """Token base units (18 decimals) as a plain amount: 2 * 10**18 -> '2 tokens'."""
    whole, fraction = divmod(amount, 10**18)
    figure = str(whole) if not fraction else f"{whole}.{fraction:018d}".rstrip("0")
    return f"{figure} token" + ("" if amount == 10**18 else "s")


# ---------------------------------------------------------------------- validation
def _check_int(prefix: str, name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(
            f"{prefix}: {name} must be an integer in {low}..{high}, got {value!r}", field=f"{prefix.split()[-1]}:{name}"
        )


def validate_market_order(order: MarketOrder) -> None:
    """Raise InputError naming ``<order id>:<field>`` if the order is malformed or the chain would refuse it."""
    prefix = f"order {order.order_id}"
    if not isinstance(order.order_id, str) or not order.order_id:
        raise InputError("an order needs a non-empty id", field="order_id")
    for name in ("logic_mcu", "parallel_mcu", "neural_mcu"):
        _check_int(prefix, name, getattr(order, name), 0, MAX_MCU)
    if order.total_mcu == 0:
        raise InputError(f"{prefix}: asks for no compute (EmptyOrder on chain)", field=f"{order.order_id}:logic_mcu")
    _check_int(prefix, "memory_mib", order.memory_mib, 0, UINT32)
    _check_int(prefix, "gpu_model", order.gpu_model, 0, UINT16)
    _check_int(prefix, "gpu_count", order.gpu_count, 0, UINT16)
    _check_int(prefix, "min_tier", order.min_tier, 0, 3)
    _check_int(prefix, "duration_s", order.duration_s, 1, UINT32)
    _check_int(prefix, "max_price_per_cu_hour", order.max_price_per_cu_hour, 0, UINT128)
    _check_int(prefix, "max_total", order.max_total, 0, UINT128)
    _check_int(prefix, "access_point", order.access_point, 0, INT64_SAFE)
    if not 0 <= order.max_latency_ms < float("inf"):
        raise InputError(
            f"{prefix}: max_latency_ms must be >= 0 (0 = no limit), got {order.max_latency_ms}",
            field=f"{order.order_id}:max_latency_ms",
        )
    if not 0 <= order.min_bandwidth_gbps < float("inf"):
        raise InputError(
            f"{prefix}: min_bandwidth_gbps must be >= 0 (0 = no floor), got {order.min_bandwidth_gbps}",
            field=f"{order.order_id}:min_bandwidth_gbps",
        )


def validate_market_node(node: MarketNode) -> None:
    """Raise InputError naming ``<node id>:<field>`` for what the registry would refuse or the engine cannot hold."""
    prefix = f"node {node.node_id}"
    _check_int(prefix, "node_id", node.node_id, 1, INT64_SAFE)
    for name in ("logic_mcu", "parallel_mcu", "neural_mcu"):
        _check_int(prefix, name, getattr(node, name), 0, MAX_MCU)
    if not any(node.capacity):
        raise InputError(
            f"{prefix}: offers no compute in any class (ZeroCapacity on chain)", field=f"{node.node_id}:logic_mcu"
        )
    _check_int(prefix, "memory_mib", node.memory_mib, 0, UINT32)
    _check_int(prefix, "gpu_model", node.gpu_model, 0, UINT16)
    _check_int(prefix, "gpu_count", node.gpu_count, 0, UINT16)
    if (node.gpu_model == 0) != (node.gpu_count == 0):
        raise InputError(
            f"{prefix}: GPU model {node.gpu_model} and count {node.gpu_count} disagree (InvalidGpu)",
            field=f"{node.node_id}:gpu_count",
        )
    _check_int(prefix, "tier", node.tier, 0, 3)
    _check_int(prefix, "price_per_cu_hour", node.price_per_cu_hour, 0, UINT128)
    _check_int(prefix, "router", node.router, 0, INT64_SAFE)
    if not 0.0 <= node.reliability <= 1.0:
        raise InputError(
            f"{prefix}: reliability must be in 0..1, got {node.reliability}", field=f"{node.node_id}:reliability"
        )


# ---------------------------------------------------------------------- node state
class MarketState:
    """Every node the engine knows, index-aligned arrays; a removed node keeps its slot (and its
    reservations, which may still be released) but takes no new orders.

    The names ``size``, ``owner``, ``owner_names`` and ``reliability`` are those the shared
    ``stage`` and ``reliability`` plugins read on :class:`~suanwang.matching.cluster.ClusterState`.
    """

    def __init__(self, nodes: Sequence[MarketNode]) -> None:
        self.nodes: list[MarketNode] = []
        self.index: dict[int, int] = {}
        self.capacity = np.zeros((0, 3), dtype=np.int64)
        self.reserved = np.zeros((0, 3), dtype=np.int64)
        self.listed = np.zeros(0, dtype=bool)
        self._derive()  # an empty market has (empty) derived arrays too
        for node in nodes:
            self.add(node)

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def node_ids(self) -> list[int]:
        return [n.node_id for n in self.nodes]

    @property
    def free(self) -> IntArray:
        free: IntArray = self.capacity - self.reserved
        return free

    def add(self, node: MarketNode) -> int:
        validate_market_node(node)
        if node.node_id in self.index:
            raise InputError(f"node {node.node_id} is already known", field=f"{node.node_id}:node_id")
        self.index[node.node_id] = len(self.nodes)
        self.nodes.append(node)
        self.capacity = np.vstack([self.capacity, np.array([node.capacity], dtype=np.int64)])
        self.reserved = np.vstack([self.reserved, np.zeros((1, 3), dtype=np.int64)])
        self.listed = np.append(self.listed, True)
        self._derive()
        return self.index[node.node_id]

    def replace(self, slot: int, node: MarketNode) -> None:
        validate_market_node(node)
        below = np.flatnonzero(np.array(node.capacity) < self.reserved[slot])
        if below.size:
            name = CLASSES[int(below[0])]
            raise InputError(
                f"node {node.node_id}: {name}_mcu {node.capacity[below[0]]} is below the "
                f"{int(self.reserved[slot, below[0]])} mCU reserved by running deals (CapacityBelowReserved on chain)",
                field=f"{node.node_id}:{name}_mcu",
            )
        self.nodes[slot] = node
        self.capacity[slot] = node.capacity
        self._derive()

    def slot(self, node_id: int) -> int:
        try:
            return self.index[node_id]
        except KeyError:
            raise NotFoundError(
                f"no node {node_id} in this market; known: {len(self.index)} nodes", field="node_id"
            ) from None

    def _derive(self) -> None:
        nodes = self.nodes
        self.memory = np.array([n.memory_mib for n in nodes], dtype=np.int64)
        self.gpu_model = np.array([n.gpu_model for n in nodes], dtype=np.int64)
        self.gpu_count = np.array([n.gpu_count for n in nodes], dtype=np.int64)
        self.tier = np.array([n.tier for n in nodes], dtype=np.int64)
        self.router = np.array([n.router for n in nodes], dtype=np.int64)
        self.reliability = np.array([n.reliability for n in nodes], dtype=float)
        self.prices = [n.price_per_cu_hour for n in nodes]
        self.price = np.array([float(p) for p in self.prices])  # for ordering only; checks use ``prices``
        self.owner_names = sorted({n.owner for n in nodes})
        owner_index = {name: i for i, name in enumerate(self.owner_names)}
        self.owner = np.array([owner_index[n.owner] for n in nodes], dtype=np.int64)


# ---------------------------------------------------------------------- cycle
class MarketCycle:
    """What one placement cycle knows about its order. ``passing`` is the mask of nodes every
    filter so far accepts: the bill (which may call the transit-fee function per node) is only
    computed for those. The fee vectors hold values at the ``billed`` node indices."""

    __slots__ = (
        "bandwidth",
        "billed",
        "compute",
        "engine",
        "latency",
        "max_latency_ms",
        "min_bandwidth_gbps",
        "order",
        "passing",
        "platform",
        "total",
        "transit",
    )

    def __init__(self, engine: MarketEngine, order: MarketOrder) -> None:
        self.engine = engine
        self.order = order
        self.latency: FloatArray | None = None
        self.bandwidth: FloatArray | None = None
        self.max_latency_ms = order.max_latency_ms or None
        self.min_bandwidth_gbps = order.min_bandwidth_gbps or None
        self.passing: BoolArray = np.ones(engine.state.size, dtype=bool)
        self.billed: IntArray | None = None
        self.compute: npt.NDArray[Any] | None = None
        self.platform: npt.NDArray[Any] | None = None
        self.transit: npt.NDArray[Any] | None = None
        self.total: npt.NDArray[Any] | None = None

    def bill(self, nodes: IntArray) -> npt.NDArray[Any]:
        """Totals at node indices ``nodes`` (computing the bill there once)."""
        if self.billed is None or not np.isin(nodes, self.billed).all():
            self.billed = np.union1d(self.billed if self.billed is not None else nodes, nodes)
            self.compute, self.platform, self.transit, self.total = self.engine.bills(self.order, self.billed)
        assert self.total is not None
        total: npt.NDArray[Any] = self.total[np.searchsorted(self.billed, nodes)]
        return total

    def fees_at(self, node: int) -> tuple[int, int, int, int]:
        """(compute, platform, transit, total) at one node index, as Python ints."""
        self.bill(np.array([node]))
        assert self.billed is not None and self.compute is not None and self.platform is not None
        assert self.transit is not None and self.total is not None
        at = int(np.searchsorted(self.billed, node))
        return int(self.compute[at]), int(self.platform[at]), int(self.transit[at]), int(self.total[at])


# ---------------------------------------------------------------------- engine
class MarketEngine:
    """Matches on-chain orders with on-chain nodes, keeping the capacity reserved by its matches.

    >>> engine = MarketEngine(nodes, network, StagePolicy(3), platform_fee_bps=250)  # doctest: +SKIP
    >>> result = engine.place(order)   # MarketPlacement, or Unplaced(order_id, explanation)
    >>> engine.release(order.order_id) # the deal ended: its mCU return to the node
    """

    def __init__(
        self,
        nodes: Sequence[MarketNode],
        network: NetworkCost | None,
        stage: StagePolicy,
        platform_fee_bps: int,
        transit_fee: TransitFee | None = None,
        profile: str | Profile = "market",
    ) -> None:
        _check_int("market", "platform_fee_bps", platform_fee_bps, 0, BPS)
        self.state = MarketState(nodes)
        self.network = network
        self.stage = stage
        self.platform_fee_bps = platform_fee_bps
        self.transit_fee = transit_fee
        self.profile = profile_named(profile) if isinstance(profile, str) else profile
        self.reservations: dict[str, tuple[int, tuple[int, int, int]]] = {}
        self._route_cache: dict[int, tuple[FloatArray, FloatArray]] = {}
        plugins: dict[str, Any] = {}
        for name in (*self.profile.filters, *(n for n, _ in self.profile.scores)):
            cls = REGISTRY[name]
            if "market" not in cls.serves:
                raise InputError(
                    f"profile {self.profile.name!r}: plugin {name!r} does not serve the market engine",
                    field=f"profiles:{self.profile.name}:{name}",
                )
            # The plugins shared with Engine (stage, network, reliability) read only stage, network,
            # routes() and cluster.{size, owner, owner_names, reliability}, which this engine provides.
            plugins.setdefault(name, cls(cast("Engine", self), self.profile.args.get(name, {})))
        self.filters: list[FilterPlugin] = [
            p for n in self.profile.filters if isinstance(p := plugins[n], FilterPlugin)
        ]
        self.scorers = [(p, w) for n, w in self.profile.scores if isinstance(p := plugins[n], ScorePlugin)]
        self._plugins = list(plugins.values())

    # ------------------------------------------------------------------ views the shared plugins read
    @property
    def cluster(self) -> MarketState:
        return self.state

    def routes(self, access_point: int) -> tuple[FloatArray, FloatArray]:
        """(latency ms, bandwidth Gbps) from an access point to every node; cached per access point."""
        cached = self._route_cache.get(access_point)
        if cached is None:
            n = self.state.size
            latency, bandwidth = np.full(n, np.inf), np.zeros(n)
            if self.network is not None and n:
                latency = np.asarray(self.network.latency_ms(access_point, self.state.router), dtype=float)
                bandwidth = np.asarray(self.network.bandwidth_gbps(access_point, self.state.router), dtype=float)
            cached = self._route_cache[access_point] = (latency, bandwidth)
        return cached

    def network_changed(self) -> None:
        """Drop cached routing answers (call after the network's costs change)."""
        self._nodes_changed()

    # ------------------------------------------------------------------ public API
    def place(self, order: MarketOrder) -> MarketPlacement | Unplaced:
        """Match one order on the best node that passes every check now and reserve its mCU there,
        or say why no node can take it."""
        self._check_new(order)
        cycle = self._cycle(order)
        candidates = np.flatnonzero(self._feasible(cycle))
        if candidates.size == 0:
            return Unplaced(order.order_id, self._explain(cycle, feasible=0))
        total = self._scores(cycle, candidates)
        best = int(candidates[int(np.argmax(total))])
        return self._reserve(cycle, best, float(total.max()))

    def explain(self, order: MarketOrder) -> Explanation:
        """Why each node would or would not take this order now (nothing is reserved)."""
        validate_market_order(order)
        cycle = self._cycle(order)
        return self._explain(cycle, feasible=int(self._feasible(cycle).sum()))

    def feasible(self, order: MarketOrder) -> list[int]:
        """Ids of the nodes that pass every check for this order now."""
        validate_market_order(order)
        return [self.state.nodes[i].node_id for i in np.flatnonzero(self._feasible(self._cycle(order)))]

    def release(self, order_id: str) -> None:
        """The order's deal ended (completed, refunded, timed out): its mCU return to the node."""
        try:
            slot, demand = self.reservations.pop(order_id)
        except KeyError:
            raise NotFoundError(f"order {order_id} holds no reservation here", field="order_id") from None
        self.state.reserved[slot] -= demand

    def reserve_existing(self, order: MarketOrder, node_id: int) -> None:
        """Record a deal already on chain (rebuilding the reservations after a restart).

        No market check is made (the chain made them at match time, and the node may have been
        paused or repriced since); only the capacity must hold it, as the registry guarantees.
        """
        self._check_new(order)
        slot = self.state.slot(node_id)
        free = self.state.free[slot]
        for c, name in enumerate(CLASSES):
            if order.demand[c] > free[c]:
                raise InputError(
                    f"order {order.order_id}: node {node_id} has {int(free[c])} {name} mCU free, the deal holds "
                    f"{order.demand[c]}; the chain never reserves beyond capacity, so the nodes or deals given "
                    "are stale",
                    field=f"{order.order_id}:{name}_mcu",
                )
        self._take(order, slot)

    def add_node(self, node: MarketNode) -> None:
        """A node was registered (or a removed one resumed, with this spec)."""
        slot = self.state.index.get(node.node_id)
        if slot is None:
            self.state.add(node)
        elif self.state.listed[slot]:
            raise InputError(f"node {node.node_id} is already listed; use update_node", field=f"{node.node_id}:node_id")
        else:
            self.state.replace(slot, node)
            self.state.listed[slot] = True
        self._nodes_changed()

    def update_node(self, node: MarketNode) -> None:
        """The owner changed what a node offers (capacity, price, ...); its reservations stay."""
        self.state.replace(self.state.slot(node.node_id), node)
        self._nodes_changed()

    def remove_node(self, node_id: int) -> None:
        """The node was paused or retired: it takes no new orders; running deals still release."""
        self.state.listed[self.state.slot(node_id)] = False

    def clear_batch(
        self,
        orders: Sequence[MarketOrder],
        *,
        k: int = DEFAULT_K,
        exact_limit: int = 20_000,
        time_limit_s: float = 10.0,
    ) -> MarketBatchResult:
        """Match a set of orders together, most matched first, then least total billed.

        Each order may go to its ``k`` cheapest nodes (by bill total) that pass every check now and
        still have room after the tentative claims of the orders before it (each claims its cheapest
        candidate with room), so the orders do not all name the same few cheapest nodes; when ``k``
        covers every node that passes, all of them are candidates.
        CP-SAT (per-node, per-class knapsacks) solves it exactly within those candidates when the
        model has at most ``exact_limit`` variables; larger batches get the greedy pass (each order
        in turn to its cheapest candidate with room), and ``solver`` says which was used.
        """
        started = time.perf_counter()
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}", field="k")
        ids = [o.order_id for o in orders]
        if len(set(ids)) != len(ids):
            raise InputError("order ids in a batch must be unique", field="orders")
        for order in orders:
            self._check_new(order)
        cycles = [self._cycle(order) for order in orders]
        cands: list[IntArray] = []
        costs: list[list[int]] = []
        claimed = self.state.free.copy()  # after the tentative claims of the orders before
        for cycle in cycles:
            nodes = np.flatnonzero(self._feasible(cycle))
            demand = np.array(cycle.order.demand)
            if k < nodes.size:  # diversify: only nodes the orders before have not already filled
                nodes = nodes[(claimed[nodes] >= demand).all(axis=1)]
            totals = [int(t) for t in cycle.bill(nodes)] if nodes.size else []
            best = sorted(range(len(totals)), key=lambda j: (totals[j], int(nodes[j])))[:k]
            cands.append(nodes[best] if best else nodes)
            costs.append([totals[j] for j in best])
            for n in cands[-1]:
                if (claimed[n] >= demand).all():
                    claimed[n] -= demand
                    break
        base = self._greedy(orders, cands)
        base_total = sum(costs[i][j] for i, j in base.items())
        chosen, solver, optimal = base, "greedy", False
        if sum(len(c) for c in cands) <= exact_limit:
            exact, optimal = self._solve_exact(orders, cands, costs, base, time_limit_s)
            exact_total = sum(costs[i][j] for i, j in exact.items())
            if (len(exact), -exact_total) >= (len(base), -base_total):
                chosen, solver = exact, "cp-sat"
            else:
                optimal = False
        placements = [self._reserve(cycles[i], int(cands[i][j]), 0.0) for i, j in sorted(chosen.items())]
        unplaced = []
        for i, order in enumerate(orders):
            if i in chosen:
                continue
            unplaced.append(Unplaced(order.order_id, self.explain(order).outbid(len(cands[i]))))
        return MarketBatchResult(
            placements,
            unplaced,
            sum(p.total for p in placements),
            solver,
            k,
            optimal,
            len(base),
            base_total,
            time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ bills
    def bills(
        self, order: MarketOrder, nodes: IntArray
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
        """(compute, platform, transit, total) fees of the order at node indices ``nodes``, exact."""
        prices = [self.state.prices[int(i)] for i in nodes]
        compute, platform = fee_vectors(prices, order.total_mcu, order.duration_s, self.platform_fee_bps)
        if self.transit_fee is None:
            transit: npt.NDArray[Any] = np.zeros(len(prices), dtype=compute.dtype)
        else:
            fees = [int(self.transit_fee(order, self.state.nodes[int(i)])) for i in nodes]
            for fee in fees:
                if fee < 0:
                    raise InputError(f"transit fee for order {order.order_id} is negative ({fee})", field="transit_fee")
            transit = np.array(fees, dtype=object)
        if (
            compute.dtype != object
            and transit.size
            and (int(compute.max()) + int(platform.max()) + int(transit.max()) <= INT64_SAFE)
        ):
            transit = transit.astype(np.int64)
        else:
            compute, platform, transit = (a.astype(object) for a in (compute, platform, transit))
        return compute, platform, transit, compute + platform + transit

    # ------------------------------------------------------------------ cycle
    def _check_new(self, order: MarketOrder) -> None:
        validate_market_order(order)
        if order.order_id in self.reservations:
            raise InputError(f"order {order.order_id} already holds a reservation", field=f"{order.order_id}:order_id")

    def _cycle(self, order: MarketOrder) -> MarketCycle:
        cycle = MarketCycle(self, order)
        for plugin in self._plugins:
            plugin.pre_filter(cast("Cycle", cycle))
        return cycle

    def _checks(self, cycle: MarketCycle) -> list[tuple[FilterPlugin, str, BoolArray]]:
        """Every filter's checks, in profile order, each narrowing ``cycle.passing``."""
        cycle.passing = self.state.listed.copy()
        out = []
        for plugin in self.filters:
            for check in plugin.checks(cast("Cycle", cycle)):
                if check.passes is not None:
                    out.append((plugin, check.code, check.passes))
                    cycle.passing = cycle.passing & check.passes
        return out

    def _feasible(self, cycle: MarketCycle) -> BoolArray:
        self._checks(cycle)
        return cycle.passing

    def _explain(self, cycle: MarketCycle, *, feasible: int) -> Explanation:
        n = self.state.size
        first = np.full(n, -1, dtype=np.int16)
        rejections: list[Rejection] = []
        unlisted = ~self.state.listed
        if unlisted.any():
            first[unlisted] = 0
            count = int(unlisted.sum())
            phrase = "1 node is" if count == 1 else f"{count} nodes are"
            rejections.append(Rejection("market", "unlisted", count, f"{phrase} paused or retired"))
        for plugin, code, passes in self._checks(cycle):
            newly = ~passes & (first < 0)
            count = int(newly.sum())
            if count:
                first[newly] = len(rejections)
                rejections.append(Rejection(plugin.name, code, count, plugin.sentence(code, count, cycle.order)))  # type: ignore[arg-type]
        extra: tuple[str, ...] = ()
        if feasible > 1:
            extra = (f"{feasible - 1} feasible node{'s' if feasible > 2 else ''} scored lower",)
        return Explanation(cycle.order.order_id, n, feasible, tuple(rejections), extra, self.state.node_ids, first)

    def _scores(self, cycle: MarketCycle, candidates: IntArray) -> FloatArray:
        total = np.zeros(candidates.size)
        if candidates.size == 1:
            return total
        for plugin, weight in self.scorers:
            total += weight * plugin.normalise(plugin.score(cast("Cycle", cycle), candidates))
        return total

    def _take(self, order: MarketOrder, slot: int) -> None:
        self.state.reserved[slot] += order.demand
        self.reservations[order.order_id] = (slot, order.demand)

    def _reserve(self, cycle: MarketCycle, slot: int, score: float) -> MarketPlacement:
        compute, platform, transit, total = cycle.fees_at(slot)
        self._take(cycle.order, slot)
        latency = float(cycle.latency[slot]) if cycle.latency is not None else None
        return MarketPlacement(
            cycle.order.order_id, self.state.nodes[slot].node_id, compute, platform, transit, total, latency, score
        )

    def _nodes_changed(self) -> None:
        self._route_cache.clear()
        for plugin in self._plugins:
            plugin.reset()

    # ------------------------------------------------------------------ batch solvers
    def _greedy(self, orders: Sequence[MarketOrder], cands: list[IntArray]) -> dict[int, int]:
        """Each order in turn to its cheapest candidate with room: {order: candidate position}."""
        free = self.state.free.copy()
        chosen = {}
        for i, order in enumerate(orders):
            demand = np.array(order.demand)
            for j, n in enumerate(cands[i]):
                if (free[n] >= demand).all():
                    free[n] -= demand
                    chosen[i] = j
                    break
        return chosen

    def _solve_exact(
        self,
        orders: Sequence[MarketOrder],
        cands: list[IntArray],
        costs: list[list[int]],
        hint: dict[int, int],
        time_limit_s: float,
    ) -> tuple[dict[int, int], bool]:
        model = cp_model.CpModel()
        x: dict[tuple[int, int], cp_model.IntVar] = {}
        by_node: dict[int, list[tuple[int, int]]] = {}
        for i, nodes in enumerate(cands):
            for j, n in enumerate(nodes):
                x[i, j] = model.new_bool_var(f"x{i}_{j}")
                by_node.setdefault(int(n), []).append((i, j))
            if len(nodes):
                model.add_at_most_one(x[i, j] for j in range(len(nodes)))
        free = self.state.free
        for n, members in by_node.items():
            for c in range(3):
                if sum(orders[i].demand[c] for i, _ in members) > free[n, c]:
                    model.add(sum(orders[i].demand[c] * x[i, j] for i, j in members) <= int(free[n, c]))
        for i, j in hint.items():
            model.add_hint(x[i, j], 1)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 2
        solver.parameters.max_time_in_seconds = time_limit_s
        matched = sum(x.values())
        model.maximize(matched)
        status = solver.solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return hint, False
        optimal = status == cp_model.OPTIMAL
        model.add(matched == round(solver.objective_value))
        model.clear_hints()
        for var in x.values():
            model.add_hint(var, solver.value(var))
        # Bills can be ~1e18 and more; CP-SAT needs int64 coefficients, so scale to 1e9 at most.
        top = max((max(c) for c in costs if c), default=1) or 1
        model.minimize(sum(round(costs[i][j] * 1_000_000_000 / top) * var for (i, j), var in x.items()))
        status = solver.solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return hint, False
        optimal = optimal and status == cp_model.OPTIMAL
        return {i: j for (i, j), var in x.items() if solver.value(var)}, optimal
