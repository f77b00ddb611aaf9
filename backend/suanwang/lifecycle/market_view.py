"""The matcher's view of the market: the engine built from the index (nodes, who may sell, the fee),
kept in step with it, holding a reservation for each order it matched until the deal frees its capacity;
the path bandwidth each match takes from the network; each node's live state from its provider's signed
metrics reports; and each seller's reliability from its deals' on-chain outcomes."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from suanwang.chain.bill import DEAL_HEAD_BYTES, Seats, unpack_deal
from suanwang.config import Settings
from suanwang.errors import NotFoundError, SuanwangError
from suanwang.lifecycle.billing import Biller
from suanwang.lifecycle.context import StepContext
from suanwang.lifecycle.marketplace import Marketplace, RoutedCost
from suanwang.matching.market import MarketEngine, MarketNode, MarketOrder, NodeCondition
from suanwang.matching.market_reliability import SellerRecord, deal_outcome, seller_records
from suanwang.matching.model import StagePolicy
from suanwang.network.cfn import utilisation
from suanwang.states import FINAL_DEAL_STATUSES, DealStatus, OrderState
from suanwang.storage.models import Deal, Lease, Node, NodeMetrics, OrderRecord
from suanwang.storage.repositories import Repositories

log = logging.getLogger(__name__)


def market_order(record: OrderRecord, access_point: int) -> MarketOrder:
    o = record.order
    return MarketOrder(
        order_id=record.id,
        buyer=o["buyer"],
        logic_mcu=int(o["logicMcu"]),
        parallel_mcu=int(o["parallelMcu"]),
        neural_mcu=int(o["neuralMcu"]),
        memory_mib=int(o["memoryMib"]),
        gpu_model=int(o["gpuModel"]),
        gpu_count=int(o["gpuCount"]),
        min_tier=int(o["minTier"]),
        duration_s=int(o["duration"]),
        max_price_per_cu_hour=int(o["maxPricePerCuHour"]),
        max_total=int(o["maxTotal"]),
        access_point=access_point,
        max_latency_ms=float(o["maxLatencyMs"]),  # 0 = no bound, as on chain
        min_bandwidth_gbps=int(o["minBandwidthMbps"]) / 1000,
        service_id=_service_id(o.get("serviceId")),
    )


def _service_id(value: Any) -> str | None:
    """The order's serviceId as 0x-hex bytes32, None when zero (the order then names no service)."""
    if value is None:
        return None
    raw = value if isinstance(value, bytes) else bytes.fromhex(str(value).removeprefix("0x"))
    return None if not any(raw) else "0x" + raw.hex()


@dataclass(frozen=True)
class LivenessRule:
    """When the matcher counts a node live (docs/matching.md, "Live node metrics"): its newest report says
    it is up and is at most two report intervals old. A node with no report is live only while its
    provider has never reported any node and `require_node_metrics` is off: a market whose providers run
    no metrics agent (older agents, the single-process development service) still matches, while a
    provider whose agent reports but leaves a node out no longer vouches for that node."""

    interval_s: float = 5.0
    require_node_metrics: bool = False

    @classmethod
    def of(cls, settings: Settings) -> LivenessRule:
        return cls(settings.node_metrics_interval_s, settings.require_node_metrics)

    def condition(self, report: NodeMetrics | None, owner_reports: bool, now: float) -> NodeCondition:
        if report is None:
            return NodeCondition(silent=self.require_node_metrics or owner_reports)
        # The report counts from when it was signed or received, whichever is earlier: a report signed
        # ahead of the service's clock (within the route's skew bound) does not keep a node live longer.
        heard = min(float(report.sent_at), report.received_at.timestamp())
        services = {str(s["service_id"]): float(s["service_time_ms"]) for s in report.services}
        return NodeCondition(
            down=not report.up,
            silent=now - heard > 2 * self.interval_s,
            load=utilisation(report.cpus, report.free_cpus, report.load_1m),
            services=services,
            cpus=report.cpus,
        )


@dataclass
class SellerReliability:
    """Each seller's score from its deals' on-chain outcomes (matching/market_reliability.py), read
    incrementally: only the deals whose status moved since the last read are classified again."""

    _outcomes: dict[str, tuple[str, bool | None]] = field(default_factory=dict)  # deal id -> (seller, good)
    _block: int = -1  # the indexed block the outcomes are read up to
    _scores: dict[str, float] = field(default_factory=dict)  # by lower-case seller address
    _records: dict[str, SellerRecord] = field(default_factory=dict)

    def update(self, session: Session) -> None:
        repos = Repositories(session)
        upto = repos.indexed_block()  # read first: a deal indexed meanwhile is read again next time
        if upto is None:
            return
        for deal, statuses in repos.seller_records.moved_since(self._block):
            self._outcomes[deal.id] = (deal.seller, deal_outcome(deal.status, _ever_accepted(deal, statuses)))
        self._block = upto
        self._records = seller_records((seller, good) for seller, good in self._outcomes.values() if good is not None)
        self._scores = {seller: record.score for seller, record in self._records.items()}

    def score(self, seller: str) -> float:
        return self._scores.get(seller.lower(), SellerRecord().score)

    def records(self) -> dict[str, SellerRecord]:
        """Each seller's tally of good and bad outcomes (by lower-case address) as last read."""
        return dict(self._records)


def _ever_accepted(deal: Deal, statuses: list[int]) -> bool:
    """Whether the deal was accepted at some point: at its match (an auto-accepting order; the status its
    Matched event packed) or by a DealStatusChanged past Proposed to anything but Refunded."""
    if any(DealStatus.of(s) not in (DealStatus.PROPOSED, DealStatus.REFUNDED) for s in statuses):
        return True
    head = bytes.fromhex(str(deal.deal["packed"]).removeprefix("0x"))[:DEAL_HEAD_BYTES] + b"\x00"
    return DealStatus.of(int(unpack_deal(deal.id, head, Seats(()))["status"])) == DealStatus.ACCEPTED


def _node_key(node: Node) -> tuple[Any, ...]:
    return (
        node.status,
        node.logic_mcu,
        node.parallel_mcu,
        node.neural_mcu,
        node.memory_mib,
        node.gpu_model,
        node.gpu_count,
        node.tier,
        node.price_per_cu_hour,
        node.router,
        node.owner,
    )


@dataclass
class MarketView:
    ctx: StepContext
    marketplace: Marketplace
    biller: Biller
    engine: MarketEngine | None = None
    policy: tuple[StagePolicy, int] | None = None  # who may sell, and the platform fee in bps
    _engine_nodes: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    _held: set[str] = field(default_factory=set)  # order ids the engine holds a reservation for
    _leases_restored: bool = False
    liveness: LivenessRule = field(default_factory=LivenessRule)
    reliability: SellerReliability = field(default_factory=SellerReliability)

    @property
    def fee_bps(self) -> int:
        return self.policy[1] if self.policy else 0

    def market_order(self, record: OrderRecord) -> MarketOrder:
        return market_order(record, self.marketplace.network.router_index(record.access_point))

    def _stage_policy(self, session: Session) -> StagePolicy:
        """Who may sell now, as the Federation says (the engine then never proposes a refused seller)."""
        federation = self.ctx.chain.federation
        seller_roles = federation.seller_roles(federation.stage())
        sellers = Repositories(session).members.active_with(seller_roles)
        return StagePolicy(stage=3, operator=federation.founder(), admitted=sellers)

    def _market_node(self, node: Node) -> MarketNode | None:
        router = self.marketplace.router_by_id.get(node.router)
        if router is None:
            return None  # attached to a router outside the market's network: cannot be routed to
        return MarketNode(
            node_id=node.node_id,
            owner=node.owner,
            operator=node.operator,
            router=router,
            logic_mcu=node.logic_mcu,
            parallel_mcu=node.parallel_mcu,
            neural_mcu=node.neural_mcu,
            memory_mib=node.memory_mib,
            gpu_model=node.gpu_model,
            gpu_count=node.gpu_count,
            tier=node.tier,
            price_per_cu_hour=int(node.price_per_cu_hour),
            reliability=self.reliability_of(node.owner),
        )

    def reliability_of(self, seller: str) -> float:
        return self.reliability.score(seller)

    def _node_key(self, node: Node) -> tuple[Any, ...]:
        return (*_node_key(node), self.reliability_of(node.owner))

    def _apply_conditions(self, session: Session) -> None:
        """Each engine node's live state from the newest metrics reports (LivenessRule)."""
        assert self.engine is not None
        reports = Repositories(session).node_metrics.by_node()
        reporting = {r.reporter.lower() for r in reports.values()}
        now = time.time()
        conditions = {
            m.node_id: self.liveness.condition(reports.get(m.node_id), m.owner.lower() in reporting, now)
            for m in self.engine.state.nodes
        }
        self.engine.set_conditions(conditions)

    def sync(self, session: Session, chain_moved: bool = True) -> MarketEngine:
        """Builds the engine at start (reserving what live deals hold) and follows node changes after.
        The stage, the fee (read at the head) and who may sell (read from the index) change only with a
        new block or a new indexed block: read again only then."""
        if chain_moved or self.policy is None:
            self.biller.forget_tariffs()  # an operator may have published a new tariff in the new block
            fee_bps = self.ctx.chain.federation.platform_fee_bps()
            policy = self._stage_policy(session)
            if self.engine is not None and (policy, fee_bps) != self.policy:
                self.engine = None  # who may sell or the fee changed (a stage move, an admission): start afresh
            self.policy = (policy, fee_bps)
            self.reliability.update(session)
        nodes = Repositories(session).nodes.by_id()
        if self.engine is None:
            engine = self._build(session, nodes)
            self._apply_conditions(session)
            return engine
        for node_id, node in nodes.items():
            key = self._node_key(node)
            known = self._engine_nodes.get(node_id)
            if node.status != "active":
                if known is not None:
                    self.engine.remove_node(node_id)
                    del self._engine_nodes[node_id]
            elif known is None:
                if (m := self._market_node(node)) is not None:
                    self.engine.add_node(m)
                    self._engine_nodes[node_id] = key
            elif known != key and (m := self._market_node(node)) is not None:
                self.engine.update_node(m)
                self._engine_nodes[node_id] = key
        self._apply_conditions(session)
        return self.engine

    def _build(self, session: Session, nodes: dict[int, Node]) -> MarketEngine:
        assert self.policy is not None
        policy, fee_bps = self.policy
        active = [m for n in nodes.values() if n.status == "active" and (m := self._market_node(n))]
        # The engine prices each candidate's path at the tariffs its operators published (Biller.transit_of):
        # it ranks nodes by the whole bill, and never picks one whose bill is over the buyer's maxTotal.
        self.engine = MarketEngine(
            active,
            RoutedCost(self.marketplace.network),
            policy,
            platform_fee_bps=fee_bps,
            transit_fee=self.biller.transit_of,
        )
        self._engine_nodes = {m.node_id: self._node_key(nodes[m.node_id]) for m in active}
        self._held = set()
        # What holds capacity on chain now: deals not yet completed, and matches possibly in flight.
        repos = Repositories(session)
        for deal in repos.deals.holding_capacity():
            record = repos.orders.get(deal.id)
            if record is not None and deal.node_id in self._engine_nodes:
                self.engine.reserve_existing(self.market_order(record), deal.node_id)
                self._held.add(deal.id)
        for record in repos.orders.submitting():
            if record.node_id in self._engine_nodes and record.id not in self._held:
                self.engine.reserve_existing(self.market_order(record), int(record.node_id))
                self._held.add(record.id)
        self._restore_leases()
        return self.engine

    def hold(self, order_id: str) -> None:
        self._held.add(order_id)

    def held(self) -> set[str]:
        return set(self._held)

    def release(self, order_id: str) -> None:
        """Returns the engine's reservation for `order_id`, once, if it holds one."""
        if self.engine is not None and order_id in self._held:
            self._held.discard(order_id)
            self.engine.release(order_id)

    # -- path bandwidth ----------------------------------------------------------------------------------
    def _restore_leases(self) -> None:
        """Path reservations live in the network object, which a restart empties: reserve again what
        live deals hold, and close the leases of deals that ended meanwhile."""
        if self._leases_restored:
            return
        network = self.marketplace.network
        with self.ctx.sessions.begin() as session:
            repos = Repositories(session)
            for lease in repos.leases.unreleased():
                deal, record = repos.deals.get(lease.deal_id), repos.orders.get(lease.deal_id)
                live = (deal is not None and deal.status not in FINAL_DEAL_STATUSES) or (
                    deal is None and record is not None and record.state == OrderState.SUBMITTING
                )
                if not live:
                    lease.released, lease.reservation = True, None
                    continue
                path = network.make_path([network.router_index(r) for r in lease.path["path"]], srv6=False)
                try:
                    lease.reservation = str(network.reserve(path, lease.bandwidth_gbps))
                except SuanwangError as exc:
                    log.warning("%s: path bandwidth not reserved again after a restart: %s", lease.deal_id, exc.message)
                    lease.reservation = None
        self._leases_restored = True

    def reserve_path(self, session: Session, order_id: str, route: dict[str, Any], lease: Lease | None) -> None:
        """Takes the route's bandwidth now, at the match, so the next order sees what is left; the order's
        lease row (`lease`, one left by an earlier match attempt, or a new one) records it."""
        network = self.marketplace.network
        gbps = float(route["bandwidth_reserved_gbps"])
        path = network.make_path([network.router_index(r) for r in route["path"]], srv6=False)
        if lease is not None:
            self.free_path(lease)  # what an earlier attempt still held
        reservation = str(network.reserve(path, gbps))
        if lease is None:
            Repositories(session).leases.add(
                Lease(deal_id=order_id, path=route, bandwidth_gbps=gbps, reservation=reservation)
            )
        else:
            lease.path, lease.bandwidth_gbps, lease.reservation = route, gbps, reservation
            lease.programmed, lease.released = False, False

    def free_path(self, lease: Lease) -> None:
        if lease.reservation is not None:
            with contextlib.suppress(NotFoundError):  # a restart emptied the network's reservations
                self.marketplace.network.release(int(lease.reservation))
            lease.reservation = None
        lease.released = True

    def unreserve(self, record: OrderRecord, session: Session) -> None:
        """Gives back what a match that did not happen held: node capacity and path bandwidth."""
        self.release(record.id)
        leases = Repositories(session).leases
        lease = leases.get(record.id)
        if lease is not None:
            self.free_path(lease)
            leases.drop(lease)
