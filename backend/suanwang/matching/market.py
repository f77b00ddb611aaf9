"""The marketplace mode: matching in the units the chain checks (contracts/Market.sol).

On chain a node offers milli-compute-units (mCU) per class (logic, parallel, neural); a match
*reserves* the order's mCU of each class on the node (released when the deal ends), while
memory, GPU model and count and tier are *checks* only (node value >= order value; the model
equal unless the order's is 0 = any). The market also checks the node's price against the
order's ``maxPricePerCuHour`` and the whole bill against ``maxTotal``, with integer arithmetic
(contracts/libraries/Splits.sol, mirrored once in :mod:`suanwang.fees`)::

    computeFee  = price * (logic + parallel + neural mCU) * duration // 3_600_000
    platformFee = computeFee * feeBps // 10_000
    total       = computeFee + platformFee + sum(transit fees)

:class:`MarketEngine` places orders one at a time (``place``) or together (``clear_batch``)
through the same framework as :class:`~suanwang.matching.engine.Engine`: the ``market``
profile's filters (``stage``, ``node_fit``, ``mcu_capacity``, ``market_price``, ``network``,
``bill``; plugins in ``market_plugins``) and weighted scores. Every placement it returns passes
every check ``Market._match`` makes, so the chain accepts it unless the chain's state moved
(another matcher reserved the capacity first).

The engine's vocabulary and validation are in ``market_model``, its per-node arrays and per-order
cycle in ``market_state``, the batch solvers in ``market_batch``; every name stays importable here.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from suanwang.errors import InputError, NotFoundError
from suanwang.fees import BPS, MCU_SECONDS_PER_CU_HOUR, compute_fee, platform_fee
from suanwang.matching.framework import REGISTRY, FilterPlugin, Profile, ScorePlugin, profile_named
from suanwang.matching.market_batch import choose
from suanwang.matching.market_model import (
    CLASSES,
    DEFAULT_K,
    INT64_SAFE,
    MAX_MCU,
    UINT16,
    UINT32,
    UINT128,
    MarketBatchResult,
    MarketNode,
    MarketOrder,
    MarketPlacement,
    NodeCondition,
    TransitFee,
    check_int,
    tokens,
    validate_market_node,
    validate_market_order,
)
from suanwang.matching.market_state import MarketCycle, MarketState, fee_vectors
from suanwang.matching.model import Explanation, NetworkCost, Rejection, StagePolicy, Unplaced

if TYPE_CHECKING:
    from suanwang.matching.cluster import BoolArray, FloatArray, IntArray
    from suanwang.matching.engine import Cycle, Engine

# The engine's vocabulary, arrays and fee arithmetic live in market_model, market_state and
# suanwang.fees; these names stay importable from here.
__all__ = [
    "BPS",
    "CLASSES",
    "DEFAULT_K",
    "INT64_SAFE",
    "MAX_MCU",
    "MCU_SECONDS_PER_CU_HOUR",
    "UINT16",
    "UINT32",
    "UINT128",
    "MarketBatchResult",
    "MarketCycle",
    "MarketEngine",
    "MarketNode",
    "MarketOrder",
    "MarketPlacement",
    "MarketState",
    "NodeCondition",
    "TransitFee",
    "Unplaced",
    "compute_fee",
    "fee_vectors",
    "platform_fee",
    "tokens",
    "validate_market_node",
    "validate_market_order",
]


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
        check_int("market", "platform_fee_bps", platform_fee_bps, 0, BPS)
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
    def place(self, order: MarketOrder, *, exclude: Collection[int] = ()) -> MarketPlacement | Unplaced:
        """Match one order on the best node that passes every check now and reserve its mCU there,
        or say why no node can take it.

        ``exclude`` names nodes (by id) not to choose: a caller whose chosen node's final bill came out
        above the buyer's limit asks again for the best of the others.
        """
        self._check_new(order)
        cycle = self._cycle(order)
        excluded = self._excluded(exclude)
        candidates = np.flatnonzero(self._feasible(cycle) & ~excluded)
        if candidates.size == 0:
            return Unplaced(order.order_id, self._explain(cycle, feasible=0, excluded=excluded))
        total = self._scores(cycle, candidates)
        if cycle.service_delay is not None:
            # A CATS service order goes to the instance with the least network + compute delay (the
            # ingress's choice in draft-ietf-cats-framework); the profile's scores only break ties.
            delay = cycle.service_delay[candidates]
            total = np.where(delay == delay.min(), total, -np.inf)
        best_at = int(np.argmax(total))
        return self._reserve(cycle, int(candidates[best_at]), float(total[best_at]))

    def explain(self, order: MarketOrder) -> Explanation:
        """Why each node would or would not take this order now (nothing is reserved)."""
        validate_market_order(order)
        cycle = self._cycle(order)
        return self._explain(cycle, feasible=int(self._feasible(cycle).sum()))

    def feasible(self, order: MarketOrder, *, exclude: Collection[int] = ()) -> list[int]:
        """Ids of the nodes that pass every check for this order now, but those in ``exclude``."""
        validate_market_order(order)
        passing = self._feasible(self._cycle(order)) & ~self._excluded(exclude)
        return [self.state.nodes[i].node_id for i in np.flatnonzero(passing)]

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

    def set_conditions(self, conditions: dict[int, NodeCondition]) -> None:
        """The nodes' live state from their providers' reports (a node not named: up, no services)."""
        if self.state.set_conditions(conditions):
            for plugin in self._plugins:
                plugin.reset()

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
        demands: list[IntArray] = []  # per order, what it takes from each of its candidates
        costs: list[list[int]] = []
        claimed = self.state.free.copy()  # after the tentative claims of the orders before
        for cycle in cycles:
            nodes = np.flatnonzero(self._feasible(cycle))
            if cycle.service_delay is not None and nodes.size:  # a service order: only its nearest instances
                delay = cycle.service_delay[nodes]
                nodes = nodes[delay == delay.min()]
            if k < nodes.size:  # diversify: only nodes the orders before have not already filled
                nodes = nodes[(claimed[nodes] >= self.state.demand_at(cycle.order.demand, nodes)).all(axis=1)]
            totals = [int(t) for t in cycle.bill(nodes)] if nodes.size else []
            best = sorted(range(len(totals)), key=lambda j: (totals[j], int(nodes[j])))[:k]
            cands.append(nodes[best] if best else nodes)
            costs.append([totals[j] for j in best])
            demands.append(self.state.demand_at(cycle.order.demand, cands[-1]))
            for n, demand in zip(cands[-1], demands[-1], strict=True):
                if (claimed[n] >= demand).all():
                    claimed[n] -= demand
                    break
        choice = choose(self.state.free, demands, cands, costs, exact_limit=exact_limit, time_limit_s=time_limit_s)
        chosen = choice.chosen
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
            choice.solver,
            k,
            choice.optimal,
            len(choice.greedy),
            choice.greedy_total,
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

    def _excluded(self, node_ids: Collection[int]) -> BoolArray:
        """The mask of the nodes named in ``node_ids`` (each must be known here)."""
        mask: BoolArray = np.zeros(self.state.size, dtype=bool)
        for node_id in node_ids:
            mask[self.state.slot(node_id)] = True
        return mask

    def _explain(self, cycle: MarketCycle, *, feasible: int, excluded: BoolArray | None = None) -> Explanation:
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
        if excluded is not None and (newly := excluded & (first < 0)).any():
            # Counted last: a node that fails a check is turned away by that check, not by the caller.
            first[newly] = len(rejections)
            count = int(newly.sum())
            phrase = "1 node was" if count == 1 else f"{count} nodes were"
            rejections.append(Rejection("market", "excluded", count, f"{phrase} excluded by the caller"))
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
        taken = self.state.demand_at(order.demand, np.array([slot]))[0]
        # A deal rebuilt after a restart holds what the chain reserved; the whole CPUs on top only as
        # far as the node has them free (nodes matched before their provider reported may be full).
        taken = np.minimum(taken, np.maximum(self.state.free[slot], order.demand))
        self.state.reserved[slot] += taken
        self.reservations[order.order_id] = (slot, (int(taken[0]), int(taken[1]), int(taken[2])))

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
