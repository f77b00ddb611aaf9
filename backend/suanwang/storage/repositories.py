"""Named queries over one session, one class per table the lifecycle works on. Steps and routes ask for
what they need by name ("the orders waiting for a match", "the deals past their deadline") and never
write a query themselves, so a change of schema or index touches this module alone.

`Repositories(session)` bundles them: `repos.orders.waiting(50)`, `repos.deals.expired(now)`."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from suanwang.scheduling.base import JobState
from suanwang.states import (
    CAPACITY_HOLDING_STATUSES,
    FINAL_DEAL_STATUSES,
    TIMEOUT_STATUSES,
    DealStatus,
    OrderState,
)
from suanwang.storage.models import (
    AgentHeartbeat,
    ChainCursor,
    Deal,
    Event,
    Job,
    Lease,
    Member,
    Node,
    NodeMetrics,
    OrderRecord,
    Settlement,
)

OPEN_JOB_STATES = (JobState.PENDING.value, JobState.RUNNING.value)
ENDED_JOB_STATES = (JobState.COMPLETED.value, JobState.FAILED.value)


class Orders:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, order_id: str) -> OrderRecord | None:
        return self.session.get(OrderRecord, order_id)

    def add(self, record: OrderRecord) -> None:
        self.session.add(record)

    def waiting(self, limit: int) -> list[OrderRecord]:
        """Orders not yet matched, oldest first."""
        query = select(OrderRecord).where(OrderRecord.state == OrderState.NEW).order_by(OrderRecord.created_at)
        return list(self.session.scalars(query.limit(limit)))

    def submitting(self) -> list[OrderRecord]:
        return list(self.session.scalars(select(OrderRecord).where(OrderRecord.state == OrderState.SUBMITTING)))

    def among(self, ids: Collection[str]) -> list[OrderRecord]:
        return list(self.session.scalars(select(OrderRecord).where(OrderRecord.id.in_(list(ids)))))

    def nodes_of(self, ids: Collection[str]) -> dict[str, int | None]:
        """Order id -> the node it was matched on."""
        query = select(OrderRecord.id, OrderRecord.node_id).where(OrderRecord.id.in_(list(ids)))
        return {order_id: node_id for order_id, node_id in self.session.execute(query)}

    def on_chain_without_deal(self) -> list[tuple[str, str | None]]:
        """(id, match transaction) of orders marked matched whose deal the index does not hold."""
        query = (
            select(OrderRecord.id, OrderRecord.tx_hash)
            .outerjoin(Deal, Deal.id == OrderRecord.id)
            .where(OrderRecord.state == OrderState.ON_CHAIN, Deal.id.is_(None))
        )
        return [(order_id, tx_hash) for order_id, tx_hash in self.session.execute(query)]

    def mark_sent(self, ids: Collection[str], tx_hash: str, at: Any) -> None:
        """Records the transaction that carries the orders' matches (a restart then waits for it)."""
        self.session.execute(
            update(OrderRecord)
            .where(OrderRecord.id.in_(list(ids)))
            .values(tx_hash=tx_hash, updated_at=at)
            .execution_options(synchronize_session=False)
        )


class Deals:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, deal_id: str) -> Deal | None:
        return self.session.get(Deal, deal_id)

    def all(self) -> list[Deal]:
        return list(self.session.scalars(select(Deal)))

    def with_status(self, status: DealStatus, sellers: Iterable[str] | None = None) -> list[Deal]:
        query = select(Deal).where(Deal.status == status)
        if sellers is not None:
            query = query.where(Deal.seller.in_(list(sellers)))
        return list(self.session.scalars(query))

    def holding_capacity(self) -> list[Deal]:
        return list(self.session.scalars(select(Deal).where(Deal.status.in_(list(CAPACITY_HOLDING_STATUSES)))))

    def expired(self, chain_time: int) -> list[Deal]:
        """Deals in a state with a deadline that has passed: anyone may time them out."""
        query = select(Deal).where(Deal.status.in_(list(TIMEOUT_STATUSES)), Deal.deadline < chain_time)
        return list(self.session.scalars(query))

    def released_among(self, ids: Collection[str]) -> list[str]:
        """The ids among `ids` of deals that no longer hold their node's capacity."""
        query = select(Deal.id).where(Deal.id.in_(list(ids)), Deal.status.not_in(list(CAPACITY_HOLDING_STATUSES)))
        return list(self.session.scalars(query))

    def delivered(self, sellers: Iterable[str]) -> list[tuple[Deal, str]]:
        """(deal, result CID) of the started deals of `sellers` whose job ran to its end."""
        query = (
            select(Deal, Job.result_cid)
            .join(Job, Job.deal_id == Deal.id)
            .where(
                Deal.status == DealStatus.STARTED,
                Deal.seller.in_(list(sellers)),
                Job.state.in_(ENDED_JOB_STATES),
                Job.result_cid.is_not(None),
            )
        )
        return [(deal, cid) for deal, cid in self.session.execute(query) if cid]

    def live_without_lease(self) -> list[tuple[str, dict[str, Any] | None]]:
        """(deal id, the route its match chose) of accepted or started deals that have no lease row."""
        query = (
            select(Deal.id, OrderRecord.route)
            .join(OrderRecord, OrderRecord.id == Deal.id)
            .outerjoin(Lease, Lease.deal_id == Deal.id)
            .where(Deal.status.in_([DealStatus.ACCEPTED, DealStatus.STARTED]), Lease.deal_id.is_(None))
        )
        return [(deal_id, route) for deal_id, route in self.session.execute(query)]

    def moved_since(self, block: int) -> list[Deal]:
        """Deals whose status changed in a block after `block`."""
        return list(self.session.scalars(select(Deal).where(Deal.updated_block > block)))

    def settlements_since(self, block: int) -> dict[str, Settlement]:
        query = select(Settlement).where(Settlement.block_number > block)
        return {s.deal_id: s for s in self.session.scalars(query)}

    def slashed_since(self, block: int) -> list[str]:
        """Ids of the deals whose seller was slashed in a block after `block`."""
        query = select(Event.args).where(Event.name == "Slashed", Event.block_number > block)
        return [str(args["id"]) for (args,) in self.session.execute(query)]


class Jobs:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, deal_id: str) -> Job | None:
        return self.session.get(Job, deal_id)

    def add(self, job: Job) -> None:
        self.session.add(job)

    def drop(self, job: Job) -> None:
        self.session.delete(job)

    def open(self) -> list[Job]:
        """Jobs the executor may still be running."""
        return list(self.session.scalars(select(Job).where(Job.state.in_(OPEN_JOB_STATES))))

    def open_for_final_deals(self) -> list[Job]:
        query = (
            select(Job)
            .join(Deal, Deal.id == Job.deal_id)
            .where(Deal.status.in_(list(FINAL_DEAL_STATUSES)), Job.state.in_(OPEN_JOB_STATES))
        )
        return list(self.session.scalars(query))

    def without_deal(self) -> list[Job]:
        """Jobs whose deal left the index (a reorganisation undid the match)."""
        query = select(Job).outerjoin(Deal, Deal.id == Job.deal_id).where(Deal.id.is_(None))
        return list(self.session.scalars(query))


class Leases:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, deal_id: str) -> Lease | None:
        return self.session.get(Lease, deal_id)

    def add(self, lease: Lease) -> None:
        self.session.add(lease)

    def drop(self, lease: Lease) -> None:
        self.session.delete(lease)

    def by_deal(self, ids: Collection[str] | None = None) -> dict[str, Lease]:
        query = select(Lease) if ids is None else select(Lease).where(Lease.deal_id.in_(list(ids)))
        return {lease.deal_id: lease for lease in self.session.scalars(query)}

    def unreleased(self) -> list[Lease]:
        return list(self.session.scalars(select(Lease).where(Lease.released.is_(False))))

    def unreleased_of_final_deals(self) -> list[Lease]:
        query = (
            select(Lease)
            .join(Deal, Lease.deal_id == Deal.id)
            .where(Deal.status.in_(list(FINAL_DEAL_STATUSES)), Lease.released.is_(False))
        )
        return list(self.session.scalars(query))


class Nodes:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, node_id: int) -> Node | None:
        return self.session.get(Node, node_id)

    def by_id(self) -> dict[int, Node]:
        return {node.node_id: node for node in self.session.scalars(select(Node))}

    def owners(self) -> dict[int, str]:
        return {node_id: owner for node_id, owner in self.session.execute(select(Node.node_id, Node.owner))}


class Members:
    def __init__(self, session: Session) -> None:
        self.session = session

    def active_with(self, roles: int) -> frozenset[str]:
        """Addresses of active members holding any of the role bits `roles`."""
        return frozenset(
            m.address for m in self.session.scalars(select(Member).where(Member.active)) if m.roles & roles
        )


class Heartbeats:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, address: str, role: str) -> AgentHeartbeat | None:
        return self.session.get(AgentHeartbeat, (address, role))

    def add(self, heartbeat: AgentHeartbeat) -> None:
        self.session.add(heartbeat)


class NodeMetricsReports:
    """The newest signed metrics report per node (agents/node_metrics.py, api/routes/node_metrics.py)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, node_id: int) -> NodeMetrics | None:
        return self.session.get(NodeMetrics, node_id)

    def add(self, report: NodeMetrics) -> None:
        self.session.add(report)

    def by_node(self) -> dict[int, NodeMetrics]:
        return {row.node_id: row for row in self.session.scalars(select(NodeMetrics))}


# DealStatusChanged events are fetched for this many deals per query (SQLite's bound-parameter limit).
_IDS_PER_QUERY = 500


class SellerRecords:
    """What the chain says of each seller's deals, for its reliability score (lifecycle/market_view.py)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def moved_since(self, block: int) -> list[tuple[Deal, list[int]]]:
        """Each deal whose status changed in a block after `block`, with, for a refunded one, the statuses
        its DealStatusChanged events carried (in chain order): whether it was ever accepted is in them."""
        deals = list(self.session.scalars(select(Deal).where(Deal.updated_block > block)))
        refunded = [d.id for d in deals if d.status == DealStatus.REFUNDED]
        statuses: dict[str, list[int]] = {}
        for at in range(0, len(refunded), _IDS_PER_QUERY):
            ids = refunded[at : at + _IDS_PER_QUERY]
            query = (
                select(Event.args)
                .where(Event.name == "DealStatusChanged", Event.args["id"].as_string().in_(ids))
                .order_by(Event.id)
            )
            for (args,) in self.session.execute(query):
                statuses.setdefault(str(args["id"]), []).append(int(args["status"]))
        return [(deal, statuses.get(deal.id, [])) for deal in deals]


class Repositories:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.orders = Orders(session)
        self.deals = Deals(session)
        self.jobs = Jobs(session)
        self.leases = Leases(session)
        self.nodes = Nodes(session)
        self.members = Members(session)
        self.heartbeats = Heartbeats(session)
        self.node_metrics = NodeMetricsReports(session)
        self.seller_records = SellerRecords(session)

    def indexed_block(self) -> int | None:
        cursor = self.session.get(ChainCursor, 1)
        return cursor.block_number if cursor is not None else None
