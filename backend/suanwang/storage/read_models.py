"""The API's named read queries, one method per question a view asks ("a seller's deals, newest match
first", "a page of orders of this buyer"), in small classes by table. The routes and services ask by name
and never write a query themselves; the lifecycle's own queries live in `repositories.py`, and the routes
use those too where the question is the same (an order, a deal or a node by id, the indexed block).

The API writes two kinds of row itself, a placed order and an agent's heartbeat: their `add` is here too,
next to the reads of the same rows.

`ReadModels(session)` bundles them: `reads.nodes.page(NodeFilter(owner=...), 100, 0)`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from suanwang.states import OrderState
from suanwang.storage.models import (
    AgentHeartbeat,
    Deal,
    Event,
    Job,
    Lease,
    Member,
    Node,
    NodeMetrics,
    OrderRecord,
    Settlement,
    TransitTariff,
)
from suanwang.storage.repositories import Leases

Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    """One page of a listing, and how many rows the whole listing has."""

    total: int
    items: list[Row]


def _page(session: Session, query: Select[Row], order_by: Any, limit: int, offset: int) -> Page[Row]:
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return Page(total, list(session.scalars(query.order_by(order_by).limit(limit).offset(offset))))


class MemberReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_address(self, address: str) -> Member | None:
        """The member with this address, in any letter case (active or not)."""
        return self.session.scalar(select(Member).where(func.lower(Member.address) == address.lower()))

    def in_joining_order(self) -> list[Member]:
        return list(self.session.scalars(select(Member).order_by(Member.joined_block, Member.address)))


@dataclass(frozen=True)
class NodeFilter:
    """What a node listing may be narrowed to; None leaves a field open."""

    owner: str | None = None
    operator: str | None = None
    status: str | None = None
    gpu_model: int | None = None
    tier: int | None = None
    min_memory_mib: int | None = None
    min_gpu_count: int | None = None


class NodeReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def owned_by(self, owner: str) -> list[Node]:
        """The nodes of `owner` (any letter case), by id."""
        query = select(Node).where(func.lower(Node.owner) == owner.lower()).order_by(Node.node_id)
        return list(self.session.scalars(query))

    def page(self, wanted: NodeFilter, limit: int, offset: int) -> Page[Node]:
        """The nodes `wanted` lets through, by id, `limit` of them from `offset`."""
        query = select(Node)
        if wanted.owner is not None:
            query = query.where(func.lower(Node.owner) == wanted.owner.lower())
        if wanted.operator is not None:
            query = query.where(func.lower(Node.operator) == wanted.operator.lower())
        if wanted.status is not None:
            query = query.where(Node.status == wanted.status)
        if wanted.gpu_model is not None:
            query = query.where(Node.gpu_model == wanted.gpu_model)
        if wanted.tier is not None:
            query = query.where(Node.tier == wanted.tier)
        if wanted.min_memory_mib is not None:
            query = query.where(Node.memory_mib >= wanted.min_memory_mib)
        if wanted.min_gpu_count is not None:
            query = query.where(Node.gpu_count >= wanted.min_gpu_count)
        return _page(self.session, query, Node.node_id, limit, offset)


class DealReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def of_seller(self, seller: str) -> list[Deal]:
        """The deals sold by `seller` (any letter case), the latest match first."""
        query = select(Deal).where(func.lower(Deal.seller) == seller.lower()).order_by(Deal.matched_block.desc())
        return list(self.session.scalars(query))

    def among(self, ids: Collection[str]) -> dict[str, Deal]:
        return {deal.id: deal for deal in self.session.scalars(select(Deal).where(Deal.id.in_(list(ids))))}

    def fields_by_id(self) -> dict[str, dict[str, Any]]:
        """Every indexed deal's fields (its `deal` column), by deal id."""
        return {deal.id: deal.deal for deal in self.session.scalars(select(Deal))}

    def with_settlement(self) -> list[tuple[Deal, Settlement]]:
        """The deals that have a settlement row, each with it."""
        query = select(Deal, Settlement).join(Settlement, Settlement.deal_id == Deal.id)
        return [(deal, settlement) for deal, settlement in self.session.execute(query)]


class SettlementReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_deal(self, ids: Collection[str]) -> dict[str, Settlement]:
        query = select(Settlement).where(Settlement.deal_id.in_(list(ids)))
        return {settlement.deal_id: settlement for settlement in self.session.scalars(query)}


class JobReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_deal(self, ids: Collection[str]) -> dict[str, Job]:
        return {job.deal_id: job for job in self.session.scalars(select(Job).where(Job.deal_id.in_(list(ids))))}


class OrderParts(NamedTuple):
    """What an order led to, each None until it exists."""

    deal: Deal | None
    job: Job | None
    lease: Lease | None
    settlement: Settlement | None


class OrderReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_id(self, ids: Collection[str]) -> dict[str, OrderRecord]:
        query = select(OrderRecord).where(OrderRecord.id.in_(list(ids)))
        return {record.id: record for record in self.session.scalars(query)}

    def page(self, buyer: str | None, state: OrderState | None, limit: int, offset: int) -> Page[OrderRecord]:
        """The orders of `buyer` (any letter case) in `state`, each when given, the newest first."""
        query = select(OrderRecord)
        if buyer is not None:
            query = query.where(func.lower(OrderRecord.buyer) == buyer.lower())
        if state is not None:
            query = query.where(OrderRecord.state == state)
        return _page(self.session, query, OrderRecord.created_at.desc(), limit, offset)

    def latest_unmatched(self, limit: int) -> list[OrderRecord]:
        """The `limit` newest orders no node took."""
        query = (
            select(OrderRecord)
            .where(OrderRecord.state == OrderState.UNMATCHED)
            .order_by(OrderRecord.created_at.desc())
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def parts(self, ids: Sequence[str]) -> dict[str, OrderParts]:
        """Each order's deal, job, lease and settlement, by order id: one query per table for a whole page,
        not four per order."""
        deals = DealReads(self.session).among(ids)
        jobs = JobReads(self.session).by_deal(ids)
        leases = Leases(self.session).by_deal(ids)
        settlements = SettlementReads(self.session).by_deal(ids)
        return {i: OrderParts(deals.get(i), jobs.get(i), leases.get(i), settlements.get(i)) for i in ids}


class EventReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def named(self, names: Collection[str]) -> list[Event]:
        """The indexed events with any of these names, in chain order."""
        query = select(Event).where(Event.name.in_(list(names))).order_by(Event.id)
        return list(self.session.scalars(query))

    def latest(self, limit: int, names: Collection[str] = ()) -> list[Event]:
        """The `limit` newest events, newest first; only those named `names` unless it is empty."""
        query = select(Event)
        if names:
            query = query.where(Event.name.in_(list(names)))
        return list(self.session.scalars(query.order_by(Event.id.desc()).limit(limit)))


class TariffReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def per_operator(self) -> dict[str, str]:
        """Each operator's published transit tariff (token base units per Gbps-hour), by lower-case address."""
        return {t.operator.lower(): t.per_gbps_hour for t in self.session.scalars(select(TransitTariff))}


class HeartbeatReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def newest_first(self, address: str | None = None) -> list[AgentHeartbeat]:
        """The last heartbeat of every agent (of `address` only, any letter case, when given), newest first."""
        query = select(AgentHeartbeat).order_by(AgentHeartbeat.sent_at.desc())
        if address is not None:
            query = query.where(func.lower(AgentHeartbeat.address) == address.lower())
        return list(self.session.scalars(query))


class NodeMetricsReads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def listing(self, owner: str | None = None) -> list[NodeMetrics]:
        """The newest report of every node (of `owner` only, any letter case, when given), by node id."""
        query = select(NodeMetrics).order_by(NodeMetrics.node_id)
        if owner is not None:
            query = query.where(func.lower(NodeMetrics.reporter) == owner.lower())
        return list(self.session.scalars(query))


class ReadModels:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.members = MemberReads(session)
        self.nodes = NodeReads(session)
        self.deals = DealReads(session)
        self.settlements = SettlementReads(session)
        self.jobs = JobReads(session)
        self.orders = OrderReads(session)
        self.events = EventReads(session)
        self.tariffs = TariffReads(session)
        self.heartbeats = HeartbeatReads(session)
        self.node_metrics = NodeMetricsReads(session)
