"""The match step (the matcher's): new orders to the engine, one by one or cleared together, each
placement's bill priced at the tariffs on chain, and the matches sent in one matchSignedBatch
transaction whose receipt `MatchReceipts` collects. Also the quote: the same pricing, nothing reserved."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session

from suanwang.chain.bill import Bill, Seats, pack_entry
from suanwang.chain.projections import indexed_seats
from suanwang.errors import NotFoundError, SuanwangError
from suanwang.lifecycle.billing import Biller, bill_json
from suanwang.lifecycle.context import ChainHead, StepContext, now
from suanwang.lifecycle.market_view import MarketView
from suanwang.matching.market import MarketEngine, MarketOrder, MarketPlacement, Unplaced
from suanwang.states import OrderState
from suanwang.storage.models import Node, OrderRecord
from suanwang.storage.repositories import Repositories

log = logging.getLogger(__name__)

NO_NODES = "no node is offered in this market yet"
# A batch's gas limit once one batch was mined: the most gas a match has used so far, times this, per
# match (matches differ by their transit lines), within the block's gas limit.
BATCH_GAS_MARGIN = 1.5
# When the chosen node's full bill is over the buyer's limits, the next best nodes are tried, up to this many.
MAX_CANDIDATES = 4

Decision = MarketPlacement | Unplaced | SuanwangError


@dataclass
class SentMatches:
    """A matchSignedBatch transaction whose receipt a later pass collects."""

    tx_hash: Any
    order_ids: list[str]
    sent_at: float  # time.monotonic()


@dataclass
class MatchStep:
    ctx: StepContext
    view: MarketView
    biller: Biller
    matching: Literal["online", "batch"] = "online"
    clearing_interval_s: float = 0.5
    batch_size: int = 50
    sent: list[SentMatches] = field(default_factory=list)
    gas_per_match: int | None = None  # the most gas a mined batch used per match (see `_submit`)
    _last_clearing: float = 0.0

    def tick(self, engine: MarketEngine, head: ChainHead) -> None:
        if self.matching == "batch" and time.monotonic() - self._last_clearing < self.clearing_interval_s:
            return
        self._last_clearing = time.monotonic()
        with self.ctx.sessions.begin() as session:
            batch, entries = self._priced_batch(session, engine, head)
        if batch:
            self._submit(batch, b"".join(entries), head)
            engine.network_changed()  # the paths' free bandwidth moved

    def _priced_batch(
        self, session: Session, engine: MarketEngine, head: ChainHead
    ) -> tuple[list[tuple[OrderRecord, Bill]], list[bytes]]:
        repos = Repositories(session)
        records = repos.orders.waiting(self.batch_size)
        orders: dict[str, MarketOrder] = {}
        for record in records:
            if int(record.order["expiry"]) < head.timestamp:
                _unmatched(record, "the order expired before a match")
                continue
            try:
                orders[record.id] = self.view.market_order(record)
            except SuanwangError as exc:  # an order the engine cannot take: say why, never block the rest
                _unmatched(record, exc.message)
        # What the bills read, loaded at once; the rows written here go out together at the commit (a
        # lookup per order would flush the order before it: a statement per order, py-spy on bench/e2e).
        nodes = repos.nodes.by_id()
        # A sealed specification is readable by the nodes it is sealed to alone: the others are excluded.
        outside = {r.id: frozenset(nodes).difference(r.spec_nodes) for r in records if r.spec_nodes is not None}
        decisions = self._decide(engine, list(orders.values()), outside)
        batch: list[tuple[OrderRecord, Bill]] = []
        entries: list[bytes] = []
        seats = indexed_seats(session)
        leases = repos.leases.by_deal(list(orders))
        for record in records:
            decision = decisions.get(record.id)
            if decision is None:
                continue
            if isinstance(decision, SuanwangError):
                _unmatched(record, decision.message)
                continue
            if isinstance(decision, Unplaced):
                _unmatched(record, decision.explanation.text or NO_NODES)
                record.explanation = list(decision.explanation.sentences) or [NO_NODES]
                continue
            priced = self._price(
                engine, orders[record.id], decision, record, nodes, outside.get(record.id, frozenset())
            )
            if isinstance(priced, SuanwangError):
                _unmatched(record, priced.message)
                continue
            node_id, bill, route = priced
            try:
                try:
                    packed = bill.packed(seats)
                except NotFoundError:  # an operator seated in a block the index has not confirmed yet
                    seats = Seats.of(self.ctx.chain.market.transit_operators())
                    packed = bill.packed(seats)
                self.view.reserve_path(session, record.id, route, leases.get(record.id))
            except SuanwangError as exc:
                self.view.release(record.id)
                _unmatched(record, exc.message)
                continue
            record.state, record.node_id, record.bill, record.route = (
                OrderState.SUBMITTING,
                node_id,
                bill_json(bill),
                route,
            )
            record.attempts, record.updated_at = record.attempts + 1, now()
            batch.append((record, bill))
            entries.append(pack_entry(record.order, record.signature, packed))
        return batch, entries

    def _price(
        self,
        engine: MarketEngine,
        order: MarketOrder,
        placement: MarketPlacement,
        record: OrderRecord,
        nodes: dict[int, Node],
        outside: frozenset[int],
    ) -> tuple[int, Bill, dict[str, Any]] | SuanwangError:
        """The placement's exact bill; when it is over the order's transit or total limit (the engine's
        estimate of the path differs from the bill's), the next best node, up to MAX_CANDIDATES."""
        tried: set[int] = set()
        current: MarketPlacement | Unplaced = placement
        refusal: SuanwangError | None = None
        while isinstance(current, MarketPlacement) and len(tried) < MAX_CANDIDATES:
            self.view.hold(record.id)
            try:
                bill, route = self.biller.bill_for(
                    nodes[current.node_id], record.order, record.access_point, self.view.fee_bps
                )
                return current.node_id, bill, route
            except SuanwangError as exc:
                refusal = exc
                tried.add(current.node_id)
                self.view.release(record.id)
            current = engine.place(order, exclude=outside.union(tried))
        if isinstance(current, Unplaced) and refusal is None:
            return SuanwangError(current.explanation.text or NO_NODES)
        assert refusal is not None
        return refusal

    def _decide(
        self, engine: MarketEngine, orders: list[MarketOrder], outside: dict[str, frozenset[int]]
    ) -> dict[str, Decision]:
        """Where each order goes: the online engine one order at a time, or one batch clearing; never onto a
        node in `outside` (by order id: the nodes its sealed specification is not readable by)."""
        decisions: dict[str, Decision] = {}
        if self.matching == "batch" and orders:
            result = engine.clear_batch(orders)
            decisions = {**{p.order_id: p for p in result.placements}, **{u.order_id: u for u in result.unplaced}}
            # The clearing knows no recipients: a placement on a node that cannot read the order is placed again.
            unreadable = {
                p.order_id
                for p in decisions.values()
                if isinstance(p, MarketPlacement) and p.node_id in outside.get(p.order_id, ())
            }
            orders = [o for o in orders if o.order_id in unreadable]
            for order in orders:
                engine.release(order.order_id)
        for order in orders:
            try:
                decisions[order.order_id] = engine.place(order, exclude=outside.get(order.order_id, frozenset()))
            except SuanwangError as exc:
                decisions[order.order_id] = exc
        return decisions

    def _submit(self, batch: list[tuple[OrderRecord, Bill]], entries: bytes, head: ChainHead) -> None:
        """Sends the batch; `MatchReceipts` collects its receipt. Its gas comes from what mined batches used
        per match: estimating a batch of hundreds of matches makes the node run it over and over, and a
        failed match only logs MatchFailed, so the estimate's revert check finds nothing a mined revert
        would not (after which the next batch is estimated again)."""
        ids = [r.id for r, _ in batch]
        gas = None
        if self.gas_per_match is not None:
            gas = min(int(self.gas_per_match * BATCH_GAS_MARGIN) * len(batch), head.gas_limit)
        try:
            tx_hash = self.ctx.keys.matcher_sender().submit(self.ctx.chain.market.match_signed_batch(entries), gas=gas)
        except SuanwangError as exc:
            log.warning("batch of %d matches not sent: %s", len(ids), exc.message)
            self.matches_not_made(ids)
            return
        self.sent.append(SentMatches(tx_hash, ids, time.monotonic()))
        with self.ctx.sessions.begin() as session:  # a restart then knows to wait for this transaction
            Repositories(session).orders.mark_sent(ids, tx_hash.to_0x_hex(), now())

    def matches_not_made(self, ids: list[str]) -> None:
        with self.ctx.sessions.begin() as session:
            for record in Repositories(session).orders.among(ids):
                if record.state == OrderState.SUBMITTING:
                    self.view.unreserve(record, session)
                    record.state, record.node_id, record.bill, record.updated_at = OrderState.NEW, None, None, now()

    def quote(
        self, engine: MarketEngine, session: Session, order: dict[str, Any], access_point: str, limit: int
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The cheapest nodes that would take `order` now, each with its full bill and route, or the
        engine's explanation when none would. Nothing is reserved."""
        record = OrderRecord(id="0x" + "00" * 32, order=order, access_point=access_point)
        market = self.view.market_order(record)
        candidates: list[dict[str, Any]] = []
        refused: list[str] = []
        for node_id in engine.feasible(market):
            node = Repositories(session).nodes.get(node_id)
            assert node is not None
            try:
                bill, route = self.biller.bill_for(node, order, access_point, self.view.fee_bps)
            except SuanwangError as exc:
                refused.append(exc.message)
                continue
            candidates.append(
                {
                    "node_id": node_id,
                    "owner": node.owner,
                    "encryption_key": node.encryption_key,
                    "price_per_cu_hour": node.price_per_cu_hour,
                    "bill": bill_json(bill),
                    "route": route,
                    "total": bill.total,
                }
            )
        candidates.sort(key=lambda c: (c["total"], c["route"]["latency_ms"]))
        if candidates:
            return candidates[:limit], []
        sentences = (list(engine.explain(market).sentences) or [NO_NODES]) if not refused else refused[:3]
        return [], sentences


def _unmatched(record: OrderRecord, reason: str) -> None:
    record.state, record.reason, record.updated_at = OrderState.UNMATCHED, reason, now()
