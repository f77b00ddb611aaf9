"""The lifecycle as the service runs it: small steps, each with one job, grouped into three passes that
run in their own threads (a new order is matched, its job submitted and seen running without waiting
behind the deals' other steps):

  match pass   MarketView.sync -> MatchReceipts (receipts, half-sent orders, undone matches)
               -> MatchStep (new orders priced and sent) -> ReleaseFinished
  deal pass    Outbox (receipts of deal calls) -> ProviderJobs (submit, start / decline)
               -> CompleteJobs -> SettleCompleted -> TimeoutExpired -> CancelOrphanJobs
  job pass     FollowJobs (the executor's states into the store)

The service holds the matcher's key. Only on the development chain, and only when asked
(`service_keys = "development"`), does it also hold the demo sellers' and buyers' keys and run their
steps in-process; otherwise each provider runs `suanwang agent provider` with its own key, and its own
store, and the provider steps here find no deal of theirs.

Every step is idempotent and reads where things stand from the store and the chain, so a pass
interrupted anywhere (a crash, a kill) is simply run again after a restart. Duplicates cannot happen
where it matters: the market refuses a second match of an order id and a second transition out of a
state, executors refuse a second job with the same key, and the indexer stores each log once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from suanwang.content import ContentStore
from suanwang.lifecycle.billing import Biller
from suanwang.lifecycle.closing import CancelOrphanJobs, ReleaseFinished, SettleCompleted, TimeoutExpired
from suanwang.lifecycle.context import StepContext
from suanwang.lifecycle.follow import CompleteJobs, FollowJobs
from suanwang.lifecycle.jobs import JobSource, ProviderJobs
from suanwang.lifecycle.market_view import LivenessRule, MarketView
from suanwang.lifecycle.marketplace import Marketplace
from suanwang.lifecycle.match import MatchStep
from suanwang.lifecycle.outbox import Outbox
from suanwang.lifecycle.receipts import MatchReceipts
from suanwang.scheduling.base import Executor
from suanwang.storage.models import Node


@dataclass
class Orchestrator:
    ctx: StepContext
    marketplace: Marketplace
    executor: Executor
    content: ContentStore
    jobs_source: JobSource
    executor_nodes: Callable[[Node], str | None] = lambda node: None
    auto_confirm: bool = True
    matching: Literal["online", "batch"] = "online"
    clearing_interval_s: float = 0.5
    batch_size: int = 50
    liveness: LivenessRule = field(default_factory=LivenessRule)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _synced_at: tuple[int, int | None] | None = None  # (head, indexed block) the engine's policy was read at

    def __post_init__(self) -> None:
        ctx = self.ctx
        self.biller = Biller(ctx.chain.market, self.marketplace)
        self.view = MarketView(ctx, self.marketplace, self.biller, liveness=self.liveness)
        self.outbox = Outbox(ctx)
        self.jobs = ProviderJobs(ctx, self.outbox, self.executor, self.jobs_source, self.executor_nodes)
        self.match = MatchStep(ctx, self.view, self.biller, self.matching, self.clearing_interval_s, self.batch_size)
        self.receipts = MatchReceipts(ctx, self.view, self.match, self.jobs)
        self.release = ReleaseFinished(ctx, self.view)
        self.follow = FollowJobs(ctx, self.executor, self.content)
        self.complete = CompleteJobs(ctx, self.outbox)
        self.settle = SettleCompleted(ctx, self.outbox, self.auto_confirm)
        self.timeout = TimeoutExpired(ctx, self.outbox)
        self.orphans = CancelOrphanJobs(ctx, self.executor)

    @property
    def contracts(self) -> dict[str, Any]:
        return self.ctx.chain.raw

    @property
    def agents(self) -> Any:
        """The keys this process holds (the API reads the matcher's address)."""
        return self.ctx.keys

    @property
    def matcher_address(self) -> str:
        return self.ctx.keys.matcher_sender().address

    def caught_up(self) -> bool:
        return self.ctx.caught_up()

    def tick(self) -> None:
        """One pass of each kind, in order (tests and the replay; the service runs them in threads)."""
        self.match_tick()
        self.jobs.wait_for_dispatch()
        self.job_tick()
        self.deal_tick()

    def match_tick(self) -> None:
        with self._lock:
            head, head_moved = self.ctx.head("match")
            # Read the cursor before the members and nodes: then the engine's view is at least as new
            # as the block the cursor names, and matching on it cannot miss a seller or a node.
            indexed = self.ctx.indexed_block()
            chain_moved, self._synced_at = (head.number, indexed) != self._synced_at, (head.number, indexed)
            with self.ctx.sessions() as session:
                engine = self.view.sync(session, chain_moved)
            self.receipts.tick(head_moved, indexed)
            if indexed is not None and indexed >= head.number - self.ctx.confirmations:
                self.match.tick(engine, head)
            self.release.tick()

    def deal_tick(self) -> None:
        head, head_moved = self.ctx.head("deal")
        self.outbox.tick(head_moved)
        self.jobs.tick()
        self.complete.tick()
        self.settle.tick(head)
        self.timeout.tick(head)
        self.orphans.tick()

    def job_tick(self) -> None:
        self.follow.tick()

    def quote(self, order: dict[str, Any], access_point: str, limit: int = 5) -> tuple[list[dict[str, Any]], list[str]]:
        """The cheapest nodes that would take `order` now, each with its full bill and route."""
        with self._lock, self.ctx.sessions() as session:
            engine = self.view.sync(session)
            return self.match.quote(engine, session, order, access_point, limit)

    def wait_for_dispatch(self) -> None:
        self.jobs.wait_for_dispatch()

    def close(self) -> None:
        """Lets the job submissions already sent on receipts finish, and takes no more."""
        self.jobs.close()
