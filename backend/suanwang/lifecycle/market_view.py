"""The matcher's view of the market: the engine built from the index (nodes, who may sell, the fee),
kept in step with it, holding a reservation for each order it matched until the deal frees its capacity;
and the path bandwidth each match takes from the network."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from suanwang.errors import NotFoundError, SuanwangError
from suanwang.lifecycle.billing import Biller
from suanwang.lifecycle.context import StepContext
from suanwang.lifecycle.marketplace import Marketplace, RoutedCost
from suanwang.matching.market import MarketEngine, MarketNode, MarketOrder
from suanwang.matching.model import StagePolicy
from suanwang.states import FINAL_DEAL_STATUSES, OrderState
from suanwang.storage.models import Lease, Node, OrderRecord
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
    )


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
        )

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
        nodes = Repositories(session).nodes.by_id()
        if self.engine is None:
            return self._build(session, nodes)
        for node_id, node in nodes.items():
            key = _node_key(node)
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
        self._engine_nodes = {m.node_id: _node_key(nodes[m.node_id]) for m in active}
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
