"""The order lifecycle orchestrator.

Each `tick` moves every order and deal one step further, reading where things stand from the database
(the chain's index plus the service's own off-chain state) and from the chain itself. Every step is
idempotent, so a tick interrupted anywhere (a crash, a kill) is simply run again after a restart.
A tick never waits for a block: it sends its transactions and a later tick collects their receipts
(a transaction in flight is not sent again), so one slow block does not hold up the other orders:

  new order ──engine──> submitting ──matchSignedBatch──> on_chain (the deal is indexed)
                  └──> unmatched (with the engine's explanation)
  deal accepted (seller is ours) ──> job submitted (key = deal id) + path reserved ──start()──> started
    (the job is submitted as soon as the match's receipt shows the deal accepted, before the index
    confirms it; if a reorganisation undoes the match, the job is cancelled and the order unmatched)
  job ran to its end, whatever its exit code ──result document (exit code, output) into the content store──
    complete(cid)──> completed (a job that never ran to its end is not delivered: the deal times out)
  completed ──buyer's confirmation (our buyers) or the dispute window passed──settle()──> settled
  any non-final deal past its deadline ──timeout()──> refunded (the seller slashed when it was late)
  final deal ──> capacity, path bandwidth and the engine's reservation released

Duplicates cannot happen where it matters: the market refuses a second match of an order id and a
second transition out of a state (so a retried call is recognised and skipped), executors refuse a
second job with the same key, and the indexer stores each log once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound

from suanwang.chain.bill import Bill, Seats, make_bill, pack_entry, priced_transit, unpack_deal
from suanwang.chain.errors import ChainRevert
from suanwang.chain.market import STRANDED_CHECK_S, TxSender
from suanwang.content import ContentStore, cid_of_digest
from suanwang.errors import InfeasibleError, InputError, NotFoundError, SuanwangError
from suanwang.lifecycle.agents import Agents
from suanwang.lifecycle.marketplace import Marketplace, RoutedCost
from suanwang.matching.market import MarketEngine, MarketNode, MarketOrder, MarketPlacement, Unplaced
from suanwang.matching.model import StagePolicy
from suanwang.scheduling.base import Executor, JobSpec, JobState, JobStatus
from suanwang.storage.models import ChainCursor, Deal, Job, Lease, Member, Node, OrderRecord
from suanwang.storage.projections import DEAL_STATUS_NAMES, FINAL_DEAL_STATUSES, deal_call_args, indexed_seats

log = logging.getLogger(__name__)

TIMEOUT_STATUSES = ("proposed", "accepted", "started", "disputed")
# Deal statuses in which the node's capacity stays reserved on chain (complete() releases it).
CAPACITY_HOLDING_STATUSES = ("proposed", "accepted", "started")
# A failed match that another match may have caused (capacity taken meanwhile): try the order again.
# A transit fee differs when its operator published a new tariff after the bill was made: priced again.
RETRYABLE_MATCH_ERRORS = {
    "InsufficientCapacity",
    "NodeNotActive",
    "InvalidNodeStatus",
    "NodeDoesNotFit",
    "TransitFeeMismatch",
}
MAX_MATCH_ATTEMPTS = 3
NO_NODES = "no node is offered in this market yet"
REFUSED = "refused"  # the job id of a job the executor would not take
SUBMIT_WORKERS = 8
MAX_OUTPUT_BYTES = 256 * 1024  # a job's output kept in its result: one content block


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SentTransaction:
    """A lifecycle call sent by one pass; later passes collect its receipt, and forget it once the
    index has the block it was mined in (from then on the index says whether it still needs doing)."""

    sender: TxSender
    tx_hash: Any
    sent_at: float  # time.monotonic()
    mined_block: int | None = None


@dataclass
class SentMatches:
    """A matchSignedBatch transaction whose receipt a later pass collects."""

    tx_hash: Any
    order_ids: list[str]
    sent_at: float  # time.monotonic()


@dataclass(frozen=True)
class ChainHead:
    number: int
    timestamp: int
    gas_limit: int


# A batch's gas limit once one batch was mined: the most gas a match has used so far, times this, per
# match (matches differ by their transit lines), within the block's gas limit.
BATCH_GAS_MARGIN = 1.5


def market_order(record: OrderRecord, access_point: int) -> MarketOrder:
    o = record.order
    return MarketOrder(
        order_id=record.id,
        buyer=o["buyer"],
        logic_mcu=int(o["logicMcu"]),
        parallel_mcu=int(o["parallelMcu"]),
        neural_mcu=int(o["neuralMcu"]),
        memory_mib=int(o["memoryMib"]),
        gpu_model=int(o["gpuModel"]),
        gpu_count=int(o["gpuCount"]),
        min_tier=int(o["minTier"]),
        duration_s=int(o["duration"]),
        max_price_per_cu_hour=int(o["maxPricePerCuHour"]),
        max_total=int(o["maxTotal"]),
        access_point=access_point,
        max_latency_ms=float(o["maxLatencyMs"]),  # 0 = no bound, as on chain
        min_bandwidth_gbps=int(o["minBandwidthMbps"]) / 1000,
    )


@dataclass
class Orchestrator:
    w3: Web3
    sessions: sessionmaker[Session]
    contracts: dict[str, Contract]
    agents: Agents
    marketplace: Marketplace
    executor: Executor
    content: ContentStore
    executor_nodes: Callable[[Node], str | None] = lambda node: None
    auto_confirm: bool = True
    confirmations: int = 0
    matching: Literal["online", "batch"] = "online"
    clearing_interval_s: float = 0.5
    batch_size: int = 50
    engine: MarketEngine | None = None
    _engine_nodes: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    _policy: tuple[StagePolicy, int] | None = None
    _held: set[str] = field(default_factory=set)  # order ids the engine holds a reservation for
    _leases_restored: bool = False
    _last_clearing: float = 0.0
    _transitions: dict[tuple[str, str], SentTransaction] = field(default_factory=dict)  # (function, deal id)
    _matches: list[SentMatches] = field(default_factory=list)
    _match_blocks: dict[str, int] = field(default_factory=dict)  # match transaction -> the block it was mined in
    _gas_per_match: int | None = None  # the most gas a mined batch used per match (see `_submit`)
    # Per pass kind: the head it last collected receipts at, and when (time.monotonic()).
    _polled_heads: dict[str, tuple[int, float]] = field(default_factory=dict)
    # Both passes may submit a deal's job (on the match receipt, and once the index shows it accepted):
    # a deal's submissions take one of these locks (by its id), so the second sees the first's Job row.
    _job_locks: tuple[threading.Lock, ...] = field(default_factory=lambda: tuple(threading.Lock() for _ in range(64)))
    _synced_at: tuple[int, int | None] | None = None  # (head, indexed block) the engine's policy was read at
    # Transit tariffs per Gbps-hour by operator address (Market.transitTariffOf), read at the head once per new
    # block: the bills charge exactly them.
    _tariffs: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Jobs sent on a match's receipt are submitted by these workers, so the match pass goes on matching
    # while sbatch runs (it held new orders up to half a second per block, bench/e2e); the deal ids being
    # submitted are kept until their Job row is written, and `_recover_undone_matches` leaves them be.
    _dispatcher: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(SUBMIT_WORKERS, thread_name_prefix="suanwang-dispatch")
    )
    _dispatching: set[str] = field(default_factory=set)
    _dispatching_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def market(self) -> Contract:
        return self.contracts["Market"]

    # -- the engine's view of the market -------------------------------------------------------------
    def _stage_policy(self, session: Session) -> StagePolicy:
        """Who may sell now, as the Federation says (the engine then never proposes a refused seller)."""
        federation = self.contracts["Federation"]
        seller_roles = int(federation.functions.sellerRoles(federation.functions.stage().call()).call())
        sellers = frozenset(
            m.address for m in session.scalars(select(Member).where(Member.active)) if m.roles & seller_roles
        )
        founder = str(federation.functions.founder().call())
        return StagePolicy(stage=3, operator=founder, admitted=sellers)

    def _market_node(self, node: Node) -> MarketNode | None:
        router = self.marketplace.router_by_id.get(node.router)
        if router is None:
            return None  # attached to a router outside the market's network: cannot be routed to
        return MarketNode(
            node_id=node.node_id,
            owner=node.owner,
            operator=node.operator,
            router=router,
            logic_mcu=node.logic_mcu,
            parallel_mcu=node.parallel_mcu,
            neural_mcu=node.neural_mcu,
            memory_mib=node.memory_mib,
            gpu_model=node.gpu_model,
            gpu_count=node.gpu_count,
            tier=node.tier,
            price_per_cu_hour=int(node.price_per_cu_hour),
        )

    def _sync_engine(self, session: Session, chain_moved: bool = True) -> MarketEngine:
        """Builds the engine at start (reserving what live deals hold) and follows node changes after.
        The stage, the fee (read at the head) and who may sell (read from the index) change only with a
        new block or a new indexed block: read again only then."""
        if chain_moved or self._policy is None:
            self._tariffs = {}  # an operator may have published a new tariff in the new block
            fee_bps = int(self.contracts["Federation"].functions.platformFeeBps().call())
            policy = self._stage_policy(session)
            if self.engine is not None and (policy, fee_bps) != self._policy:
                self.engine = None  # who may sell or the fee changed (a stage move, an admission): start afresh
            self._policy = (policy, fee_bps)
        nodes = {n.node_id: n for n in session.scalars(select(Node))}
        if self.engine is None:
            active = [m for n in nodes.values() if n.status == "active" and (m := self._market_node(n))]
            self.engine = MarketEngine(active, RoutedCost(self.marketplace.network), policy, platform_fee_bps=fee_bps)
            self._engine_nodes = {m.node_id: self._node_key(nodes[m.node_id]) for m in active}
            self._held = set()
            # What holds capacity on chain now: deals not yet completed, and matches possibly in flight.
            holding = session.scalars(select(Deal).where(Deal.status.in_(CAPACITY_HOLDING_STATUSES)))
            for deal in holding:
                record = session.get(OrderRecord, deal.id)
                if record is not None and deal.node_id in self._engine_nodes:
                    self.engine.reserve_existing(self._market_order(record), deal.node_id)
                    self._held.add(deal.id)
            for record in session.scalars(select(OrderRecord).where(OrderRecord.state == "submitting")):
                if record.node_id in self._engine_nodes and record.id not in self._held:
                    self.engine.reserve_existing(self._market_order(record), int(record.node_id))
                    self._held.add(record.id)
            self._restore_leases()
            return self.engine
        for node_id, node in nodes.items():
            key = self._node_key(node)
            known = self._engine_nodes.get(node_id)
            if node.status != "active":
                if known is not None:
                    self.engine.remove_node(node_id)
                    del self._engine_nodes[node_id]
            elif known is None:
                if (m := self._market_node(node)) is not None:
                    self.engine.add_node(m)
                    self._engine_nodes[node_id] = key
            elif known != key and (m := self._market_node(node)) is not None:
                self.engine.update_node(m)
                self._engine_nodes[node_id] = key
        return self.engine

    def _restore_leases(self) -> None:
        """Path reservations live in the network object, which a restart empties: reserve again what
        live deals hold, and close the leases of deals that ended meanwhile."""
        if self._leases_restored:
            return
        network = self.marketplace.network
        with self.sessions.begin() as session:
            for lease in session.scalars(select(Lease).where(Lease.released.is_(False))):
                deal, record = session.get(Deal, lease.deal_id), session.get(OrderRecord, lease.deal_id)
                live = (deal is not None and deal.status not in FINAL_DEAL_STATUSES) or (
                    deal is None and record is not None and record.state == "submitting"
                )
                if not live:
                    lease.released, lease.reservation = True, None
                    continue
                path = network.make_path([network.router_index(r) for r in lease.path["path"]], srv6=False)
                try:
                    lease.reservation = str(network.reserve(path, lease.bandwidth_gbps))
                except SuanwangError as exc:
                    log.warning("%s: path bandwidth not reserved again after a restart: %s", lease.deal_id, exc.message)
                    lease.reservation = None
        self._leases_restored = True

    def _release(self, order_id: str) -> None:
        """Returns the engine's reservation for `order_id`, once, if it holds one."""
        if self.engine is not None and order_id in self._held:
            self._held.discard(order_id)
            self.engine.release(order_id)

    @staticmethod
    def _node_key(node: Node) -> tuple[Any, ...]:
        return (
            node.status,
            node.logic_mcu,
            node.parallel_mcu,
            node.neural_mcu,
            node.memory_mib,
            node.gpu_model,
            node.gpu_count,
            node.tier,
            node.price_per_cu_hour,
            node.router,
            node.owner,
        )

    def _market_order(self, record: OrderRecord) -> MarketOrder:
        return market_order(record, self.marketplace.network.router_index(record.access_point))

    # -- one pass --------------------------------------------------------------------------------------
    def tick(self) -> None:
        """One pass of each kind (the service runs them in three threads, `match_tick`, `job_tick` and
        `deal_tick`, so a new order is matched, its job submitted and seen running without waiting
        behind the deals' other steps)."""
        self.match_tick()
        self.wait_for_dispatch()
        self.job_tick()
        self.deal_tick()

    def close(self) -> None:
        """Lets the job submissions already sent on receipts finish, and takes no more."""
        self._dispatcher.shutdown(wait=True)

    def wait_for_dispatch(self) -> None:
        """Returns once the jobs sent on match receipts so far are submitted (or refused)."""
        while True:
            with self._dispatching_lock:
                if not self._dispatching:
                    return
            time.sleep(0.005)

    def match_tick(self) -> None:
        """New orders matched and sent; mined matches recorded and their jobs submitted; undone matches
        cancelled; what final deals held released."""
        with self._lock:
            head, head_moved = self._head("match")
            # Read the cursor before the members and nodes: then the engine's view is at least as new
            # as the block the cursor names, and matching on it cannot miss a seller or a node.
            indexed = self._indexed_block()
            chain_moved, self._synced_at = (head.number, indexed) != self._synced_at, (head.number, indexed)
            with self.sessions() as session:
                engine = self._sync_engine(session, chain_moved)
            if head_moved:  # receipts appear only with a new block
                self._collect_matches()
            self._recover_submitting()
            self._recover_undone_matches(indexed)
            if indexed is not None and indexed >= head.number - self.confirmations:
                self._match_new(engine, head)
            self._release_finished(engine)

    def deal_tick(self) -> None:
        """Each deal one step on: its job submitted and started, followed, completed, settled or timed out."""
        head, head_moved = self._head("deal")
        if head_moved:
            self._collect_transitions()
        self._forget_indexed_transitions(self._indexed_block())
        self._dispatch_accepted()
        self._complete_done_jobs()
        self._settle_completed(head)
        self._timeout_expired(head)

    def job_tick(self) -> None:
        """The jobs' states from the executor into the database (its own thread in the service: a job
        is seen running as soon as the executor says so, not after the deals' chain calls)."""
        self._follow_jobs()

    def _head(self, kind: str) -> tuple[ChainHead, bool]:
        """The latest block, and whether this kind of pass should collect receipts: a new block since it
        last did, or STRANDED_CHECK_S without one (a transaction a reorg stranded behind a nonce gap is
        never mined, and no block may come to say so)."""
        latest = self.w3.eth.get_block("latest")
        head = ChainHead(int(latest["number"]), int(latest["timestamp"]), int(latest["gasLimit"]))
        number, at = self._polled_heads.get(kind, (None, 0.0))
        collect = number != head.number or time.monotonic() - at > STRANDED_CHECK_S
        if collect:
            self._polled_heads[kind] = (head.number, time.monotonic())
        return head, collect

    # -- matching --------------------------------------------------------------------------------------
    def _recover_submitting(self) -> None:
        """Orders left 'submitting' by a crash or a failed pass (not those of a batch in flight): on
        chain already, or back to 'new'."""
        in_flight = {order_id for sent in self._matches for order_id in sent.order_ids}
        with self.sessions.begin() as session:
            for record in session.scalars(select(OrderRecord).where(OrderRecord.state == "submitting")):
                if record.id in in_flight:
                    continue
                status, _ = self.market.functions.statusOf(record.id).call()
                if status != 0:
                    record.state, record.updated_at = "on_chain", now()
                    record.matched_at = record.updated_at
                elif record.tx_hash is None or self._tx_settled(record.tx_hash):
                    self._unreserve(record, session)
                    record.state, record.node_id, record.bill, record.updated_at = "new", None, None, now()

    def _recover_undone_matches(self, indexed: int | None) -> None:
        """Orders marked on chain whose deal the index does not hold although it has the block their
        match was mined in: a reorg may have taken the match back. When the chain agrees (the match's
        transaction neither mined nor pending, the order not matched), the order goes back to 'new', to
        be matched again, and a job already sent on the match's receipt is cancelled and forgotten (the
        next match submits it under a new key, see `_job_key`). While the index is behind the match's
        block nothing is asked of the chain, so the orders just matched cost no RPC call."""
        if indexed is None:
            return
        with self.sessions() as session:
            waiting = list(
                session.execute(
                    select(OrderRecord.id, OrderRecord.tx_hash)
                    .outerjoin(Deal, Deal.id == OrderRecord.id)
                    .where(OrderRecord.state == "on_chain", Deal.id.is_(None))
                )
            )
        self._match_blocks = {tx: b for tx, b in self._match_blocks.items() if tx in {t for _, t in waiting}}
        undone = []
        for order_id, tx_hash in waiting:
            block = self._match_blocks.get(tx_hash) if tx_hash is not None else None
            if block is None and tx_hash is not None:  # sent before a restart: where it was mined, if it was
                block = self._receipt_block(tx_hash)
                if block is not None:
                    self._match_blocks[tx_hash] = block
            if block is not None and block > indexed:
                continue  # the index has not reached the match yet
            if order_id in self._dispatching:
                continue  # its job is being submitted: looked at again once its Job row is written
            if tx_hash is not None and not self._tx_dropped(tx_hash):
                continue  # mined (the index is about to hold it) or pending
            if self.market.functions.statusOf(order_id).call()[0] == 0:
                undone.append(order_id)
        if not undone:
            return
        # Under the orders' job locks: a job submission (`_ensure_job`) then either wrote its Job row
        # before (cancelled here) or sees the order back to "new" and submits nothing.
        locks = sorted({self._job_lock(order_id) for order_id in undone}, key=id)
        with contextlib.ExitStack() as held:
            for lock in locks:
                held.enter_context(lock)
            self._undo_matches(undone)

    def _undo_matches(self, undone: list[str]) -> None:
        with self.sessions.begin() as session:
            for order_id in undone:
                record = session.get(OrderRecord, order_id)
                if record is None or record.state != "on_chain":
                    continue
                log.warning("%s: its match was undone by a reorg; matching it again", order_id)
                job = session.get(Job, order_id)
                if job is not None:  # sent on the match's receipt: nothing on chain pays for it any more
                    if not JobState(job.state).is_final:
                        self.executor.cancel(job.job_id)
                    session.delete(job)
                self._unreserve(record, session)
                record.state, record.node_id, record.bill, record.tx_hash = "new", None, None, None
                record.updated_at, record.matched_at = now(), None

    def _tx_dropped(self, tx_hash: str) -> bool:
        """True when the chain has neither mined the transaction nor holds it as pending."""
        for lookup in (self.w3.eth.get_transaction_receipt, self.w3.eth.get_transaction):
            with contextlib.suppress(TransactionNotFound):
                lookup(tx_hash)  # type: ignore[arg-type]
                return False
        return True

    def _tx_settled(self, tx_hash: str) -> bool:
        """True when the transaction was mined (and so did what it did) or is unknown to the chain."""
        try:
            self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            return True
        except Exception:
            try:
                self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
                return False  # still pending
            except Exception:
                return True

    def _unreserve(self, record: OrderRecord, session: Session) -> None:
        """Gives back what a match that did not happen held: node capacity and path bandwidth."""
        self._release(record.id)
        lease = session.get(Lease, record.id)
        if lease is not None:
            self._free_path(lease)
            session.delete(lease)

    def _reserve_path(self, session: Session, order_id: str, route: dict[str, Any], lease: Lease | None) -> None:
        """Takes the route's bandwidth now, at the match, so the next order sees what is left; the order's
        lease row (`lease`, one left by an earlier match attempt, or a new one) records it."""
        network = self.marketplace.network
        gbps = float(route["bandwidth_reserved_gbps"])
        path = network.make_path([network.router_index(r) for r in route["path"]], srv6=False)
        if lease is not None:
            self._free_path(lease)  # what an earlier attempt still held
        reservation = str(network.reserve(path, gbps))
        if lease is None:
            session.add(Lease(deal_id=order_id, path=route, bandwidth_gbps=gbps, reservation=reservation))
        else:
            lease.path, lease.bandwidth_gbps, lease.reservation = route, gbps, reservation
            lease.programmed, lease.released = False, False

    def _free_path(self, lease: Lease) -> None:
        if lease.reservation is not None:
            with contextlib.suppress(NotFoundError):  # a restart emptied the network's reservations
                self.marketplace.network.release(int(lease.reservation))
            lease.reservation = None
        lease.released = True

    def caught_up(self) -> bool:
        """True when the index has every confirmed block: only then is the engine's view of the nodes
        current enough to turn an order away."""
        indexed = self._indexed_block()
        return indexed is not None and indexed >= self.w3.eth.block_number - self.confirmations

    def _indexed_block(self) -> int | None:
        """The last block the index holds, or None before its first pass."""
        with self.sessions() as session:
            cursor = session.get(ChainCursor, 1)
            return cursor.block_number if cursor is not None else None

    def _match_new(self, engine: MarketEngine, head: ChainHead) -> None:
        """New orders to the engine (one by one, or cleared together every `clearing_interval_s`),
        their bills computed, and the matches sent to the chain in one batch transaction."""
        if self.matching == "batch" and time.monotonic() - self._last_clearing < self.clearing_interval_s:
            return
        self._last_clearing = time.monotonic()
        with self.sessions.begin() as session:
            assert self._policy is not None  # set by _sync_engine, which made `engine`
            fee_bps, chain_time = self._policy[1], head.timestamp
            records = list(
                session.scalars(
                    select(OrderRecord)
                    .where(OrderRecord.state == "new")
                    .order_by(OrderRecord.created_at)
                    .limit(self.batch_size)
                )
            )
            orders: dict[str, MarketOrder] = {}
            for record in records:
                if int(record.order["expiry"]) < chain_time:
                    record.state, record.reason, record.updated_at = (
                        "unmatched",
                        "the order expired before a match",
                        now(),
                    )
                    continue
                try:
                    orders[record.id] = self._market_order(record)
                except SuanwangError as exc:  # an order the engine cannot take: say why, never block the rest
                    record.state, record.reason, record.updated_at = "unmatched", exc.message, now()
            decisions = self._decide(engine, list(orders.values()))
            batch: list[tuple[OrderRecord, Bill]] = []
            entries: list[bytes] = []
            seats = indexed_seats(session)
            # What the bills read, loaded at once; the rows written here go out together at the commit (a
            # lookup per order would flush the order before it: a statement per order, py-spy on bench/e2e).
            placed = [d.node_id for d in decisions.values() if isinstance(d, MarketPlacement)]
            nodes = {n.node_id: n for n in session.scalars(select(Node).where(Node.node_id.in_(placed)))}
            leases = {x.deal_id: x for x in session.scalars(select(Lease).where(Lease.deal_id.in_(list(orders))))}
            for record in records:
                decision = decisions.get(record.id)
                if decision is None:
                    continue
                if isinstance(decision, SuanwangError):
                    record.state, record.reason, record.updated_at = "unmatched", decision.message, now()
                    continue
                if isinstance(decision, Unplaced):
                    record.state, record.updated_at = "unmatched", now()
                    record.explanation = list(decision.explanation.sentences) or [NO_NODES]
                    record.reason = decision.explanation.text or NO_NODES
                    continue
                self._held.add(record.id)
                try:
                    bill, route = self._bill_for(nodes[decision.node_id], record.order, record.access_point, fee_bps)
                    try:
                        packed = bill.packed(seats)
                    except NotFoundError:  # an operator seated in a block the index has not confirmed yet
                        seats = Seats.of(self.market.functions.transitOperators().call())
                        packed = bill.packed(seats)
                    self._reserve_path(session, record.id, route, leases.get(record.id))
                except SuanwangError as exc:
                    self._release(record.id)
                    record.state, record.reason, record.updated_at = "unmatched", exc.message, now()
                    continue
                record.state, record.node_id, record.bill, record.route = (
                    "submitting",
                    decision.node_id,
                    _bill_json(bill),
                    route,
                )
                record.attempts, record.updated_at = record.attempts + 1, now()
                batch.append((record, bill))
                entries.append(pack_entry(record.order, record.signature, packed))
            if not batch:
                return
        self._submit(batch, b"".join(entries), head)
        engine.network_changed()  # the paths' free bandwidth moved

    def _decide(
        self, engine: MarketEngine, orders: list[MarketOrder]
    ) -> dict[str, MarketPlacement | Unplaced | SuanwangError]:
        """Where each order goes: the online engine one order at a time, or one batch clearing."""
        if self.matching == "batch" and orders:
            result = engine.clear_batch(orders)
            return {**{p.order_id: p for p in result.placements}, **{u.order_id: u for u in result.unplaced}}
        decisions: dict[str, MarketPlacement | Unplaced | SuanwangError] = {}
        for order in orders:
            try:
                decisions[order.order_id] = engine.place(order)
            except SuanwangError as exc:
                decisions[order.order_id] = exc
        return decisions

    def _tariff(self, operator: str) -> int:
        """`operator`'s published transit tariff per Gbps-hour, as the chain holds it now."""
        key = operator.lower()
        if key not in self._tariffs:
            self._tariffs[key] = int(self.market.functions.transitTariffOf(operator).call())
        return self._tariffs[key]

    def _bill_for(
        self, node: Node, order: dict[str, Any], access_point: str, fee_bps: int
    ) -> tuple[Bill, dict[str, Any]]:
        """The bill and route of `order` on `node`: the compute and platform fees, and a transit line for
        each operator account on the path and the node's network operator, each at the tariff it published
        for the order's bandwidth over its whole duration (what the market checks). InfeasibleError when over
        the order's limits."""
        gbps = int(order["minBandwidthMbps"]) / 1000 or self.marketplace.lease_bandwidth_gbps
        max_latency = float(order["maxLatencyMs"]) or None
        path = self.marketplace.network.path(
            access_point,
            self.marketplace.router_by_id[node.router],
            max_latency_ms=max_latency,
            min_bandwidth_gbps=gbps,
        )
        payees = self.marketplace.transit_payees(path.operators, path.transit_fee_per_gbps_hour, node.operator)
        transit = priced_transit(order, [(payee, self._tariff(payee)) for payee in payees])
        bill = make_bill(order, node.node_id, int(node.price_per_cu_hour), fee_bps, transit)
        if sum(bill.transit_fees) > int(order["maxTransit"]):
            raise InfeasibleError(
                f"the path's transit is {sum(bill.transit_fees)} ("
                + ", ".join(f"{a}: {f}" for a, f in transit)
                + f"), over your transit limit of {order['maxTransit']}",
                field="maxTransit",
            )
        if bill.total > int(order["maxTotal"]):
            raise InfeasibleError(
                f"the best node's bill is {bill.total} (compute {bill.compute_fee}, transit "
                f"{sum(bill.transit_fees)}, platform {bill.platform_fee}), over your limit of "
                f"{order['maxTotal']}",
                field="maxTotal",
            )
        return bill, {**path.to_json(), "bandwidth_reserved_gbps": gbps}

    def _submit(self, batch: list[tuple[OrderRecord, Bill]], entries: bytes, head: ChainHead) -> None:
        """Sends the batch; a later pass collects its receipt (`_collect_matches`). Its gas comes from
        what mined batches used per match: estimating a batch of hundreds of matches makes the node run
        it over and over, and a failed match only logs MatchFailed, so the estimate's revert check finds
        nothing a mined revert would not (after which the next batch is estimated again)."""
        ids = [r.id for r, _ in batch]
        gas = None
        if self._gas_per_match is not None:
            gas = min(int(self._gas_per_match * BATCH_GAS_MARGIN) * len(batch), head.gas_limit)
        try:
            tx_hash = self.agents.matcher.submit(self.market.functions.matchSignedBatch(entries), gas=gas)
        except SuanwangError as exc:
            log.warning("batch of %d matches not sent: %s", len(ids), exc.message)
            self._matches_not_made(ids)
            return
        self._matches.append(SentMatches(tx_hash, ids, time.monotonic()))
        with self.sessions.begin() as session:  # a restart then knows to wait for this transaction
            session.execute(
                update(OrderRecord)
                .where(OrderRecord.id.in_(ids))
                .values(tx_hash=tx_hash.to_0x_hex(), updated_at=now())
                .execution_options(synchronize_session=False)
            )

    def _matches_not_made(self, ids: list[str]) -> None:
        with self.sessions.begin() as session:
            for order_id in ids:
                record = session.get(OrderRecord, order_id)
                if record is not None and record.state == "submitting":
                    self._unreserve(record, session)
                    record.state, record.node_id, record.bill, record.updated_at = "new", None, None, now()

    def _collect_matches(self) -> None:
        """The receipts of the batches sent so far that were mined: each order on chain or refused."""
        waiting = []
        for sent in self._matches:
            try:
                receipt = self.agents.matcher.poll(sent.tx_hash, sent.sent_at)
            except SuanwangError as exc:
                log.warning("batch of %d matches did not go through: %s", len(sent.order_ids), exc.message)
                self._gas_per_match = None  # perhaps out of gas: estimate the next batch
                self._matches_not_made(sent.order_ids)
                continue
            if receipt is None:
                waiting.append(sent)
                continue
            used = -(-int(receipt["gasUsed"]) // len(sent.order_ids))
            self._gas_per_match = max(used, self._gas_per_match or 0)
            self._match_blocks[sent.tx_hash.to_0x_hex()] = int(receipt["blockNumber"])
            matched = self._record_matches(sent.order_ids, receipt)
            self._dispatch_on_receipt(receipt, matched)
        self._matches = waiting

    def _record_matches(self, ids: list[str], receipt: Any) -> set[str]:
        """Each order of a mined batch on chain, retried or unmatched; returns the ids matched."""
        match_failed = self.market.events.MatchFailed()
        topic = bytes.fromhex(str(match_failed.topic).removeprefix("0x"))
        failures = {}
        for entry in receipt["logs"]:  # decode only MatchFailed: a batch receipt carries hundreds of logs
            if entry["topics"] and bytes(entry["topics"][0]) == topic:
                args = match_failed.process_log(entry)["args"]
                failures["0x" + bytes(args["id"]).hex()] = bytes(args["reason"])
        matched = set()
        with self.sessions.begin() as session:
            records = list(session.scalars(select(OrderRecord).where(OrderRecord.id.in_(ids))))
            for record in records:
                order_id = record.id
                record.updated_at = now()
                reason = failures.get(order_id)
                if reason is None:
                    record.state, record.matched_at = "on_chain", record.updated_at
                    matched.add(order_id)
                    continue
                revert = self.agents.matcher.decoder.decode(reason)
                self._unreserve(record, session)
                if revert.name in RETRYABLE_MATCH_ERRORS and record.attempts < MAX_MATCH_ATTEMPTS:
                    record.state, record.node_id, record.bill = "new", None, None
                else:
                    record.state, record.reason = "unmatched", f"the market refused the match: {revert.message}"
        return matched

    def _dispatch_on_receipt(self, receipt: Any, matched: set[str]) -> None:
        """Submits the jobs of the deals in a mined batch that start accepted (the order auto-accepts)
        on a node whose seller's key the service holds, without waiting for the index to confirm the
        block: `_recover_undone_matches` cancels them if a reorganisation undoes the match."""
        with self.sessions() as session:
            our_nodes = {
                node_id
                for node_id, owner in session.execute(select(Node.node_id, Node.owner))
                if self.agents.for_address(owner) is not None
            }
            ours = {
                order_id
                for order_id, node_id in session.execute(
                    select(OrderRecord.id, OrderRecord.node_id).where(OrderRecord.id.in_(matched))
                )
                if node_id in our_nodes
            }
            seats = indexed_seats(session)
        if not ours:
            return
        event = self.market.events.Matched()
        topic = bytes.fromhex(str(event.topic).removeprefix("0x"))
        jobs = []
        for entry in receipt["logs"]:
            topics = entry["topics"]
            if len(topics) < 2 or bytes(topics[0]) != topic or "0x" + bytes(topics[1]).hex() not in ours:
                continue
            args = event.process_log(entry)["args"]
            try:
                deal = unpack_deal("0x" + bytes(args["id"]).hex(), bytes(args["deal"]), seats)
            except NotFoundError:  # a transit operator seated too recently to be indexed: dispatched once indexed
                continue
            if DEAL_STATUS_NAMES[int(deal["status"])] == "accepted":
                jobs.append((deal["id"], int(deal["nodeId"]), int(deal["duration"])))
        # In the background; a refused job is declined once the index shows the deal accepted.
        for deal_id, node_id, duration in jobs:
            with self._dispatching_lock:
                if deal_id in self._dispatching:
                    continue
                self._dispatching.add(deal_id)
            try:
                self._dispatcher.submit(self._dispatch_job, deal_id, node_id, duration)
            except RuntimeError:  # the workers were shut down (the service is stopping): the deal pass submits it
                with self._dispatching_lock:
                    self._dispatching.discard(deal_id)

    def _dispatch_job(self, deal_id: str, node_id: int, duration_s: int) -> None:
        try:
            self._ensure_job(deal_id, node_id, duration_s)
        except Exception:  # the executor or the database failed: the deal pass submits it once indexed
            log.exception("%s: the job sent on the match's receipt was not submitted", deal_id)
        finally:
            with self._dispatching_lock:
                self._dispatching.discard(deal_id)

    def _receipt_block(self, tx_hash: str | None) -> int | None:
        if tx_hash is None:
            return None
        try:
            return int(self.w3.eth.get_transaction_receipt(tx_hash)["blockNumber"])  # type: ignore[arg-type]
        except Exception:
            return None

    def quote(self, order: dict[str, Any], access_point: str, limit: int = 5) -> tuple[list[dict[str, Any]], list[str]]:
        """The cheapest nodes that would take `order` now, each with its full bill and route, or the
        engine's explanation when none would. Nothing is reserved."""
        with self._lock, self.sessions() as session:
            engine = self._sync_engine(session)
            fee_bps = self._policy[1] if self._policy else 0
            record = OrderRecord(id="0x" + "00" * 32, order=order, access_point=access_point)
            market = self._market_order(record)
            candidates: list[dict[str, Any]] = []
            refused: list[str] = []
            for node_id in engine.feasible(market):
                node = session.get(Node, node_id)
                assert node is not None
                try:
                    bill, route = self._bill_for(node, order, access_point, fee_bps)
                except SuanwangError as exc:
                    refused.append(exc.message)
                    continue
                candidates.append(
                    {
                        "node_id": node_id,
                        "owner": node.owner,
                        "price_per_cu_hour": node.price_per_cu_hour,
                        "bill": _bill_json(bill),
                        "route": route,
                        "total": bill.total,
                    }
                )
            candidates.sort(key=lambda c: (c["total"], c["route"]["latency_ms"]))
            if candidates:
                return candidates[:limit], []
            sentences = (list(engine.explain(market).sentences) or [NO_NODES]) if not refused else refused[:3]
            return [], sentences

    # -- the seller's side: run the job -------------------------------------------------------------------
    def _dispatch_accepted(self) -> None:
        # Another provider's agent runs the deals whose seller's key the service does not hold: only ours
        # are read (a pass every few dozen milliseconds must not load every other seller's open deals).
        with self.sessions() as session:
            deals = list(
                session.scalars(select(Deal).where(Deal.status == "accepted", Deal.seller.in_(self.agents.addresses)))
            )
        ours = [(deal, seller) for deal in deals if (seller := self.agents.for_address(deal.seller)) is not None]
        submitted = self._submit_jobs([(deal.id, deal.node_id, int(deal.deal["duration"])) for deal, _ in ours])
        for (deal, seller), ok in zip(ours, submitted, strict=True):
            if ok is None:
                continue  # its order is not (or no longer) on chain here: a later pass decides
            if not ok:
                # The executor can never run this job: decline before starting (the buyer is refunded and
                # the capacity released, with no slash, since nothing was promised that was not kept).
                self._transition(seller, "decline", deal)
                continue
            self._ensure_lease(deal)
            self._transition(seller, "start", deal)

    def _submit_jobs(self, deals: list[tuple[str, int, int]]) -> list[bool | None]:
        """`_ensure_job` for each (deal id, node id, duration); submissions wait on the scheduler
        (sbatch and friends), not on this process: they run side by side."""
        if not deals:
            return []
        with ThreadPoolExecutor(max_workers=SUBMIT_WORKERS) as pool:
            return list(pool.map(lambda deal: self._ensure_job(*deal), deals))

    def _job_lock(self, deal_id: str) -> threading.Lock:
        return self._job_locks[hash(deal_id) % len(self._job_locks)]

    def _ensure_job(self, deal_id: str, node_id: int, duration_s: int) -> bool | None:
        """Submits the deal's job once; False when the executor refuses it for good, None when the order
        is not on chain here (a reorg undid its match: `_recover_undone_matches` holds the same lock)."""
        with self._job_lock(deal_id), self.sessions.begin() as session:
            existing = session.get(Job, deal_id)
            if existing is not None:
                return existing.state != JobState.FAILED.value or existing.job_id != REFUSED
            record = session.get(OrderRecord, deal_id)
            if record is not None and record.state != "on_chain":
                return None
            node = session.get(Node, node_id)
            # The specification the buyer signed, fetched by the digest in its order (as a remote provider does).
            spec = (
                json.loads(self.content.get(cid_of_digest(record.order["specDigest"])))
                if record is not None
                else {"command": ["true"]}
            )
            executor_node = self.executor_nodes(node) if node is not None else None
            job_spec = JobSpec(
                key=_job_key(deal_id, record.attempts if record is not None else 1),
                command=spec["command"],
                node=executor_node,
                # The emulated nodes share one host: each job asks for one core and at most 1 GiB there.
                cpus=1,
                memory_mib=min(max(int(record.order["memoryMib"]) if record else 256, 64), 1024),
                time_limit_s=duration_s,
                env={"SUANWANG_DEAL": deal_id},
            )
            try:
                job_id, state, reason = self.executor.submit(job_spec), JobState.PENDING.value, None
            except (InputError, InfeasibleError, NotFoundError) as exc:
                job_id, state, reason = REFUSED, JobState.FAILED.value, f"the executor refused the job: {exc.message}"
            session.add(
                Job(
                    deal_id=deal_id,
                    executor=type(self.executor).__name__,
                    executor_node=executor_node,
                    job_id=job_id,
                    state=state,
                    reason=reason,
                    updated_at=now(),
                )
            )
            return job_id != REFUSED

    def _ensure_lease(self, deal: Deal) -> None:
        with self.sessions.begin() as session:
            if session.get(Lease, deal.id) is not None:
                return
            record = session.get(OrderRecord, deal.id)
            if record is None or record.route is None:
                return
            network = self.marketplace.network
            gbps = float(record.route.get("bandwidth_reserved_gbps", self.marketplace.lease_bandwidth_gbps))
            path = network.make_path([network.router_index(r) for r in record.route["path"]])
            try:
                with self._lock:  # the match pass reserves and frees paths in the same network
                    reservation: str | None = str(network.reserve(path, gbps))
            except SuanwangError as exc:  # the path filled up since the match: the lease runs unreserved
                log.warning("deal %s: could not reserve %s Gbps: %s", deal.id, gbps, exc.message)
                reservation = None
            session.add(Lease(deal_id=deal.id, path=record.route, bandwidth_gbps=gbps, reservation=reservation))

    def _follow_jobs(self) -> None:
        with self.sessions() as session:
            jobs = list(session.scalars(select(Job).where(Job.state.in_(("pending", "running")))))
        statuses = self.executor.statuses([job.job_id for job in jobs]) if jobs else {}
        # Only the jobs whose state moved are written (a pass sees every pending job, most unchanged).
        moved = [
            (job, status)
            for job in jobs
            if ((status := statuses[job.job_id]).state.value, status.exit_code, status.reason)
            != (job.state, job.exit_code, job.reason)
        ]
        for job, status in moved:
            cid = self._result(job.deal_id, status) if status.ran_to_end else None
            with self.sessions.begin() as session:
                row = session.get(Job, job.deal_id)
                if row is None or row.job_id != job.job_id:
                    continue  # an undone match's job, dropped (or replaced by the next match's) meanwhile
                row.state, row.exit_code, row.reason, row.updated_at = (
                    status.state.value,
                    status.exit_code,
                    status.reason,
                    now(),
                )
                row.result_cid = cid or row.result_cid
                # Running, or completed before a pass saw it run (a job cancelled while pending has an
                # exit code and a start time from Slurm, so neither says it ran).
                if row.running_at is None and status.state in (JobState.RUNNING, JobState.COMPLETED):
                    row.running_at = row.updated_at

    def _result(self, deal_id: str, status: JobStatus) -> str:
        """The result document of a job that ran to its end, stored: how it ended (exit code, reason) and
        the CID of its output (its standard output, at most one content block). A non-zero exit is a result
        too: the buyer's job ran on the bought resources, so the deal is delivered and paid for the time used."""
        try:
            output = Path(status.result_path).read_bytes() if status.result_path else b""
        except FileNotFoundError:  # the command wrote nothing (it could not even start)
            output = b""
        kept = output[:MAX_OUTPUT_BYTES]
        document = {
            "deal": deal_id,
            "exit_code": status.exit_code,
            "reason": status.reason or None,
            "output": self.content.put(kept),
            "output_bytes": len(output),
            "output_truncated": len(kept) < len(output),
        }
        return self.content.put(json.dumps(document, sort_keys=True).encode())

    def _complete_done_jobs(self) -> None:
        """`complete(cid)` for each started deal whose job ran to its end (it has a result), whatever its exit
        code."""
        with self.sessions() as session:
            done = list(
                session.execute(
                    select(Deal, Job)
                    .join(Job, Job.deal_id == Deal.id)
                    .where(
                        Deal.status == "started",
                        Job.state.in_((JobState.COMPLETED.value, JobState.FAILED.value)),
                        Job.result_cid.is_not(None),
                    )
                )
            )
        for deal, job in done:
            seller = self.agents.for_address(deal.seller)
            if seller is not None and job.result_cid:
                self._transition(seller, "complete", deal, job.result_cid)

    # -- settlement and timeouts --------------------------------------------------------------------------
    def _settle_completed(self, head: ChainHead) -> None:
        chain_time = head.timestamp
        with self.sessions() as session:
            deals = list(session.scalars(select(Deal).where(Deal.status == "completed")))
        for deal in deals:
            buyer = self.agents.for_address(deal.buyer) if self.auto_confirm else None
            if buyer is not None:
                self._transition(buyer, "settle", deal)  # the buyer confirms the delivery
            elif chain_time > deal.deadline:
                self._transition(self.agents.matcher, "settle", deal)  # the dispute window passed

    def _timeout_expired(self, head: ChainHead) -> None:
        chain_time = head.timestamp
        with self.sessions() as session:
            deals = list(
                session.scalars(select(Deal).where(Deal.status.in_(TIMEOUT_STATUSES), Deal.deadline < chain_time))
            )
        for deal in deals:
            self._transition(self.agents.matcher, "timeout", deal)

    def _release_finished(self, engine: MarketEngine) -> None:
        with self.sessions.begin() as session:
            rows = session.execute(
                select(Deal, Lease)
                .join(Lease, Lease.deal_id == Deal.id)
                .where(Deal.status.in_(FINAL_DEAL_STATUSES), Lease.released.is_(False))
            )
            for _deal, lease in rows:
                self._free_path(lease)
                engine.network_changed()
            if self._held:
                done = session.scalars(
                    select(Deal.id).where(Deal.id.in_(self._held), Deal.status.not_in(CAPACITY_HOLDING_STATUSES))
                )
                for deal_id in done:
                    self._release(deal_id)
            for job in session.scalars(
                select(Job)
                .join(Deal, Deal.id == Job.deal_id)
                .where(Deal.status.in_(FINAL_DEAL_STATUSES), Job.state.in_(("pending", "running")))
            ):
                self.executor.cancel(job.job_id)
                job.state, job.updated_at = JobState.CANCELLED.value, now()

    def _transition(self, sender: TxSender, function: str, deal: Deal, *args: Any) -> None:
        """Sends a lifecycle call without waiting (`_collect_transitions` collects the receipt), unless
        it is already in flight. A revert because someone already did it is not an error."""
        if (function, deal.id) in self._transitions:
            return
        try:
            call = getattr(self.market.functions, function)(*deal_call_args(deal.deal), *args)
            tx_hash = sender.submit(call, reuse_estimate=True)
        except ChainRevert as exc:
            # Done already, or not yet: a job that ended before the order's minRunSeconds is completed once
            # the chain's clock passes it (TooEarlyToComplete), by a later pass.
            if exc.name in ("InvalidStatus", "DeadlinePassed", "DeadlineNotReached", "TooEarlyToComplete"):
                log.info("%s(%s) skipped: %s", function, deal.id, exc.message)
            else:
                log.warning("%s(%s) refused: %s", function, deal.id, exc.message)
            return
        self._transitions[(function, deal.id)] = SentTransaction(sender, tx_hash, time.monotonic())

    def _collect_transitions(self) -> None:
        for (function, deal_id), sent in list(self._transitions.items()):
            if sent.mined_block is not None:
                continue
            try:
                receipt = sent.sender.poll(sent.tx_hash, sent.sent_at)
            except SuanwangError as exc:  # e.g. a race lost to another caller: the index will say
                log.warning("%s(%s) did not go through: %s", function, deal_id, exc.message)
                del self._transitions[(function, deal_id)]
                continue
            if receipt is not None:
                sent.mined_block = int(receipt["blockNumber"])

    def _forget_indexed_transitions(self, indexed: int | None) -> None:
        """Calls mined in a block the index has: the deal's status there now says whether the step is
        done (a call a reorganisation dropped is then sent again)."""
        if indexed is None:
            return
        for key, sent in list(self._transitions.items()):
            if sent.mined_block is not None and sent.mined_block <= indexed:
                del self._transitions[key]


def _bill_json(bill: Bill) -> dict[str, Any]:
    return {
        "node_id": bill.node_id,
        "compute_fee": str(bill.compute_fee),
        "platform_fee": str(bill.platform_fee),
        "transit": [
            {"operator": a, "fee": str(f)} for a, f in zip(bill.transit_operators, bill.transit_fees, strict=True)
        ],
        "total": str(bill.total),
    }


def _job_key(deal_id: str, match_attempt: int) -> str:
    """The executor's key for a deal's job: the deal's, and after a reorg undid a match that had sent a
    job, the match attempt's too (the executor refuses a second job under one key)."""
    key = f"deal-{deal_id[2:18]}"
    return key if match_attempt <= 1 else f"{key}-m{match_attempt}"
