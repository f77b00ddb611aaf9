"""The marketplace mode's vocabulary, in the units the chain checks (contracts/Market.sol,
IMarket.Order, INodeRegistry.NodeSpec): nodes, orders, placements and batch results, the chain's
integer widths, and the validation that refuses what the chain would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from suanwang.errors import InputError
from suanwang.matching.model import Unplaced

CLASSES = ("logic", "parallel", "neural")
# Chain integer widths (IMarket.Order, INodeRegistry.NodeSpec).
UINT16, UINT32, UINT128 = 2**16 - 1, 2**32 - 1, 2**128 - 1
# mCU are uint64 on chain; the engine keeps them in int64 and caps each figure so that sums of
# reservations on a node cannot overflow.
MAX_MCU = 2**62
INT64_SAFE = 2**63 - 1
DEFAULT_K = 8

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
    # A CFN/CATS anycast service (the order's non-zero ``serviceId``, 0x-hex bytes32): the order names a
    # service, not a node, and goes to the node offering it with the least network + compute delay.
    service_id: str | None = None

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
class NodeCondition:
    """A node's live state as its provider last reported it (agents/node_metrics.py), as the matcher
    judges it: ``down`` the provider said so; ``silent`` no fresh report (see lifecycle/market_view.py);
    ``load`` the utilisation 0..1 (network/cfn.py ``utilisation``); ``services`` the CFN/CATS services
    the node offers, by service id, with their idle service time in ms; ``cpus`` the executor CPUs behind
    the node (0: not reported), which makes the engine reserve whole CPUs (MarketState.demand_at)."""

    down: bool = False
    silent: bool = False
    load: float = 0.0
    services: Mapping[str, float] = field(default_factory=dict)
    cpus: int = 0


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


def tokens(amount: int) -> str:
    """Token base units (18 decimals) as a plain amount: 2 * 10**18 -> '2 tokens'."""
    whole, fraction = divmod(amount, 10**18)
    figure = str(whole) if not fraction else f"{whole}.{fraction:018d}".rstrip("0")
    return f"{figure} token" + ("" if amount == 10**18 else "s")


# ---------------------------------------------------------------------- validation
def check_int(prefix: str, name: str, value: object, low: int, high: int) -> None:
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
        check_int(prefix, name, getattr(order, name), 0, MAX_MCU)
    if order.total_mcu == 0:
        raise InputError(f"{prefix}: asks for no compute (EmptyOrder on chain)", field=f"{order.order_id}:logic_mcu")
    check_int(prefix, "memory_mib", order.memory_mib, 0, UINT32)
    check_int(prefix, "gpu_model", order.gpu_model, 0, UINT16)
    check_int(prefix, "gpu_count", order.gpu_count, 0, UINT16)
    check_int(prefix, "min_tier", order.min_tier, 0, 3)
    check_int(prefix, "duration_s", order.duration_s, 1, UINT32)
    check_int(prefix, "max_price_per_cu_hour", order.max_price_per_cu_hour, 0, UINT128)
    check_int(prefix, "max_total", order.max_total, 0, UINT128)
    check_int(prefix, "access_point", order.access_point, 0, INT64_SAFE)
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
    if order.service_id is not None and not SERVICE_ID.match(order.service_id):
        raise InputError(
            f"{prefix}: service_id must be 0x and 64 lower-case hex digits (bytes32), got {order.service_id!r}",
            field=f"{order.order_id}:service_id",
        )


SERVICE_ID = re.compile(r"^0x[0-9a-f]{64}$")


def validate_market_node(node: MarketNode) -> None:
    """Raise InputError naming ``<node id>:<field>`` for what the registry would refuse or the engine cannot hold."""
    prefix = f"node {node.node_id}"
    check_int(prefix, "node_id", node.node_id, 1, INT64_SAFE)
    for name in ("logic_mcu", "parallel_mcu", "neural_mcu"):
        check_int(prefix, name, getattr(node, name), 0, MAX_MCU)
    if not any(node.capacity):
        raise InputError(
            f"{prefix}: offers no compute in any class (ZeroCapacity on chain)", field=f"{node.node_id}:logic_mcu"
        )
    check_int(prefix, "memory_mib", node.memory_mib, 0, UINT32)
    check_int(prefix, "gpu_model", node.gpu_model, 0, UINT16)
    check_int(prefix, "gpu_count", node.gpu_count, 0, UINT16)
    if (node.gpu_model == 0) != (node.gpu_count == 0):
        raise InputError(
            f"{prefix}: GPU model {node.gpu_model} and count {node.gpu_count} disagree (InvalidGpu)",
            field=f"{node.node_id}:gpu_count",
        )
    check_int(prefix, "tier", node.tier, 0, 3)
    check_int(prefix, "price_per_cu_hour", node.price_per_cu_hour, 0, UINT128)
    check_int(prefix, "router", node.router, 0, INT64_SAFE)
    if not 0.0 <= node.reliability <= 1.0:
        raise InputError(
            f"{prefix}: reliability must be in 0..1, got {node.reliability}", field=f"{node.node_id}:reliability"
        )
