"""The market's per-node arrays and per-order cycle: what every filter and score reads, index-aligned
with the nodes, and the bill computed once per order over the nodes that pass (``fee_vectors``, the
vectorised form of :mod:`suanwang.fees`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from suanwang.errors import InputError, NotFoundError
from suanwang.fees import BPS, MCU_SECONDS_PER_CU_HOUR, compute_fee, platform_fee
from suanwang.matching.market_model import (
    CLASSES,
    INT64_SAFE,
    MarketNode,
    MarketOrder,
    NodeCondition,
    validate_market_node,
)

if TYPE_CHECKING:
    from suanwang.matching.cluster import BoolArray, FloatArray, IntArray
    from suanwang.matching.market import MarketEngine


def fee_vectors(
    prices: list[int], total_mcu: int, duration_s: int, fee_bps: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(compute fees, platform fees) for many prices, exactly as :func:`suanwang.fees.compute_fee` and
    :func:`suanwang.fees.platform_fee` (Splits.computeFee, Splits.platformFee): int64 arrays when no
    intermediate product can overflow, else arrays of Python integers (object dtype), which are exact
    at any size."""
    scale = total_mcu * duration_s
    # Every product below fits in int64 (the scale too: free nodes, price 0, still multiply by it).
    if prices and max(max(prices), 1) * scale * max(fee_bps, 1) <= INT64_SAFE:
        compute = np.array(prices, dtype=np.int64) * scale // MCU_SECONDS_PER_CU_HOUR
        return compute, compute * fee_bps // BPS
    exact = [compute_fee(p, total_mcu, duration_s) for p in prices]
    return np.array(exact, dtype=object), np.array([platform_fee(c, fee_bps) for c in exact], dtype=object)


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
        self.conditions: list[NodeCondition] = []
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
        self.conditions.append(NodeCondition())
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

    def set_conditions(self, conditions: Mapping[int, NodeCondition]) -> bool:
        """Each node's live state (a node not named: up, no services); whether anything changed."""
        new = [conditions.get(n.node_id, NodeCondition()) for n in self.nodes]
        if new == self.conditions:
            return False
        self.conditions = new
        self._derive_conditions()
        return True

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
        self._derive_conditions()

    def demand_at(self, demand: Sequence[int], slots: IntArray) -> IntArray:
        """What an order of mCU ``demand`` takes from each node in ``slots``: (len(slots), 3).

        A provider runs a job on whole CPUs, the bought share of the node rounded up (lifecycle/resources.py:
        CPUs = ceil(logic mCU x the node's CPUs / its logic mCU)), so where the node's provider reports its
        CPUs the engine reserves the logic mCU of those whole CPUs; elsewhere, and for an order larger than
        the node (refused either way), the mCU bought."""
        out = np.tile(np.asarray(demand, dtype=np.int64), (len(slots), 1))
        if not self.cpus.any() or not demand[0]:
            return out
        cpus, capacity = self.cpus[slots], self.capacity[slots, 0]
        known = (cpus > 0) & (capacity >= demand[0])
        if known.any():
            c, n = cpus[known], capacity[known]
            job_cpus = np.minimum(-(-demand[0] * c // n), c)
            out[known, 0] = np.minimum(-(-job_cpus * n // c), n)
        return out

    def _derive_conditions(self) -> None:
        self.cpus = np.array([c.cpus for c in self.conditions], dtype=np.int64)
        self.down = np.array([c.down for c in self.conditions], dtype=bool)
        self.silent = np.array([c.silent for c in self.conditions], dtype=bool)
        self.load = np.array([c.load for c in self.conditions], dtype=float)


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
        "service_delay",
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
        # For a service-ID order: each node's round trip plus compute delay (inf where the service is not
        # offered); the engine then takes the least of it (matching/market_plugins.py, ``service``).
        self.service_delay: FloatArray | None = None
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
