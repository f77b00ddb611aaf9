"""A replay's deals after the match, moved on by the lifecycle's own steps: `TimeoutExpired`, the buyers'
`SettleCompleted`, and the providers' `ProviderJobs`, `FollowJobs` and `CompleteJobs` with a simulated
executor, all over a store that `Indexer` fills from the chain and an `Outbox` that sends the calls. The
replay adds only what no step does: a buyer's dispute when the scenario names one, and the drawn
arbiter's ruling. Its records of the deals (status, payouts, slashes) are read back from the index."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from suanwang.chain.deployment import Deployment
from suanwang.chain.indexer import Indexer
from suanwang.chain.market import TxSender
from suanwang.content import LocalContentStore
from suanwang.lifecycle.closing import SettleCompleted, TimeoutExpired
from suanwang.lifecycle.context import StepContext
from suanwang.lifecycle.follow import CompleteJobs, FollowJobs
from suanwang.lifecycle.jobs import JobOrder, ProviderJobs, job_key
from suanwang.lifecycle.outbox import Outbox
from suanwang.lifecycle.resources import Bought
from suanwang.replay.executor import SimulatedExecutor
from suanwang.replay.members import top_up
from suanwang.replay.records import FINAL, DealState
from suanwang.states import DealCall
from suanwang.storage.db import make_engine, make_sessionmaker
from suanwang.storage.repositories import Repositories

if TYPE_CHECKING:
    from suanwang.replay.runner import Replay


def node_name(node_id: int) -> str:
    """The executor's name of the chain's node `node_id`."""
    return f"node-{node_id}"


@dataclass
class MeteredOutbox(Outbox):
    """The lifecycle's Outbox, keeping each call it sent (function, deal id, transaction) until the replay
    reads its receipt for the report's gas figures."""

    sent_calls: list[tuple[DealCall, str, Any]] = field(default_factory=list)

    def send(self, sender: TxSender, function: DealCall, deal: dict[str, Any], *args: Any) -> bool:
        deal_id = str(deal["id"])
        fresh = not self.in_flight(function, deal_id)
        sent = super().send(sender, function, deal, *args)
        if sent and fresh:
            self.sent_calls.append((function, deal_id, self.transaction(function, deal_id)))
        return sent


@dataclass
class ScenarioJobs:
    """The job of a deal the replay matched: nothing to run but its duration (the executor is simulated)."""

    r: Replay

    def job_for(self, session: Session, deal_id: str) -> JobOrder | None:
        d = self.r.deals.get(deal_id)
        return None if d is None else JobOrder(job_key(deal_id), ["true"], Bought.of(d.plan.order))


class DealSteps:
    """The store, the index and the lifecycle's deal steps of a replay. The store is a SQLite file in the
    replay's output folder, indexed round by round (`Indexer.sync_to_head`) rather than by a thread, so
    that every step reads the chain as it stands after the step before."""

    def __init__(self, r: Replay, deployment: Deployment, store: Path) -> None:
        self.r = r
        for stale in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
            stale.unlink(missing_ok=True)  # an index of an earlier run's chain
        sessions = make_sessionmaker(make_engine(f"sqlite:///{store}"))
        self.ctx = StepContext(r.w3, r.chain, sessions, r.keys)
        self.indexer = Indexer(r.w3, deployment, r.chain.raw, sessions)
        self.outbox = MeteredOutbox(self.ctx)
        self.executor = SimulatedExecutor(
            lambda: r.chain_now, lambda: [node_name(n.node_id) for n in r.nodes if n.registered]
        )
        content = LocalContentStore(store.parent / "results")
        by_node = lambda node: node_name(node.node_id)  # noqa: E731
        self.jobs = ProviderJobs(self.ctx, self.outbox, self.executor, ScenarioJobs(r), executor_nodes=by_node)
        self.follow = FollowJobs(self.ctx, self.executor, content)
        self.complete = CompleteJobs(self.ctx, self.outbox)
        self.settle = SettleCompleted(self.ctx, self.outbox)  # every buyer's key is held: buyers confirm at once
        self.timeouts = TimeoutExpired(self.ctx, self.outbox)
        self._seen_block = 0  # the index's block up to which the deals' records are read back

    def close(self) -> None:
        self.jobs.close()

    # -- one round's phases ----------------------------------------------------------------------------------
    def close_deals(self) -> None:
        """Timeouts, rulings, disputes and settlements, then the jobs followed and their deals completed."""
        self._sync()
        head, _ = self.ctx.head("deal")
        self.timeouts.tick(head)
        self._sync()
        self._arbitrate()
        if self._dispute():
            self._sync()
        self.settle.tick(head)
        self.follow.tick()
        self.complete.tick()
        self._sync()

    def start_deals(self) -> None:
        """The providers' dispatch: each accepted deal's job submitted, then `start` (or `decline`)."""
        self._sync()
        self.jobs.tick()
        self._sync()

    # -- what only the replay does ----------------------------------------------------------------------------
    def _arbitrate(self) -> None:
        """A disputed deal is ruled on by the arbiter the chain drew for it (none until a block after the
        dispute; none at all when no ARBITER member is eligible, and then it times out split in half)."""
        r = self.r
        for d in list(r.deals.values()):
            if d.status != "disputed" or d.dispute is None:
                continue
            arbiter = r.by_address.get(r.market.arbiter_of(d.id, d.packed))
            if arbiter is None:
                continue
            _named, seller_wins = d.dispute
            r.tx(arbiter, "resolve", r.market.resolve(d.id, d.packed, seller_wins), reuse_estimate=True)
            r.counts["resolved"] += 1
            r.note(
                f"{arbiter} (drawn) resolved the dispute on {d.id[:10]}: "
                + ("seller wins, paid, and the buyer's bond" if seller_wins else "buyer wins, compute refunded")
            )
            self._sync()

    def _dispute(self) -> bool:
        """The next completed deal of a buyer with a dispute to come is disputed instead of settled (the
        arbiter the scenario names must not be a party of it)."""
        r = self.r
        disputed = False
        for d in r.deals.values():
            queue = r.pending_disputes.get(d.plan.buyer)
            if d.status != "completed" or not queue or d.valueless:
                continue
            if r.parties[queue[0][0]].address in (d.deal["buyer"], d.deal["seller"]):
                continue
            arbiter, seller_wins, _ = queue.pop(0)
            d.dispute = (arbiter, seller_wins)
            with self.ctx.sessions() as session:
                row = Repositories(session).deals.get(d.id)
                assert row is not None, d.id  # completed, so indexed
                projected = row.deal
            self.outbox.send(r.parties[d.plan.buyer].sender, DealCall.DISPUTE, projected)
            r.counts["disputes"] += 1
            r.note(f"{d.plan.buyer} disputed deal {d.id[:10]} on {d.node.label}")
            disputed = True
        return disputed

    # -- the index read back into the replay's records ------------------------------------------------------
    def _sync(self) -> None:
        self._meter()
        self.indexer.sync_to_head()
        self.outbox.tick(head_moved=True)
        self._read_back()

    def _meter(self) -> None:
        """Waits for the calls sent since the last sync (Anvil mines each in a block of its own, soon after it
        is sent) and records their gas."""
        r = self.r
        for function, deal_id, tx_hash in self.outbox.sent_calls:
            receipt = r.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.005)
            r.gas[function.value].append(int(receipt["gasUsed"]))
            if function == DealCall.TIMEOUT and receipt["status"] == 1:
                d = r.deals[deal_id]
                r.counts["timed_out"] += 1
                d.timed_out_from = d.status
        self.outbox.sent_calls.clear()

    def _read_back(self) -> None:
        r = self.r
        with self.ctx.sessions() as session:
            since = self._seen_block
            deals = Repositories(session).deals
            moved, payouts, slashed = (
                deals.moved_since(since),
                deals.settlements_since(since),
                deals.slashed_since(since),
            )
            self._seen_block = self.ctx.indexed_block() or since
        for row in moved:
            d = r.deals.get(row.id)
            if d is None:
                continue
            if d.status != row.status and row.status == "started":
                d.started_at = r.chain_now
            d.status, d.deadline = row.status, int(row.deadline)
            d.bond = int(row.dispute_bond or 0) if row.status == "disputed" else 0
        for deal_id, payout in payouts.items():
            d = r.deals.get(deal_id)
            if d is not None and payout.outcome != "pending":
                d.compute_paid, d.platform_paid = int(payout.compute_fee), int(payout.platform_fee)
                d.transit_paid = int(payout.transit_total) > 0
        for deal_id in slashed:
            d = r.deals[deal_id]
            d.slashed = True
            top_up(r, d.node.owner)
        for row in moved:
            d = r.deals.get(row.id)
            if d is not None and (d.status == "completed" or d.status in FINAL):
                end_deal(r, d)
                if d.timed_out_from is not None:
                    r.note(
                        f"deal {d.id[:10]} on {d.node.label} timed out from {d.timed_out_from}"
                        + (" (seller slashed)" if d.slashed else "")
                    )
                    d.timed_out_from = None


def end_deal(r: Replay, d: DealState) -> None:
    """The deal no longer holds capacity or bandwidth (completed or final)."""
    if d.id in r.engine.reservations:
        r.engine.release(d.id)
    if d.reservation is not None:
        r.network.release(d.reservation)
        d.reservation = None
