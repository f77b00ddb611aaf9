"""The network model's vocabulary: operators and peerings as given, routers and links as numbered,
and the priced path the matcher receives (transit fee unit: see ``suanwang.network.model``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from eth_hash.auto import keccak

from suanwang.network.srv6 import Locator
from suanwang.network.topology import Topology

BANDWIDTH_EPSILON_GBPS = 1e-9
LATENCY_EPSILON_MS = 1e-9


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


@dataclass(slots=True)
class CheapestResult:
    """A cheapest path under a latency bound; ``lower_bound`` is a proven bound on the optimum's cost."""

    path: Path
    cost_per_gbps_hour: int
    lower_bound: float
    exact: bool
    labels_or_iterations: int = 0
    notes: list[str] = field(default_factory=list)
