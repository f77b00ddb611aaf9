"""The steps that close deals: settlement (the buyer confirms, or anyone once the dispute window passed),
timeouts (anyone, once a deadline passed), and giving back what a final deal held (the matcher's engine
reservation and path bandwidth, a job still queued)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from suanwang.chain.states import CAPACITY_HOLDING_STATUSES, FINAL_DEAL_STATUSES, TIMEOUT_STATUSES, DealCall, DealStatus
from suanwang.errors import SuanwangError
from suanwang.lifecycle.context import ChainHead, StepContext, now
from suanwang.lifecycle.market_view import MarketView
from suanwang.lifecycle.outbox import Outbox
from suanwang.scheduling.base import Executor, JobState
from suanwang.storage.models import Deal, Job, Lease, OrderRecord

log = logging.getLogger(__name__)


@dataclass
class SettleCompleted:
    """A completed deal settled: by its buyer at once (`buyers_confirm`, when this process holds the buyer's
    key), else by `anyone` once the dispute window has passed."""

    ctx: StepContext
    outbox: Outbox
    buyers_confirm: bool = True

    def tick(self, head: ChainHead) -> None:
        with self.ctx.sessions() as session:
            deals = list(session.scalars(select(Deal).where(Deal.status == DealStatus.COMPLETED)))
        anyone = self.ctx.keys.only_or_matcher()
        for deal in deals:
            buyer = self.ctx.keys.for_address(deal.buyer) if self.buyers_confirm else None
            if buyer is not None:
                self.outbox.send(buyer, DealCall.SETTLE, deal.deal)
            elif head.timestamp > deal.deadline:
                self.outbox.send(anyone, DealCall.SETTLE, deal.deal)


@dataclass
class TimeoutExpired:
    """Any deal past its deadline in a state that has one is timed out (refunded; a late seller slashed)."""

    ctx: StepContext
    outbox: Outbox

    def tick(self, head: ChainHead) -> None:
        with self.ctx.sessions() as session:
            deals = list(
                session.scalars(
                    select(Deal).where(Deal.status.in_(list(TIMEOUT_STATUSES)), Deal.deadline < head.timestamp)
                )
            )
        anyone = self.ctx.keys.only_or_matcher()
        for deal in deals:
            self.outbox.send(anyone, DealCall.TIMEOUT, deal.deal)


@dataclass
class ReleaseFinished:
    """The matcher's: path bandwidth and engine reservations of final deals given back; a lease row for an
    accepted deal whose match left none (a restart between the match and its lease)."""

    ctx: StepContext
    view: MarketView

    def tick(self) -> None:
        engine = self.view.engine
        with self.ctx.sessions.begin() as session:
            rows = session.execute(
                select(Lease)
                .join(Deal, Lease.deal_id == Deal.id)
                .where(Deal.status.in_(list(FINAL_DEAL_STATUSES)), Lease.released.is_(False))
            )
            for (lease,) in rows:
                self.view.free_path(lease)
                if engine is not None:
                    engine.network_changed()
            held = self.view.held()
            if held:
                done = session.scalars(
                    select(Deal.id).where(Deal.id.in_(held), Deal.status.not_in(list(CAPACITY_HOLDING_STATUSES)))
                )
                for deal_id in done:
                    self.view.release(deal_id)
            self._ensure_leases(session)

    def _ensure_leases(self, session: Session) -> None:
        missing = session.execute(
            select(Deal.id, OrderRecord.route)
            .join(OrderRecord, OrderRecord.id == Deal.id)
            .outerjoin(Lease, Lease.deal_id == Deal.id)
            .where(Deal.status.in_([DealStatus.ACCEPTED, DealStatus.STARTED]), Lease.deal_id.is_(None))
        )
        network = self.view.marketplace.network
        for deal_id, route in missing:
            if route is None:
                continue
            gbps = float(route.get("bandwidth_reserved_gbps", self.view.marketplace.lease_bandwidth_gbps))
            path = network.make_path([network.router_index(r) for r in route["path"]])
            try:
                reservation: str | None = str(network.reserve(path, gbps))
            except SuanwangError as exc:  # the path filled up since the match: the lease runs unreserved
                log.warning("deal %s: could not reserve %s Gbps: %s", deal_id, gbps, exc.message)
                reservation = None
            session.add(Lease(deal_id=deal_id, path=route, bandwidth_gbps=gbps, reservation=reservation))


@dataclass
class CancelOrphanJobs:
    """The provider's: a job still queued or running for a deal that is final is cancelled."""

    ctx: StepContext
    executor: Executor

    def tick(self) -> None:
        with self.ctx.sessions.begin() as session:
            for job in session.scalars(
                select(Job)
                .join(Deal, Deal.id == Job.deal_id)
                .where(
                    Deal.status.in_(list(FINAL_DEAL_STATUSES)),
                    Job.state.in_((JobState.PENDING.value, JobState.RUNNING.value)),
                )
            ):
                self.executor.cancel(job.job_id)
                job.state, job.updated_at = JobState.CANCELLED.value, now()
