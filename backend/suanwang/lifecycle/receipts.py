"""The match step's receipts (the matcher's): each order of a mined batch on chain, retried or unmatched;
orders a crash left half-sent put right; and orders whose match a reorganisation undid matched again."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session
from web3.exceptions import TransactionNotFound

from suanwang.errors import SuanwangError
from suanwang.lifecycle.context import StepContext, now
from suanwang.lifecycle.market_view import MarketView
from suanwang.lifecycle.match import MatchStep
from suanwang.states import DealStatus, OrderState
from suanwang.storage.repositories import Repositories

log = logging.getLogger(__name__)

# A failed match that another match may have caused (capacity taken meanwhile): try the order again.
# A transit fee differs when its operator published a new tariff after the bill was made: priced again.
RETRYABLE_MATCH_ERRORS = frozenset(
    {"InsufficientCapacity", "NodeNotActive", "InvalidNodeStatus", "NodeDoesNotFit", "TransitFeeMismatch"}
)
MAX_MATCH_ATTEMPTS = 3


class ReceiptJobs(Protocol):
    """The jobs this process sends on a match's receipt (the service's in-process provider, if any)."""

    def on_matched(self, receipt: Any, matched: set[str]) -> None: ...

    def dispatching(self, deal_id: str) -> bool: ...

    def locked(self, deal_ids: list[str]) -> contextlib.AbstractContextManager[None]: ...

    def drop(self, session: Session, deal_id: str) -> None: ...


@dataclass
class MatchReceipts:
    ctx: StepContext
    view: MarketView
    match: MatchStep
    jobs: ReceiptJobs | None = None
    _match_blocks: dict[str, int] = field(default_factory=dict)  # match transaction -> the block it was mined in

    def tick(self, head_moved: bool, indexed: int | None) -> None:
        if head_moved:  # receipts appear only with a new block
            self.collect()
        self.recover_submitting()
        self.recover_undone(indexed)

    def collect(self) -> None:
        """The receipts of the batches sent so far that were mined: each order on chain or refused."""
        waiting = []
        for sent in self.match.sent:
            try:
                receipt = self.ctx.keys.matcher_sender().poll(sent.tx_hash, sent.sent_at)
            except SuanwangError as exc:
                log.warning("batch of %d matches did not go through: %s", len(sent.order_ids), exc.message)
                self.match.gas_per_match = None  # perhaps out of gas: estimate the next batch
                self.match.matches_not_made(sent.order_ids)
                continue
            if receipt is None:
                waiting.append(sent)
                continue
            used = -(-int(receipt["gasUsed"]) // len(sent.order_ids))
            self.match.gas_per_match = max(used, self.match.gas_per_match or 0)
            self._match_blocks[sent.tx_hash.to_0x_hex()] = int(receipt["blockNumber"])
            matched = self._record(sent.order_ids, receipt)
            if self.jobs is not None:
                self.jobs.on_matched(receipt, matched)
        self.match.sent = waiting

    def _record(self, ids: list[str], receipt: Any) -> set[str]:
        failures = self.ctx.chain.market.match_failures(receipt)
        matched = set()
        with self.ctx.sessions.begin() as session:
            for record in Repositories(session).orders.among(ids):
                record.updated_at = now()
                reason = failures.get(record.id)
                if reason is None:
                    record.state, record.matched_at = OrderState.ON_CHAIN, record.updated_at
                    matched.add(record.id)
                    continue
                revert = self.ctx.chain.decoder.decode(reason)
                self.view.unreserve(record, session)
                if revert.name == "OrderAlreadyUsed" and self._matched_on_chain(record.id):
                    # An earlier match of this order stands after all: one a reorganisation took back and
                    # the chain mined again (its transaction sent again). The index brings its deal.
                    record.state, record.matched_at, record.reason = OrderState.ON_CHAIN, record.updated_at, None
                elif revert.name in RETRYABLE_MATCH_ERRORS and record.attempts < MAX_MATCH_ATTEMPTS:
                    record.state, record.node_id, record.bill = OrderState.NEW, None, None
                else:
                    record.state, record.reason = (
                        OrderState.UNMATCHED,
                        f"the market refused the match: {revert.message}",
                    )
        return matched

    def _matched_on_chain(self, order_id: str) -> bool:
        return self.ctx.chain.market.status_of(order_id)[0] not in (DealStatus.NONE, DealStatus.CANCELLED)

    def recover_submitting(self) -> None:
        """Orders left 'submitting' by a crash or a failed pass (not those of a batch in flight): on
        chain already, or back to 'new'."""
        in_flight = {order_id for sent in self.match.sent for order_id in sent.order_ids}
        with self.ctx.sessions.begin() as session:
            for record in Repositories(session).orders.submitting():
                if record.id in in_flight:
                    continue
                status, _ = self.ctx.chain.market.status_of(record.id)
                if status != DealStatus.NONE:
                    record.state, record.updated_at = OrderState.ON_CHAIN, now()
                    record.matched_at = record.updated_at
                elif record.tx_hash is None or self._tx_settled(record.tx_hash):
                    self.view.unreserve(record, session)
                    record.state, record.node_id, record.bill, record.updated_at = OrderState.NEW, None, None, now()

    def recover_undone(self, indexed: int | None) -> None:
        """Orders marked on chain whose deal the index does not hold although it has the block their
        match was mined in: a reorg may have taken the match back. When the chain agrees (the match's
        transaction neither mined nor pending, the order not matched), the order goes back to 'new', to
        be matched again, and a job already sent on the match's receipt is cancelled and forgotten. While
        the index is behind the match's block nothing is asked of the chain, so the orders just matched
        cost no RPC call."""
        if indexed is None:
            return
        with self.ctx.sessions() as session:
            waiting = Repositories(session).orders.on_chain_without_deal()
        hashes = {t for _, t in waiting}
        self._match_blocks = {tx: b for tx, b in self._match_blocks.items() if tx in hashes}
        undone = [order_id for order_id, tx_hash in waiting if self._undone(order_id, tx_hash, indexed)]
        if not undone:
            return
        with self._jobs_locked(undone), self.ctx.sessions.begin() as session:
            for order_id in undone:
                record = Repositories(session).orders.get(order_id)
                if record is None or record.state != OrderState.ON_CHAIN:
                    continue
                log.warning("%s: its match was undone by a reorg; matching it again", order_id)
                if self.jobs is not None:
                    self.jobs.drop(session, order_id)
                self.view.unreserve(record, session)
                record.state, record.node_id, record.bill, record.tx_hash = OrderState.NEW, None, None, None
                record.updated_at, record.matched_at = now(), None

    def _undone(self, order_id: str, tx_hash: str | None, indexed: int) -> bool:
        block = self._match_blocks.get(tx_hash) if tx_hash is not None else None
        if block is None and tx_hash is not None:  # sent before a restart: where it was mined, if it was
            block = self._receipt_block(tx_hash)
            if block is not None:
                self._match_blocks[tx_hash] = block
        if block is not None and block > indexed:
            return False  # the index has not reached the match yet
        if self.jobs is not None and self.jobs.dispatching(order_id):
            return False  # its job is being submitted: looked at again once its Job row is written
        if tx_hash is not None and not self._tx_dropped(tx_hash):
            return False  # mined (the index is about to hold it) or pending
        return self.ctx.chain.market.status_of(order_id)[0] == DealStatus.NONE

    @contextlib.contextmanager
    def _jobs_locked(self, deal_ids: list[str]) -> Iterator[None]:
        """Under the deals' job locks a job submission either wrote its Job row before (dropped here) or
        sees the order back to 'new' and submits nothing."""
        if self.jobs is None:
            yield
            return
        with self.jobs.locked(deal_ids):
            yield

    def _tx_dropped(self, tx_hash: str) -> bool:
        """True when the chain has neither mined the transaction nor holds it as pending."""
        for lookup in (self.ctx.w3.eth.get_transaction_receipt, self.ctx.w3.eth.get_transaction):
            with contextlib.suppress(TransactionNotFound):
                lookup(tx_hash)  # type: ignore[arg-type]
                return False
        return True

    def _tx_settled(self, tx_hash: str) -> bool:
        """True when the transaction was mined (and so did what it did) or is unknown to the chain."""
        return _try(lambda: self.ctx.w3.eth.get_transaction_receipt(tx_hash)) or not _try(  # type: ignore[arg-type]
            lambda: self.ctx.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        )

    def _receipt_block(self, tx_hash: str) -> int | None:
        try:
            return int(self.ctx.w3.eth.get_transaction_receipt(tx_hash)["blockNumber"])  # type: ignore[arg-type]
        except Exception:
            return None


def _try(lookup: Callable[[], Any]) -> bool:
    try:
        lookup()
        return True
    except Exception:
        return False
