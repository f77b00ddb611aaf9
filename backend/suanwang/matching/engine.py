"""The online engine: one order at a time, vectorised over nodes, state kept incrementally."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from suanwang.compute.catalog import Catalog, default_catalog
from suanwang.compute.units import GPU_MILLI_PER_GPU
from suanwang.errors import InputError, NotFoundError, SuanwangError
from suanwang.matching.cluster import BoolArray, ClusterState, FloatArray, IntArray
from suanwang.matching.framework import (
    REGISTRY,
    Binder,
    FilterPlugin,
    Profile,
    ReservePlugin,
    ScorePlugin,
    profile_named,
)
from suanwang.matching.model import (
    Explanation,
    NetworkCost,
    Node,
    Order,
    Placement,
    Rejection,
    StagePolicy,
    Unplaced,
    validate_order,
)

if TYPE_CHECKING:
    from suanwang.matching.batch import BatchResult
    from suanwang.matching.fgd import Workload


class Cycle:
    """What one placement cycle knows about its order; plugins add cached vectors to it."""

    __slots__ = (
        "bandwidth",
        "cpu",
        "engine",
        "latency",
        "max_latency_ms",
        "mem",
        "min_bandwidth_gbps",
        "num_gpu",
        "order",
        "rate",
        "share",
    )

    def __init__(self, engine: Engine, order: Order) -> None:
        self.engine = engine
        self.order = order
        self.cpu = order.cpu_milli
        self.mem = order.memory_mib
        self.num_gpu = order.num_gpu
        self.share = order.gpu_share
        self.rate: FloatArray | None = None
        self.latency: FloatArray | None = None
        self.bandwidth: FloatArray | None = None
        # The SLA the network filter checks (None: no limit); the market cycle reads it from chain zeros.
        self.max_latency_ms = order.max_latency_ms
        self.min_bandwidth_gbps = order.min_bandwidth_gbps

    def cost_rate(self) -> FloatArray:
        """Cost per hour of this order on every node (token base units, as float)."""
        if self.rate is None:
            self.rate = self.engine.cost_rates(self.order)
        return self.rate


class Engine:
    """Places orders on nodes with a named profile; explains every rejection.

    >>> engine = Engine(nodes, profile="default", network=my_network)   # doctest: +SKIP
    >>> result = engine.place(order)        # Placement, or Unplaced(explanation)
    >>> engine.release(result)              # when the job ends
    >>> engine.clear_batch(orders)          # a set of orders cleared together
    """

    def __init__(
        self,
        nodes: Sequence[Node],
        *,
        profile: str | Profile = "default",
        network: NetworkCost | None = None,
        stage: StagePolicy | None = None,
        workload: Workload | None = None,
        catalog: Catalog | None = None,
        bind: Binder | None = None,
        seed: int = 0,
    ) -> None:
        self.catalog = catalog or default_catalog()
        self.cluster = ClusterState(nodes, self.catalog)
        self.profile = profile_named(profile) if isinstance(profile, str) else profile
        self.network = network
        self.stage = stage or StagePolicy()
        self.workload = workload
        self.bind = bind
        self.rng = np.random.default_rng(seed)
        self.placements: dict[str, Placement] = {}
        self._index = {node_id: i for i, node_id in enumerate(self.cluster.node_ids)}
        self._rate_cache: dict[tuple[int, int], FloatArray] = {}
        self._route_cache: dict[int, tuple[FloatArray, FloatArray]] = {}
        plugins: dict[str, object] = {}
        for name in (*self.profile.filters, *(n for n, _ in self.profile.scores)):
            if "resources" not in REGISTRY[name].serves:
                raise InputError(
                    f"profile {self.profile.name!r}: plugin {name!r} serves only the market engine",
                    field=f"profiles:{self.profile.name}:{name}",
                )
            if name not in plugins:
                plugins[name] = REGISTRY[name](self, self.profile.args.get(name, {}))
        self.plugins = plugins
        self.filters = [p for n in self.profile.filters if isinstance(p := plugins[n], FilterPlugin)]
        self.scorers = [(p, weight) for n, weight in self.profile.scores if isinstance(p := plugins[n], ScorePlugin)]
        self.reservers = [p for p in plugins.values() if isinstance(p, ReservePlugin)]
        self._all_plugins = list(plugins.values())
        # The first score of the highest weight chooses the GPUs, if it is one that does.
        top = max(self.scorers, key=lambda pw: pw[1], default=None)
        self._gpu_chooser = top[0] if top is not None and top[0].selects_gpus else None
        # Ties go to the smallest node id (the artifact's scheduler), whatever order the nodes came in.
        self._id_rank = np.empty(self.cluster.size, dtype=np.int64)
        self._id_rank[np.argsort(np.array(self.cluster.node_ids))] = np.arange(self.cluster.size)

    # ------------------------------------------------------------------ public API
    @property
    def nodes(self) -> list[Node]:
        return self.cluster.nodes

    def node_index(self, node_id: str) -> int:
        try:
            return self._index[node_id]
        except KeyError:
            raise NotFoundError(f"no node {node_id!r} in this cluster", field="node_id") from None

    def place(self, order: Order) -> Placement | Unplaced:
        """Place one order on the best feasible node now, or say why none can take it."""
        if order.id in self.placements:
            raise InputError(f"order {order.id} is already placed", field=f"{order.id}:id")
        cycle = self._cycle(order)
        candidates = np.flatnonzero(self._feasible(cycle))
        if candidates.size == 0:
            return Unplaced(order.id, self._explain(cycle, feasible=0))
        total = self._scores(cycle, candidates)
        top = candidates[total == total.max()]
        best = int(top[int(np.argmin(self._id_rank[top]))]) if top.size > 1 else int(top[0])
        placement = self._reserve(cycle, best, float(total.max()))
        if placement is None:  # cannot happen: the filters checked fit; kept as a guard
            raise InputError(f"node {self.cluster.node_ids[best]} lost its room mid-cycle", field="placement")
        return self._bind(cycle, placement)

    def commit(self, order: Order, node_index: int, gpus: tuple[int, ...]) -> Placement:
        """Reserve a placement chosen elsewhere (batch clearing) on these GPUs of this node.

        The caller has applied the filters; the node's room is checked again here, and an
        InputError is raised if the resources are not free.
        """
        if order.id in self.placements:
            raise InputError(f"order {order.id} is already placed", field=f"{order.id}:id")
        if len(gpus) != order.num_gpu or len(set(gpus)) != len(gpus):
            raise InputError(f"order {order.id} needs {order.num_gpu} distinct GPUs, got {gpus}", field="gpus")
        cycle = Cycle(self, order)
        if order.access_point is not None:
            cycle.latency, cycle.bandwidth = self.routes(order.access_point)
        placement = self._reserve(cycle, node_index, 0.0, gpus)
        assert placement is not None
        return placement

    def release(self, placement: Placement) -> None:
        """Give a placement's resources back (the job ended or was cancelled)."""
        if self.placements.get(placement.order_id) != placement:
            raise NotFoundError(f"order {placement.order_id} holds no placement here", field="order_id")
        self._unreserve(placement)

    def feasible(self, order: Order) -> IntArray:
        """Indices of the nodes every filter accepts for this order now."""
        return np.flatnonzero(self._feasible(self._cycle(order)))

    def explain(self, order: Order) -> Explanation:
        """Why each node would or would not take this order now (nothing is placed)."""
        cycle = self._cycle(order)
        return self._explain(cycle, feasible=int(self._feasible(cycle).sum()))

    def clear_batch(self, orders: Sequence[Order], **options: object) -> BatchResult:
        """Clear a set of orders together; see :func:`suanwang.matching.batch.clear_batch`."""
        from suanwang.matching.batch import clear_batch

        return clear_batch(self, orders, **options)  # type: ignore[arg-type]

    def routes(self, access_point: int) -> tuple[FloatArray, FloatArray]:
        """(latency ms, bandwidth Gbps) from an access point to every node; cached per access point.

        Nodes not attached to a router, or with no routing function configured, are unreachable
        (infinite latency, no bandwidth).
        """
        cached = self._route_cache.get(access_point)
        if cached is None:
            c = self.cluster
            latency = np.full(c.size, np.inf)
            bandwidth = np.zeros(c.size)
            attached = np.flatnonzero(c.router >= 0)
            if self.network is not None and attached.size:
                latency[attached] = np.asarray(self.network.latency_ms(access_point, c.router[attached]), dtype=float)
                bandwidth[attached] = np.asarray(
                    self.network.bandwidth_gbps(access_point, c.router[attached]), dtype=float
                )
            cached = self._route_cache[access_point] = (latency, bandwidth)
        return cached

    def network_changed(self) -> None:
        """Drop cached routing answers (call after the network's costs change)."""
        self._route_cache.clear()
        for plugin in self._all_plugins:
            plugin.reset()  # type: ignore[attr-defined]

    def set_workload(self, workload: Workload) -> None:
        """Give fragmentation-aware scoring a new target workload."""
        self.workload = workload
        for plugin in self._all_plugins:
            plugin.reset()  # type: ignore[attr-defined]

    def cost_rates(self, order: Order) -> FloatArray:
        """Cost per hour of the order on every node: price per CU-hour x the CU the order takes."""
        key = (order.gpu_demand_milli, order.cpu_milli)
        rate = self._rate_cache.get(key)
        if rate is None:
            c = self.cluster
            cu = (order.gpu_demand_milli / GPU_MILLI_PER_GPU) * c.gpu_cu_per_gpu + (
                order.cpu_milli / 1000.0
            ) * c.cpu_cu_per_core
            rate = c.price * cu
            self._rate_cache[key] = rate
        return rate

    def order_cost(self, order: Order, node_index: int) -> int:
        """Exact bill for the whole order on a node, in token base units (integer)."""
        rate = round(float(self.cost_rates(order)[node_index]))
        return rate * order.duration_s // 3600

    # ------------------------------------------------------------------ cycle
    def _cycle(self, order: Order) -> Cycle:
        validate_order(order, self.catalog)
        cycle = Cycle(self, order)
        for plugin in self._all_plugins:
            plugin.pre_filter(cycle)  # type: ignore[attr-defined]
        return cycle

    def _feasible(self, cycle: Cycle) -> BoolArray:
        mask = np.ones(self.cluster.size, dtype=bool)
        for plugin in self.filters:
            for check in plugin.checks(cycle):
                if check.passes is not None:
                    mask &= check.passes
        return mask

    def _scores(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        total = np.zeros(candidates.size)
        if candidates.size == 1:
            return total
        for plugin, weight in self.scorers:
            total += weight * plugin.normalise(plugin.score(cycle, candidates))
        return total

    def _explain(self, cycle: Cycle, *, feasible: int) -> Explanation:
        n = self.cluster.size
        first = np.full(n, -1, dtype=np.int16)
        rejections: list[Rejection] = []
        for plugin in self.filters:
            for check in plugin.checks(cycle):
                if check.passes is None:
                    continue
                newly = (~check.passes) & (first < 0)
                count = int(newly.sum())
                if count:
                    first[newly] = len(rejections)
                    rejections.append(
                        Rejection(plugin.name, check.code, count, plugin.sentence(check.code, count, cycle.order))
                    )
        extra: tuple[str, ...] = ()
        if feasible > 1:
            extra = (f"{feasible - 1} feasible node{'s' if feasible > 2 else ''} scored lower",)
        return Explanation(cycle.order.id, n, feasible, tuple(rejections), extra, self.cluster.node_ids, first)

    def _reserve(self, cycle: Cycle, index: int, score: float, gpus: tuple[int, ...] | None = None) -> Placement | None:
        c = self.cluster
        if gpus is None:
            if self._gpu_chooser is not None:
                gpus = self._gpu_chooser.choose_gpus(cycle, index)
            else:
                gpus = c.choose_gpus(index, cycle.num_gpu, cycle.share)
        if gpus is None:
            return None
        order = cycle.order
        latency = None
        if cycle.latency is not None:
            latency = float(cycle.latency[index])
        placement = Placement(
            order_id=order.id,
            node_id=c.node_ids[index],
            node_index=index,
            cpu_milli=order.cpu_milli,
            memory_mib=order.memory_mib,
            gpu_indices=gpus,
            gpu_milli=cycle.share,
            cost_per_hour=round(float(cycle.cost_rate()[index])),
            latency_ms=latency,
            score=score,
        )
        c.take(index, order.cpu_milli, order.memory_mib, gpus, cycle.share)
        self.placements[order.id] = placement
        for plugin in self.reservers:
            plugin.reserve(placement)
        return placement

    def _unreserve(self, placement: Placement) -> None:
        self.cluster.give_back(
            placement.node_index, placement.cpu_milli, placement.memory_mib, placement.gpu_indices, placement.gpu_milli
        )
        del self.placements[placement.order_id]
        for plugin in self.reservers:
            plugin.unreserve(placement)

    def _bind(self, cycle: Cycle, placement: Placement) -> Placement | Unplaced:
        if self.bind is None:
            return placement
        try:
            self.bind(placement)
        except SuanwangError as error:
            self._unreserve(placement)
            explanation = self._explain(cycle, feasible=int(self._feasible(cycle).sum()))
            extra = (*explanation.extra, f"binding to {placement.node_id} failed: {error.message}")
            return Unplaced(
                cycle.order.id,
                Explanation(
                    explanation.order_id,
                    explanation.nodes_total,
                    explanation.feasible,
                    explanation.rejections,
                    extra,
                    explanation.node_ids,
                    explanation.first_rejection,
                ),
            )
        return placement

    def place_all(self, orders: Iterable[Order]) -> list[Placement | Unplaced]:
        return [self.place(order) for order in orders]
