"""The steps that close deals: settlement (the buyer confirms, or anyone once the dispute window passed),
timeouts (anyone, once a deadline passed), and giving back what a final deal held (the matcher's engine
reservation and path bandwidth, a job still queued)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from suanwang.errors import SuanwangError
from suanwang.lifecycle.context import ChainHead, StepContext, now
from suanwang.lifecycle.market_view import MarketView
from suanwang.lifecycle.outbox import Outbox
from suanwang.scheduling.base import Executor, JobState
from suanwang.states import DealCall, DealStatus
from suanwang.storage.models import Lease
from suanwang.storage.repositories import Repositories

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
            deals = Repositories(session).deals.with_status(DealStatus.COMPLETED)
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
            deals = Repositories(session).deals.expired(head.timestamp)
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
            repos = Repositories(session)
            for lease in repos.leases.unreleased_of_final_deals():
                self.view.free_path(lease)
                if engine is not None:
                    engine.network_changed()
            held = self.view.held()
            for deal_id in repos.deals.released_among(held) if held else []:
                self.view.release(deal_id)
            self._ensure_leases(repos)

    def _ensure_leases(self, repos: Repositories) -> None:
        network = self.view.marketplace.network
        for deal_id, route in repos.deals.live_without_lease():
            if route is None:
                continue
            gbps = float(route.get("bandwidth_reserved_gbps", self.view.marketplace.lease_bandwidth_gbps))
            path = network.make_path([network.router_index(r) for r in route["path"]])
            try:
                reservation: str | None = str(network.reserve(path, gbps))
            except SuanwangError as exc:  # the path filled up since the match: the lease runs unreserved
                log.warning("deal %s: could not reserve %s Gbps: %s", deal_id, gbps, exc.message)
                reservation = None
            repos.leases.add(Lease(deal_id=deal_id, path=route, bandwidth_gbps=gbps, reservation=reservation))


@dataclass
class CancelOrphanJobs:
    """The provider's: a job still queued or running for a deal that is final is cancelled."""

    ctx: StepContext
    executor: Executor

    def tick(self) -> None:
        with self.ctx.sessions.begin() as session:
            for job in Repositories(session).jobs.open_for_final_deals():
                self.executor.cancel(job.job_id)
                job.state, job.updated_at = JobState.CANCELLED.value, now()
