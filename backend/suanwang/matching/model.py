"""Plain data the matching engine takes and returns: nodes, orders, placements, explanations.

Units follow the shared data model (docs/CONVENTIONS.md): CPU in milli-cores, memory in MiB,
GPU shares in milli-GPU (1000 = one whole GPU), GPU models as catalog codes (0 = none), money
in token base units (integers), prices per CU-hour, time in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from suanwang.compute.catalog import Catalog
from suanwang.compute.units import GPU_MILLI_PER_GPU, Tier
from suanwang.errors import InputError

MAX_CPU_MILLI = 4_096_000
MAX_MEMORY_MIB = 64 * 1024 * 1024
MAX_GPUS_PER_NODE = 64


class NetworkCost(Protocol):
    """Routing between buyers' access points and the routers nodes attach to.

    Both methods take one access point and an array of router indices (as the network
    module numbers them) and return one value per router: latency in milliseconds
    (``inf`` when unreachable) and bottleneck bandwidth in Gbps (0 when unreachable).
    The engine caches the answers per access point, so they must not change while an
    engine is alive (build a new engine, or call ``Engine.network_changed()``).
    """

    def latency_ms(self, access_point: int, routers: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]: ...

    def bandwidth_gbps(self, access_point: int, routers: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]: ...


@dataclass(frozen=True, slots=True)
class Node:
    """A machine offered for rent.

    ``cpu_model`` 0 means the catalog's reference CPU (``openb_cpu``). ``tier`` None means
    "grade it from the catalog figures". ``router`` is the index of the router it attaches to
    (None: not attached; it then fails every order that states a latency or bandwidth SLA).
    """

    id: str
    cpu_milli: int
    memory_mib: int
    gpu_count: int = 0
    gpu_model: int = 0
    owner: str = "operator"
    router: int | None = None
    price_per_cu_hour: int = 0
    reliability: float = 1.0
    cpu_model: int = 0
    tier: Tier | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """A buyer's request: resources, constraints and SLA.

    ``gpu_milli`` is the share of each GPU (1..1000) and only counts when ``num_gpu`` >= 1; a
    multi-GPU order takes whole GPUs. ``gpu_models`` lists acceptable catalog codes (empty: any).
    ``max_price_per_hour`` caps the order's cost rate in token base units per hour (None: no cap).
    """

    id: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int = 0
    gpu_milli: int = GPU_MILLI_PER_GPU
    gpu_models: tuple[int, ...] = ()
    min_tier: Tier = Tier.SMALL
    max_price_per_hour: int | None = None
    access_point: int | None = None
    max_latency_ms: float | None = None
    min_bandwidth_gbps: float | None = None
    duration_s: int = 3600
    buyer: str = ""

    @property
    def gpu_share(self) -> int:
        """milli-GPU per GPU actually taken (0 for a CPU-only order)."""
        return self.gpu_milli if self.num_gpu else 0

    @property
    def gpu_demand_milli(self) -> int:
        return self.num_gpu * self.gpu_share


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an order runs. ``gpu_indices`` are the GPUs on the node, each giving ``gpu_milli``."""

    order_id: str
    node_id: str
    node_index: int
    cpu_milli: int
    memory_mib: int
    gpu_indices: tuple[int, ...]
    gpu_milli: int
    cost_per_hour: int
    latency_ms: float | None
    score: float


@dataclass(frozen=True, slots=True)
class Rejection:
    """How many nodes one check turned away, and why, in a plain sentence."""

    plugin: str
    code: str
    count: int
    sentence: str


@dataclass(frozen=True)
class Explanation:
    """Why an order went where it did, or nowhere.

    Each node that was turned away is counted once, under the first check (in profile
    order) that rejected it, so the counts add up to the nodes that were not feasible.
    """

    order_id: str
    nodes_total: int
    feasible: int
    rejections: tuple[Rejection, ...]
    extra: tuple[str, ...] = ()
    node_ids: Sequence[str] | Sequence[int] = field(default=(), repr=False)
    first_rejection: npt.NDArray[np.int16] | None = field(default=None, repr=False)

    def outbid(self, candidates: int) -> Explanation:
        """This explanation plus the batch-clearing reason: its feasible nodes went to other orders."""
        if not candidates:
            return self
        note = f"its {candidates} cheapest feasible nodes went to other orders in this clearing"
        return replace(self, extra=(*self.extra, note))

    @property
    def sentences(self) -> list[str]:
        return [r.sentence for r in self.rejections if r.count] + list(self.extra)

    @property
    def text(self) -> str:
        if not self.sentences:
            return f"all {self.nodes_total} nodes can serve this order"
        return "; ".join(self.sentences) + "."

    def reason_for(self, node_id: str | int) -> str:
        """Why this node was not chosen (or that it was feasible)."""
        if self.first_rejection is None:
            raise ValueError("this explanation carries no per-node detail")
        try:
            index = list(self.node_ids).index(node_id)
        except ValueError:
            raise InputError(f"no node {node_id!r} in this cluster", field="node_id") from None
        code = int(self.first_rejection[index])
        if code < 0:
            return "feasible; another node scored higher" if self.feasible else "feasible"
        rejection = self.rejections[code]
        return f"rejected by {rejection.plugin} ({rejection.code})"


@dataclass(frozen=True, slots=True)
class Unplaced:
    order_id: str
    explanation: Explanation


@dataclass(frozen=True, slots=True)
class StagePolicy:
    """Who may serve in each rollout stage (PRODUCT.md): 1 the operator's own nodes; 2 the
    operator plus one cloud; 3 every admitted seller (``admitted`` None: every registered node)."""

    stage: int = 3
    operator: str = "operator"
    cloud: str | None = None
    admitted: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.stage not in (1, 2, 3):
            raise InputError(f"stage must be 1, 2 or 3, got {self.stage}", field="stage")
        if self.stage == 2 and not self.cloud:
            raise InputError("stage 2 needs the one admitted cloud", field="cloud")

    def allows(self, owner: str) -> bool:
        if self.stage == 1:
            return owner == self.operator
        if self.stage == 2:
            return owner in (self.operator, self.cloud)
        return self.admitted is None or owner in self.admitted or owner == self.operator

    def describe(self) -> str:
        if self.stage == 1:
            return f"in stage 1 only {self.operator}'s own nodes serve"
        if self.stage == 2:
            return f"in stage 2 only {self.operator} and {self.cloud} serve"
        return "in stage 3 only admitted sellers serve"


def validate_order(order: Order, catalog: Catalog) -> None:
    """Raise InputError/NotFoundError naming the field if the order is malformed or absurd."""

    def bad(name: str, message: str) -> InputError:
        return InputError(f"order {order.id}: {message}", field=f"{order.id}:{name}")

    if not 0 <= order.cpu_milli <= MAX_CPU_MILLI:
        raise bad("cpu_milli", f"cpu_milli must be in 0..{MAX_CPU_MILLI}, got {order.cpu_milli}")
    if not 0 <= order.memory_mib <= MAX_MEMORY_MIB:
        raise bad("memory_mib", f"memory_mib must be in 0..{MAX_MEMORY_MIB}, got {order.memory_mib}")
    if not 0 <= order.num_gpu <= MAX_GPUS_PER_NODE:
        raise bad("num_gpu", f"num_gpu must be in 0..{MAX_GPUS_PER_NODE}, got {order.num_gpu}")
    if order.num_gpu:
        if not 1 <= order.gpu_milli <= GPU_MILLI_PER_GPU:
            raise bad("gpu_milli", f"gpu_milli must be in 1..1000, got {order.gpu_milli}")
        if order.num_gpu > 1 and order.gpu_milli != GPU_MILLI_PER_GPU:
            raise bad("gpu_milli", f"a {order.num_gpu}-GPU order takes whole GPUs (1000), got {order.gpu_milli}")
    if order.cpu_milli == 0 and order.num_gpu == 0 and order.memory_mib == 0:
        raise bad("cpu_milli", "the order asks for nothing (no CPU, memory or GPU)")
    for code in order.gpu_models:
        if code == 0:
            raise bad("gpu_models", "GPU model code 0 means none and cannot be required")
        catalog.by_code(code)  # NotFoundError naming the known codes
    if order.max_price_per_hour is not None and order.max_price_per_hour < 0:
        raise bad("max_price_per_hour", f"must be non-negative, got {order.max_price_per_hour}")
    if order.max_latency_ms is not None and not order.max_latency_ms > 0:
        raise bad("max_latency_ms", f"must be positive, got {order.max_latency_ms}")
    if order.min_bandwidth_gbps is not None and order.min_bandwidth_gbps < 0:
        raise bad("min_bandwidth_gbps", f"must be non-negative, got {order.min_bandwidth_gbps}")
    if (order.max_latency_ms is not None or order.min_bandwidth_gbps is not None) and order.access_point is None:
        raise bad("access_point", "a latency or bandwidth SLA needs the buyer's access point")
    if order.duration_s <= 0:
        raise bad("duration_s", f"must be positive, got {order.duration_s}")
    if int(order.min_tier) not in range(4):
        raise bad("min_tier", f"must be 0..3, got {order.min_tier}")


def validate_node(node: Node, catalog: Catalog) -> None:
    def bad(name: str, message: str) -> InputError:
        return InputError(f"node {node.id}: {message}", field=f"{node.id}:{name}")

    if not 0 < node.cpu_milli <= MAX_CPU_MILLI:
        raise bad("cpu_milli", f"cpu_milli must be in 1..{MAX_CPU_MILLI}, got {node.cpu_milli}")
    if not 0 < node.memory_mib <= MAX_MEMORY_MIB:
        raise bad("memory_mib", f"memory_mib must be in 1..{MAX_MEMORY_MIB}, got {node.memory_mib}")
    if not 0 <= node.gpu_count <= MAX_GPUS_PER_NODE:
        raise bad("gpu_count", f"gpu_count must be in 0..{MAX_GPUS_PER_NODE}, got {node.gpu_count}")
    if node.gpu_count and not catalog.by_code(node.gpu_model).is_accelerator:
        raise bad("gpu_model", f"{catalog.by_code(node.gpu_model).name} is not an accelerator")
    if node.gpu_count == 0 and node.gpu_model:
        raise bad("gpu_model", "a node without GPUs must have gpu_model 0")
    if node.price_per_cu_hour < 0:
        raise bad("price_per_cu_hour", f"must be non-negative, got {node.price_per_cu_hour}")
    if not 0.0 <= node.reliability <= 1.0:
        raise bad("reliability", f"must be in 0..1, got {node.reliability}")
    if node.cpu_model and catalog.by_code(node.cpu_model).kind != "cpu":
        raise bad("cpu_model", f"{catalog.by_code(node.cpu_model).name} is not a CPU")
