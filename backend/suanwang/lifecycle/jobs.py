"""The provider's dispatch step: for each accepted deal on a node whose seller's key this process holds,
the job the buyer signed for goes to the executor once (keyed by the deal), then `start` is sent; a job
the executor can never run is declined before the start deadline instead (no slash: nothing promised
was broken). The job's specification is fetched by the digest in the signed order (`JobSource`) and opened
with the node's key (docs/content.md, Privacy); one the node cannot open is declined the same way."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from suanwang.chain.bill import unpack_deal
from suanwang.chain.projections import indexed_seats
from suanwang.content import ContentStore, cid_of_digest
from suanwang.errors import InfeasibleError, InputError, NotFoundError
from suanwang.lifecycle.context import StepContext, now
from suanwang.lifecycle.keys import Keyring
from suanwang.lifecycle.outbox import Outbox
from suanwang.lifecycle.resources import Bought, given_for
from suanwang.privacy import EnvelopeError, KeyPair, NotSpecificationError, Recipient, node_key_pair
from suanwang.privacy.documents import open_spec, recipients_json, result_recipients
from suanwang.scheduling.base import Executor, ExecutorNode, JobSpec, JobState
from suanwang.states import DealCall, DealStatus, OrderState
from suanwang.storage.models import Job, Node
from suanwang.storage.repositories import Repositories

log = logging.getLogger(__name__)

REFUSED = "refused"  # the job id of a job the executor would not take
SUBMIT_WORKERS = 8


@dataclass(frozen=True)
class JobOrder:
    """What a deal's job needs from the signed order: its executor key, its command, what it bought and who
    its result is sealed to (none: stored as it is, for a job that had no sealed specification)."""

    key: str
    command: list[str]
    bought: Bought
    result_to: tuple[Recipient, ...] = ()


class JobSource(Protocol):
    def job_for(self, session: Session, deal_id: str) -> JobOrder | None:
        """The deal's job, or None when its order is not (or no longer) matched here."""
        ...


def job_key(deal_id: str, match: int | str = 1) -> str:
    """The executor's key for a deal's job: the deal's, and when a reorg undid a match that had sent a job,
    the match's too (an executor refuses a second job under one key)."""
    key = f"deal-{deal_id[2:18]}"
    return key if match == 1 else f"{key}-m{match}"


def signed_command(
    content: ContentStore, spec_digest: str, node_id: int, node_key: KeyPair
) -> tuple[list[str], tuple[Recipient, ...]]:
    """The job's command from the sealed specification the buyer signed the digest of (the store checks the
    bytes), opened with the node's key, and who its result is sealed to: the buyer's result key and this
    node. An EnvelopeError when this node cannot open it (not sealed to it, damaged, not a specification)."""
    spec = open_spec(content.get(cid_of_digest(spec_digest)), node_key)
    return spec.command, result_recipients(spec.result_key, node_id, node_key.public_key)


EX_DATAERR = 65  # sysexits.h: "the input data was incorrect in some way"


def unreadable(key: str, deal_id: str, exc: EnvelopeError, bought: Bought, node_id: int, node_key: KeyPair) -> JobOrder:
    """The job of a deal whose specification this provider cannot use.

    Sealed to this node, opened, but not a job (the buyer sealed something else): the provider did its
    part, so a job on the bought resources says so on its standard error and exits EX_DATAERR; the deal is
    completed as delivered, and the buyer pays for its minimum run. Declining instead would count against
    the provider's reliability, and let any buyer lower it at will. Its result is sealed to the node alone:
    the buyer's result key is in what did not parse.

    Not sealed to this node, or damaged (the matcher's fault, or the bytes'): an empty command, which the
    executor refuses, so the deal is declined before its start deadline (not slashed: nothing it could run
    was promised)."""
    if isinstance(exc, NotSpecificationError):
        log.warning("%s: the sealed specification is not a job (%s); running a job that says so", deal_id, exc.message)
        report = ["sh", "-c", f'printf "%s\\n" "$1" >&2; exit {EX_DATAERR}', "suanwang", f"no job ran: {exc.message}"]
        return JobOrder(key, report, bought, (Recipient(node_key.public_key, node=node_id),))
    log.warning("%s: the sealed specification does not open (%s); declining", deal_id, exc.message)
    return JobOrder(key, [], Bought(0, 0))


@dataclass
class NodeKeys:
    """The node key pair of each seller whose account key this process holds (`privacy.keys`)."""

    keys: Keyring
    chain_id: int
    _pairs: dict[str, KeyPair] = field(default_factory=dict)

    def of(self, seller: str) -> KeyPair | None:
        sender = self.keys.for_address(seller)
        if sender is None:
            return None
        if seller.lower() not in self._pairs:
            self._pairs[seller.lower()] = node_key_pair(sender.account.key, self.chain_id)
        return self._pairs[seller.lower()]


@dataclass
class ServiceOrders:
    """The order as the service that received it stores it (the in-process provider of the dev chain, which
    opens the specification with the demo seller's node key it derives from the seller's key it holds)."""

    content: ContentStore
    node_keys: NodeKeys

    def job_for(self, session: Session, deal_id: str) -> JobOrder | None:
        repos = Repositories(session)
        record = repos.orders.get(deal_id)
        if record is not None and record.state != OrderState.ON_CHAIN:
            return None
        if record is None:  # matched by another matcher: nothing signed to run here
            return JobOrder(job_key(deal_id), ["true"], Bought(logic_mcu=0, memory_mib=256))
        key = job_key(deal_id, record.attempts)
        node = repos.nodes.get(record.node_id) if record.node_id is not None else None
        node_key = self.node_keys.of(node.owner) if node is not None else None
        if node is None or node_key is None:
            return None  # not a node whose seller's key this process holds: its own agent runs it
        try:
            command, result_to = signed_command(self.content, record.order["specDigest"], node.node_id, node_key)
        except EnvelopeError as exc:
            return unreadable(key, deal_id, exc, Bought.of(record.order), node.node_id, node_key)
        return JobOrder(key, command, Bought.of(record.order), result_to)


@dataclass
class ProviderJobs:
    ctx: StepContext
    outbox: Outbox
    executor: Executor
    source: JobSource
    executor_nodes: Callable[[Node], str | None] = lambda node: None
    _locks: tuple[threading.Lock, ...] = field(default_factory=lambda: tuple(threading.Lock() for _ in range(64)))
    # Jobs sent on a match's receipt are submitted by these workers, so the match pass goes on matching
    # while sbatch runs; the deal ids being submitted are kept until their Job row is written.
    _workers: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(SUBMIT_WORKERS, thread_name_prefix="suanwang-dispatch")
    )
    _dispatching: set[str] = field(default_factory=set)
    _dispatching_lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> None:
        # Only the deals of sellers whose key this process holds are read: another provider's agent runs the rest.
        with self.ctx.sessions() as session:
            deals = Repositories(session).deals.with_status(DealStatus.ACCEPTED, self.ctx.keys.addresses)
        ours = [(deal, seller) for deal in deals if (seller := self.ctx.keys.for_address(deal.seller)) is not None]
        submitted = self._submit_all([(deal.id, deal.node_id, int(deal.deal["duration"])) for deal, _ in ours])
        for (deal, seller), ok in zip(ours, submitted, strict=True):
            if ok is None:
                continue  # its order is not (or no longer) on chain here: a later pass decides
            self.outbox.send(seller, DealCall.START if ok else DealCall.DECLINE, deal.deal)

    def _submit_all(self, deals: list[tuple[str, int, int]]) -> list[bool | None]:
        if not deals:
            return []
        with ThreadPoolExecutor(max_workers=SUBMIT_WORKERS) as pool:
            return list(pool.map(lambda deal: self.ensure_job(*deal), deals))

    def ensure_job(self, deal_id: str, node_id: int, duration_s: int) -> bool | None:
        """Submits the deal's job once; False when the executor refuses it for good, None when the order
        is not matched here (a reorg undid its match: `MatchReceipts` holds the same lock)."""
        with self._lock(deal_id), self.ctx.sessions.begin() as session:
            repos = Repositories(session)
            existing = repos.jobs.get(deal_id)
            if existing is not None:
                return existing.state != JobState.FAILED.value or existing.job_id != REFUSED
            job = self.source.job_for(session, deal_id)
            if job is None:
                return None
            node = repos.nodes.get(node_id)
            executor_node = self.executor_nodes(node) if node is not None else None
            given = given_for(job.bought, node.logic_mcu if node is not None else 0, self._executor_node(executor_node))
            spec = JobSpec(
                key=job.key,
                command=job.command,
                node=executor_node,
                cpus=given.cpus,
                memory_mib=given.memory_mib,
                gpus=given.gpus,
                gpu_type=given.gpu_type,
                shards=given.shards,
                time_limit_s=duration_s,
                env={"SUANWANG_DEAL": deal_id},
            )
            try:
                job_id, state, reason = self.executor.submit(spec), JobState.PENDING.value, None
            except (InputError, InfeasibleError, NotFoundError) as exc:
                job_id, state, reason = REFUSED, JobState.FAILED.value, f"the executor refused the job: {exc.message}"
            repos.jobs.add(
                Job(
                    deal_id=deal_id,
                    executor=type(self.executor).__name__,
                    executor_node=executor_node,
                    job_id=job_id,
                    state=state,
                    reason=reason,
                    sealed_to=recipients_json(job.result_to) or None,
                    updated_at=now(),
                )
            )
            return job_id != REFUSED

    def _executor_node(self, name: str | None) -> ExecutorNode | None:
        if name is None:
            return None
        return next((n for n in self.executor.nodes() if n.name == name), None)

    # -- on the match's receipt, before the index confirms it (the service's in-process provider) ----------
    def on_matched(self, receipt: Any, matched: set[str]) -> None:
        """Submits, in the background, the jobs of the deals in a mined batch that start accepted on a node
        whose seller's key this process holds: `MatchReceipts` cancels them if a reorg undoes the match."""
        with self.ctx.sessions() as session:
            repos = Repositories(session)
            our_nodes = {node_id for node_id, owner in repos.nodes.owners().items() if self.ctx.keys.for_address(owner)}
            ours = {order_id for order_id, node_id in repos.orders.nodes_of(matched).items() if node_id in our_nodes}
            seats = indexed_seats(session)
        for deal_id, packed in self.ctx.chain.market.matched_deals(receipt, ours) if ours else []:
            try:
                deal = unpack_deal(deal_id, packed, seats)
            except NotFoundError:  # a transit operator seated too recently to be indexed: dispatched once indexed
                continue
            if DealStatus.of(int(deal["status"])) == DealStatus.ACCEPTED:
                self._dispatch_later(deal_id, int(deal["nodeId"]), int(deal["duration"]))

    def _dispatch_later(self, deal_id: str, node_id: int, duration_s: int) -> None:
        with self._dispatching_lock:
            if deal_id in self._dispatching:
                return
            self._dispatching.add(deal_id)
        try:
            self._workers.submit(self._dispatch, deal_id, node_id, duration_s)
        except RuntimeError:  # the workers were shut down (stopping): the deal pass submits it
            with self._dispatching_lock:
                self._dispatching.discard(deal_id)

    def _dispatch(self, deal_id: str, node_id: int, duration_s: int) -> None:
        try:
            self.ensure_job(deal_id, node_id, duration_s)
        except Exception:  # the executor or the database failed: the deal pass submits it once indexed
            log.exception("%s: the job sent on the match's receipt was not submitted", deal_id)
        finally:
            with self._dispatching_lock:
                self._dispatching.discard(deal_id)

    def dispatching(self, deal_id: str) -> bool:
        return deal_id in self._dispatching

    def wait_for_dispatch(self) -> None:
        """Returns once the jobs sent on match receipts so far are submitted (or refused)."""
        while True:
            with self._dispatching_lock:
                if not self._dispatching:
                    return
            threading.Event().wait(0.005)

    def close(self) -> None:
        self._workers.shutdown(wait=True)

    # -- a match undone by a reorg --------------------------------------------------------------------------
    def _lock(self, deal_id: str) -> threading.Lock:
        return self._locks[hash(deal_id) % len(self._locks)]

    @contextlib.contextmanager
    def locked(self, deal_ids: list[str]) -> Iterator[None]:
        with contextlib.ExitStack() as held:
            for lock in sorted({self._lock(d) for d in deal_ids}, key=id):
                held.enter_context(lock)
            yield

    def drop(self, session: Session, deal_id: str) -> None:
        """Cancels and forgets the job of a match a reorg undid: nothing on chain pays for it any more."""
        jobs = Repositories(session).jobs
        job = jobs.get(deal_id)
        if job is not None:
            if not JobState(job.state).is_final:
                self.executor.cancel(job.job_id)
            jobs.drop(job)
