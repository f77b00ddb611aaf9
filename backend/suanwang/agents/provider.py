"""`suanwang agent provider`: a seller's own agent. With the seller's key alone, for the deals on its nodes
it runs the job the buyer signed for on its executor (or declines it before the start deadline), follows
it, completes the deal with the result, settles it once the dispute window passed if nobody else did,
and withdraws what it earned. It learns what the buyer signed from the match transaction itself
(`chain.signed_orders`) and fetches the job's specification by that digest from the content store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from suanwang.agents.base import AgentRuntime
from suanwang.chain.signed_orders import signed_order_of
from suanwang.content import ContentStore
from suanwang.content.errors import ContentNotFoundError
from suanwang.errors import SuanwangError
from suanwang.lifecycle.closing import CancelOrphanJobs, SettleCompleted
from suanwang.lifecycle.follow import CompleteJobs, FollowJobs
from suanwang.lifecycle.jobs import JobOrder, ProviderJobs, _spec, job_key
from suanwang.lifecycle.outbox import Outbox
from suanwang.scheduling.base import Executor, JobState
from suanwang.storage.models import Node
from suanwang.storage.repositories import Repositories

log = logging.getLogger(__name__)

WITHDRAW_EVERY_S = 5.0


@dataclass
class ChainOrders:
    """A deal's job from the order its match transaction carried (checked against the deal's id)."""

    runtime: AgentRuntime
    content: ContentStore

    def job_for(self, session: Session, deal_id: str) -> JobOrder | None:
        deal = Repositories(session).deals.get(deal_id)
        if deal is None:
            return None  # not (or no longer) in this agent's index: a reorg undid it
        key = job_key(deal_id, f"b{deal.matched_block}")  # a re-match after a reorg gets a key of its own
        ctx = self.runtime.ctx
        try:
            order = signed_order_of(ctx.chain.market, deal_id, deal.matched_block, self.runtime.deployment.chain_id)
            command = _spec(self.content, order["specDigest"])
        except (SuanwangError, ContentNotFoundError) as exc:
            # Nothing this provider can run: the executor refuses an empty command and the deal is declined.
            log.warning("%s: no job to run (%s); declining", deal_id, getattr(exc, "message", exc))
            return JobOrder(key, [], 0)
        return JobOrder(key, command, int(order["memoryMib"]))


@dataclass
class DropUndoneJobs:
    """A job whose deal left this agent's index (a reorg undid the match it was sent on) is cancelled
    and forgotten; the re-match, if any, runs under a key of its own."""

    runtime: AgentRuntime
    executor: Executor

    def tick(self) -> None:
        with self.runtime.ctx.sessions.begin() as session:
            jobs = Repositories(session).jobs
            for job in jobs.without_deal():
                log.warning("%s: its match was undone by a reorg; cancelling its job", job.deal_id)
                if not JobState(job.state).is_final:
                    self.executor.cancel(job.job_id)
                jobs.drop(job)


@dataclass
class Withdraw:
    """Takes what the agent's account earned out of the market's escrow."""

    runtime: AgentRuntime
    _last: float = field(default=0.0)

    def tick(self) -> None:
        if time.monotonic() - self._last < WITHDRAW_EVERY_S:
            return
        self._last = time.monotonic()
        market, sender = self.runtime.ctx.chain.market, self.runtime.ctx.keys.only_or_matcher()
        balance = market.balance_of(sender.address)
        if balance > 0:
            sender.send(market.withdraw(balance))
            log.info("withdrew %d", balance)


def provider_steps(
    runtime: AgentRuntime,
    executor: Executor,
    content: ContentStore,
    executor_nodes: Callable[[Node], str | None],
    withdraw: bool = True,
) -> list[Callable[[], None]]:
    ctx = runtime.ctx
    outbox = Outbox(ctx)
    jobs = ProviderJobs(ctx, outbox, executor, ChainOrders(runtime, content), executor_nodes)
    follow = FollowJobs(ctx, executor, content)
    complete = CompleteJobs(ctx, outbox)
    settle = SettleCompleted(ctx, outbox, buyers_confirm=False)
    orphans = CancelOrphanJobs(ctx, executor)
    undone = DropUndoneJobs(runtime, executor)

    def deals() -> None:
        head, moved = ctx.head("deal")
        outbox.tick(moved)
        undone.tick()
        jobs.tick()
        complete.tick()
        settle.tick(head)
        orphans.tick()

    steps: list[Callable[[], None]] = [deals, follow.tick]
    if withdraw:
        steps.append(Withdraw(runtime).tick)
    return steps
