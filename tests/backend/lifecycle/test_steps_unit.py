"""The lifecycle's steps against the chain and repository seams, without Anvil: a recording stand-in for
the typed gateway and the keys (their real sides are tested on Anvil in tests/backend/chain, agents and
lifecycle), and the real repositories over a SQLite store. Each test says what a step must do, and must
not do, given what the store holds."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from suanwang.content import LocalContentStore
from suanwang.errors import InputError
from suanwang.lifecycle.closing import SettleCompleted, TimeoutExpired
from suanwang.lifecycle.context import ChainHead, StepContext
from suanwang.lifecycle.follow import ACCOUNTING_WAIT_S, CompleteJobs, FollowJobs
from suanwang.lifecycle.jobs import REFUSED, JobOrder, ProviderJobs
from suanwang.lifecycle.outbox import Outbox
from suanwang.lifecycle.receipts import MatchReceipts
from suanwang.lifecycle.resources import Bought
from suanwang.scheduling.base import JobAccounting, JobSpec, JobState, JobStatus
from suanwang.states import DealCall, DealStatus
from suanwang.storage.db import make_engine, make_sessionmaker
from suanwang.storage.models import Deal, Job, OrderRecord
from suanwang.storage.repositories import Repositories

SELLER, OTHER_SELLER, BUYER, MATCHER = ("0x" + c * 40 for c in "abcd")
NOW = 1_800_000_000


@dataclass
class Sender:
    address: str
    sent: list[tuple[str, str, tuple[Any, ...]]] = field(default_factory=list)

    def submit(self, call: tuple[str, str, tuple[Any, ...]], **_: Any) -> bytes:
        self.sent.append(call)
        return bytes(32)

    def poll(self, _tx_hash: Any, _at: float) -> dict[str, int]:
        return {"blockNumber": 1}


@dataclass
class Keys:
    """The keys a process holds: `held` of the four senders."""

    held: tuple[str, ...]
    senders: dict[str, Sender] = field(
        default_factory=lambda: {a: Sender(a) for a in (SELLER, OTHER_SELLER, BUYER, MATCHER)}
    )

    @property
    def addresses(self) -> list[str]:
        return list(self.held)

    def for_address(self, address: str) -> Sender | None:
        return self.senders[address] if address in self.held else None

    def only_or_matcher(self) -> Sender:
        return self.senders[MATCHER] if MATCHER in self.held else self.senders[self.held[0]]

    def calls(self) -> list[tuple[str, str, str]]:
        """(sender, function, deal id) of every call sent, in order."""
        return [(a, f, d) for a, s in self.senders.items() for f, d, _ in s.sent]


class Market:
    """The gateway's MarketContract as the steps use it: a deal call is returned unsent, as data."""

    def deal_call(
        self, function: DealCall, deal_id: bytes, _packed: bytes, *args: Any
    ) -> tuple[str, str, tuple[Any, ...]]:
        return (function.value, "0x" + deal_id.hex(), args)


@dataclass
class Executor:
    """Takes jobs, or refuses them (`refuse`), and reports the statuses it is told."""

    refuse: bool = False
    submitted: list[JobSpec] = field(default_factory=list)
    states: dict[str, JobStatus] = field(default_factory=dict)
    records: dict[str, JobAccounting] = field(default_factory=dict)
    has_accounting: bool = False

    def submit(self, spec: JobSpec) -> str:
        if self.refuse:
            raise InputError("no such node here", field="node")
        self.submitted.append(spec)
        return f"job-{len(self.submitted)}"

    def statuses(self, job_ids: list[str]) -> dict[str, JobStatus]:
        return {j: self.states.get(j, JobStatus(JobState.PENDING)) for j in job_ids}

    def cancel(self, job_id: str) -> None:
        self.states[job_id] = JobStatus(JobState.CANCELLED)

    def accounting(self, job_id: str) -> JobAccounting | None:
        return self.records.get(job_id)


@dataclass
class Orders:
    def job_for(self, _session: Any, deal_id: str) -> JobOrder | None:
        return JobOrder(f"deal-{deal_id[2:10]}", ["echo", "hi"], Bought(logic_mcu=1, memory_mib=512))


def deal_id(n: int) -> str:
    return "0x" + f"{n:064x}"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    return make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'store.db'}"))


def add_deal(store: Any, n: int, status: DealStatus, seller: str = SELLER, deadline: int = NOW + 600) -> str:
    with store.begin() as session:
        session.add(
            Deal(
                id=deal_id(n),
                buyer=BUYER,
                seller=seller,
                matcher=MATCHER,
                node_id=1,
                status=status,
                deadline=deadline,
                deal={"id": deal_id(n), "packed": "0x00", "duration": 600},
                valueless=False,
                matched_block=1,
                updated_block=1,
            )
        )
    return deal_id(n)


def context(store: Any, *held: str) -> StepContext:
    chain = type("Gateway", (), {"market": Market()})()
    return StepContext(w3=cast(Any, None), chain=cast(Any, chain), sessions=store, keys=cast(Any, Keys(held)))


def keys(ctx: StepContext) -> Keys:
    return cast(Keys, ctx.keys)


def test_timeout_is_sent_for_the_expired_deals_only(store: Any) -> None:
    late = add_deal(store, 1, DealStatus.ACCEPTED, deadline=NOW - 1)
    add_deal(store, 2, DealStatus.ACCEPTED, deadline=NOW + 1)
    add_deal(store, 3, DealStatus.SETTLED, deadline=NOW - 1)  # final: no deadline to pass
    ctx = context(store, MATCHER)
    TimeoutExpired(ctx, Outbox(ctx)).tick(ChainHead(10, NOW, 30_000_000))
    assert keys(ctx).calls() == [(MATCHER, "timeout", late)]


def test_a_buyer_settles_at_once_and_anyone_only_after_the_dispute_window(store: Any) -> None:
    open_window = add_deal(store, 1, DealStatus.COMPLETED, deadline=NOW + 60)
    ctx = context(store, MATCHER)
    step = SettleCompleted(ctx, Outbox(ctx))
    step.tick(ChainHead(10, NOW, 30_000_000))
    assert keys(ctx).calls() == []  # the buyer may still dispute
    step.tick(ChainHead(11, NOW + 61, 30_000_000))
    assert keys(ctx).calls() == [(MATCHER, "settle", open_window)]
    buyer_ctx = context(store, BUYER)
    SettleCompleted(buyer_ctx, Outbox(buyer_ctx)).tick(ChainHead(10, NOW, 30_000_000))
    assert keys(buyer_ctx).calls() == [(BUYER, "settle", open_window)]


def test_a_call_in_flight_is_not_sent_twice(store: Any) -> None:
    late = add_deal(store, 1, DealStatus.STARTED, deadline=NOW - 1)
    ctx = context(store, MATCHER)
    step = TimeoutExpired(ctx, Outbox(ctx))
    for _ in range(3):
        step.tick(ChainHead(10, NOW, 30_000_000))
    assert keys(ctx).calls() == [(MATCHER, "timeout", late)]


def test_a_provider_runs_only_its_own_deals_once_and_starts_them(store: Any) -> None:
    mine = add_deal(store, 1, DealStatus.ACCEPTED)
    add_deal(store, 2, DealStatus.ACCEPTED, seller=OTHER_SELLER)
    ctx, executor = context(store, SELLER), Executor()
    step = ProviderJobs(ctx, Outbox(ctx), cast(Any, executor), Orders())
    step.tick()
    step.tick()
    assert [spec.key for spec in executor.submitted] == [f"deal-{mine[2:10]}"]
    assert keys(ctx).calls() == [(SELLER, "start", mine)]
    with store() as session:
        job = Repositories(session).jobs.get(mine)
        assert job is not None and job.state == JobState.PENDING.value


def test_a_job_the_executor_refuses_is_declined_not_started(store: Any) -> None:
    mine = add_deal(store, 1, DealStatus.ACCEPTED)
    ctx = context(store, SELLER)
    ProviderJobs(ctx, Outbox(ctx), cast(Any, Executor(refuse=True)), Orders()).tick()
    assert keys(ctx).calls() == [(SELLER, "decline", mine)]
    with store() as session:
        job = Repositories(session).jobs.get(mine)
        assert job is not None and job.job_id == REFUSED


def test_a_job_that_ran_is_completed_with_its_result_whatever_its_exit_code(store: Any, tmp_path: Path) -> None:
    mine = add_deal(store, 1, DealStatus.STARTED)
    output = tmp_path / "out.txt"
    output.write_bytes(b"partial output")
    with store.begin() as session:
        session.add(Job(deal_id=mine, executor="x", job_id="job-1", state="running", updated_at=datetime.now(UTC)))
    ctx = context(store, SELLER)
    content = LocalContentStore(tmp_path / "content")
    executor = Executor(
        states={"job-1": JobStatus(JobState.FAILED, exit_code=3, result_path=str(output), ran_to_end=True)}
    )
    FollowJobs(ctx, cast(Any, executor), content).tick()
    CompleteJobs(ctx, Outbox(ctx)).tick()
    ((sender, function, deal, args),) = [(a, f, d, x) for a, s in keys(ctx).senders.items() for f, d, x in s.sent]
    assert (sender, function, deal) == (SELLER, "complete", mine)
    document = content.get(args[0])
    assert b'"exit_code": 3' in document


def test_the_result_waits_for_the_schedulers_record_and_carries_it(store: Any, tmp_path: Path) -> None:
    """A job's outcome comes from accounting: no result (so no `complete`) until the executor's record of
    it is there, then the document holds what Slurm allocated and metered."""
    mine = add_deal(store, 1, DealStatus.STARTED)
    with store.begin() as session:
        session.add(Job(deal_id=mine, executor="x", job_id="job-1", state="running", updated_at=datetime.now(UTC)))
    ctx = context(store, SELLER)
    content = LocalContentStore(tmp_path / "content")
    ended = JobStatus(JobState.FAILED, exit_code=3, finished_at=time.time(), ran_to_end=True)
    executor = Executor(states={"job-1": ended}, has_accounting=True)
    FollowJobs(ctx, cast(Any, executor), content).tick()
    CompleteJobs(ctx, Outbox(ctx)).tick()
    assert keys(ctx).calls() == []  # slurmdbd has not written the record yet
    executor.records["job-1"] = JobAccounting(
        state=JobState.FAILED,
        scheduler_state="FAILED",
        exit_code=3,
        signal=None,
        elapsed_s=7.0,
        cpu_time_s=6.5,
        max_rss_bytes=168_564 * 1024,
        alloc_tres={"cpu": 2, "mem": 2048 * 1024**2, "node": 1, "gres/shard": 2},
        node="n2",
        started_at=1.0,
        finished_at=8.0,
    )
    FollowJobs(ctx, cast(Any, executor), content).tick()
    CompleteJobs(ctx, Outbox(ctx)).tick()
    ((_sender, _function, _deal, args),) = [(a, f, d, x) for a, s in keys(ctx).senders.items() for f, d, x in s.sent]
    document = json.loads(content.get(args[0]))
    assert document["given"] == {"cpus": 2, "memory_mib": 2048, "gpus": 0, "gpu_type": None, "shards": 2}
    assert document["accounting"]["elapsed_s"] == 7.0 and document["accounting"]["max_rss_bytes"] == 172609536
    assert document["exit_code"] == 3


def test_a_lost_accounting_record_does_not_hold_the_completion_forever(store: Any, tmp_path: Path) -> None:
    mine = add_deal(store, 1, DealStatus.STARTED)
    with store.begin() as session:
        session.add(Job(deal_id=mine, executor="x", job_id="job-1", state="running", updated_at=datetime.now(UTC)))
    ctx = context(store, SELLER)
    content = LocalContentStore(tmp_path / "content")
    long_ago = time.time() - ACCOUNTING_WAIT_S - 1
    ended = JobStatus(JobState.COMPLETED, exit_code=0, finished_at=long_ago, ran_to_end=True)
    FollowJobs(ctx, cast(Any, Executor(states={"job-1": ended}, has_accounting=True)), content).tick()
    CompleteJobs(ctx, Outbox(ctx)).tick()
    ((_sender, _function, _deal, args),) = [(a, f, d, x) for a, s in keys(ctx).senders.items() for f, d, x in s.sent]
    assert json.loads(content.get(args[0]))["accounting"] is None


def test_a_job_that_did_not_run_to_its_end_is_not_completed(store: Any) -> None:
    mine = add_deal(store, 1, DealStatus.STARTED)
    with store.begin() as session:
        session.add(Job(deal_id=mine, executor="x", job_id="job-1", state="running", updated_at=datetime.now(UTC)))
    ctx = context(store, SELLER)
    executor = Executor(states={"job-1": JobStatus(JobState.FAILED, exit_code=137, ran_to_end=False)})
    FollowJobs(ctx, cast(Any, executor), LocalContentStore(Path("/nonexistent"))).tick()
    CompleteJobs(ctx, Outbox(ctx)).tick()
    assert keys(ctx).calls() == []


class RefusedMarket:
    """A batch receipt whose every match failed with `error`; the chain says the order's status is `status`."""

    def __init__(self, error: str, status: DealStatus) -> None:
        self.error, self.status = error, status

    def match_failures(self, _receipt: Any) -> dict[str, bytes]:
        return {deal_id(1): b"revert"}

    def status_of(self, _order_id: str) -> tuple[DealStatus, int]:
        return self.status, 0


@pytest.mark.parametrize(("status", "state"), [(DealStatus.ACCEPTED, "on_chain"), (DealStatus.CANCELLED, "unmatched")])
def test_a_rematch_refused_because_the_first_match_came_back_keeps_the_order_on_chain(
    store: Any, status: DealStatus, state: str
) -> None:
    """A reorganisation took a match back and the service matched the order again; meanwhile the first
    match was mined again, so the market refuses the second with OrderAlreadyUsed. The order stands on
    chain: it is not 'unmatched' (unless the buyer cancelled it)."""
    with store.begin() as session:
        session.add(
            OrderRecord(id=deal_id(1), buyer=BUYER, order={}, signature="0x", access_point="a", spec_cid="b",
                        state="submitting", attempts=2, created_at=datetime.now(UTC), updated_at=datetime.now(UTC))
        )  # fmt: skip
    decoder = type(
        "Decoder",
        (),
        {"decode": staticmethod(lambda _data: type("Revert", (), {"name": "OrderAlreadyUsed", "message": "used"})())},
    )()
    chain = type("Gateway", (), {"market": RefusedMarket("OrderAlreadyUsed", status), "decoder": decoder})()
    ctx = StepContext(w3=cast(Any, None), chain=cast(Any, chain), sessions=store, keys=cast(Any, Keys((MATCHER,))))
    view = type("View", (), {"unreserve": staticmethod(lambda *_: None)})()
    receipts = MatchReceipts(ctx, cast(Any, view), cast(Any, None))
    assert receipts._record([deal_id(1)], {"logs": []}) == set()
    with store() as session:
        record = Repositories(session).orders.get(deal_id(1))
        assert record is not None and record.state == state
