"""`suanwang agent provider`: a seller's own agent. With the seller's key alone, for the deals on its nodes
it runs the job the buyer signed for on its executor (or declines it before the start deadline), follows
it, completes the deal with the result, settles it once the dispute window passed if nobody else did,
and withdraws what it earned. It learns what the buyer signed from the match transaction itself
(`chain.signed_orders`) and fetches the job's specification by that digest from the content store; it opens
it with the node key it derives from its own key, and seals the result to the buyer (docs/content.md)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from suanwang.agents.base import AgentRuntime
from suanwang.chain.signed_orders import NotSignedMatch, match_transaction, signed_orders_in
from suanwang.config import Settings
from suanwang.content import ContentStore
from suanwang.content.errors import ContentNotFoundError, ContentUnavailableError
from suanwang.errors import SuanwangError
from suanwang.lifecycle.closing import CancelOrphanJobs, SettleCompleted
from suanwang.lifecycle.follow import CompleteJobs, FollowJobs
from suanwang.lifecycle.jobs import JobOrder, ProviderJobs, job_key, signed_command, unreadable
from suanwang.lifecycle.outbox import Outbox
from suanwang.lifecycle.resources import Bought
from suanwang.privacy import EnvelopeError, KeyPair, node_key_pair
from suanwang.scheduling.base import Executor, JobState
from suanwang.storage.models import Node
from suanwang.storage.repositories import Repositories

log = logging.getLogger(__name__)

WITHDRAW_EVERY_S = 5.0
MATCH_TRANSACTIONS_KEPT = 64  # decoded match batches kept: a batch's deals are dispatched together


# A spec the agent cannot get yet (the match's block being replaced, the content store down) is asked for
# again on later passes; this close to the start deadline the deal is declined instead of slashed.
DECLINE_MARGIN_S = 120


@dataclass
class ChainOrders:
    """A deal's job from the order its match transaction carried (checked against the deal's id)."""

    runtime: AgentRuntime
    content: ContentStore
    _orders: OrderedDict[str, dict[str, dict[str, Any]]] = field(default_factory=OrderedDict)  # by match tx
    _node_key: KeyPair | None = None

    def node_key(self) -> KeyPair:
        """This seller's node key pair, derived from its own account key (what its nodes' encryptionKey is)."""
        if self._node_key is None:
            own = self.runtime.ctx.keys.only_or_matcher().account.key
            self._node_key = node_key_pair(own, self.runtime.deployment.chain_id)
        return self._node_key

    def job_for(self, session: Session, deal_id: str) -> JobOrder | None:
        deal = Repositories(session).deals.get(deal_id)
        if deal is None:
            return None  # not (or no longer) in this agent's index: a reorg undid it
        key = job_key(deal_id, f"b{deal.matched_block}")  # a re-match after a reorg gets a key of its own
        try:
            order = self._signed_order(deal_id, deal.matched_block)
            command, result_to = signed_command(self.content, order["specDigest"], deal.node_id, self.node_key())
            return JobOrder(key, command, Bought.of(order), result_to)
        except NotSignedMatch as exc:  # for good: nothing this provider can run
            log.warning("%s: %s; declining", deal_id, exc.message)
        except EnvelopeError as exc:  # for good: this node cannot read what it was asked to run
            return unreadable(key, deal_id, exc, Bought.of(order), deal.node_id, self.node_key())
        except (SuanwangError, ContentNotFoundError, ContentUnavailableError) as exc:
            now = self.runtime.ctx.head("spec")[0].timestamp
            if now < deal.deadline - DECLINE_MARGIN_S:
                log.info("%s: no job yet (%s); asking again", deal_id, getattr(exc, "message", exc))
                return None
            log.warning("%s: no job before the start deadline (%s); declining", deal_id, getattr(exc, "message", exc))
        # The executor refuses an empty command: the deal is declined, not slashed.
        return JobOrder(key, [], Bought(0, 0))

    def _signed_order(self, deal_id: str, block: int) -> dict[str, Any]:
        market = self.runtime.ctx.chain.market
        tx_hash = match_transaction(market, deal_id, block)
        if tx_hash not in self._orders:
            self._orders[tx_hash] = signed_orders_in(market, tx_hash, self.runtime.deployment.chain_id)
            while len(self._orders) > MATCH_TRANSACTIONS_KEPT:
                self._orders.popitem(last=False)
        order = self._orders[tx_hash].get(deal_id.lower())
        if order is None:
            raise NotSignedMatch(f"the transaction that matched {deal_id} carries no order with its digest")
        return order


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
    settings: Settings | None = None,
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

    # Imported here so this function is the whole of the metrics' wiring in this module.
    from suanwang.agents.node_metrics import ReportNodeMetrics

    metrics = ReportNodeMetrics.of(runtime, executor, executor_nodes, settings)
    steps: list[Callable[[], None]] = [deals, follow.tick, metrics.tick]
    if withdraw:
        steps.append(Withdraw(runtime).tick)
    return steps
