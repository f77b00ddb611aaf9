"""The replay's records: the parties, nodes, planned orders and deals it tracks, its samples and its
result, and the role and status vocabulary the contracts use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from suanwang.chain.market import TxSender
from suanwang.replay.scenario import ROLE_BITS, Scenario

OPERATOR, CLOUD, PROVIDER, BUYER, MATCHER, ARBITER = (ROLE_BITS[r] for r in ROLE_BITS)
STATUS = (
    "none",
    "posted",
    "proposed",
    "accepted",
    "started",
    "completed",
    "disputed",
    "settled",
    "refunded",
    "cancelled",
)
FINAL = {"settled", "refunded", "cancelled"}


@dataclass
class Party:
    name: str
    roles: int
    key: str
    address: str
    sender: TxSender
    member: bool = False
    internal: bool = False  # one of the founder's own teams (admitted in stage 1)
    admitted_by_vote: bool = False


@dataclass
class NodeState:
    label: str
    owner: str
    router: str
    router_index: int
    operator_party: str
    spec: dict[str, int]
    price: int
    node_id: int = 0
    registered: bool = False
    failed: bool = False


@dataclass
class Plan:
    index: int
    buyer: str
    at: int
    access_point: str
    order: dict[str, Any]
    id: str = ""
    outcome: str = "pending"  # pending | matched | unmatched
    reason: str = ""


@dataclass
class DealState:
    id: str
    plan: Plan
    node: NodeState
    deal: dict[str, Any]
    packed: bytes  # the Matched event's deal bytes, which every lifecycle call passes back
    status: str
    deadline: int
    valueless: bool
    total: int
    transit: dict[str, int]  # operator address -> fee
    latency_ms: float
    path: list[int]
    gbps: float
    reservation: int | None = None
    started_at: int | None = None
    dispute: tuple[str, bool] | None = None  # (arbiter party, seller wins)
    bond: int = 0  # the buyer's dispute bond while disputed
    compute_paid: int = 0  # from Settled: prorated to the time used
    platform_paid: int = 0
    transit_paid: bool = False  # Settled paid the transit lines (no SLA breach reported)
    slashed: bool = False
    timed_out_from: str | None = None  # the status a timeout sent this round found the deal in
    rerouted: bool = False
    sla_met: bool | None = None


@dataclass
class Sample:
    t: int
    holdings: dict[str, int]
    submitted: int
    matched: int
    utilisation: float
    reserved_gbps: float
    open_deals: int


@dataclass
class ReplayResult:
    scenario: Scenario
    figures: dict[str, Any]
    samples: list[Sample]
    gas: dict[str, list[int]]
    deals: list[DealState]
    plans: list[Plan]
    log: list[str]
    conservation: dict[str, Any]
    before: dict[str, int]
    after: dict[str, int]
    start_block: int
    end_block: int
    addresses: dict[str, str]
    contracts: dict[str, str]
    seconds: float
    outcomes: list[tuple[str, str, Any, bool]] = field(default_factory=list)  # (expectation, line, actual, ok)

    @property
    def ok(self) -> bool:
        return all(o[3] for o in self.outcomes) and bool(self.conservation.get("ok"))
