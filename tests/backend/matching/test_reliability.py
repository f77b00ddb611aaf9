"""A seller's reliability comes from its deals' on-chain outcomes alone (matching/market_reliability.py):
the deals are projected here by the indexer's own handlers from the events the Market emits."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from suanwang.api.routes.node_metrics import list_reliability
from suanwang.chain.bill import Seats, pack_deal
from suanwang.chain.projections import HANDLERS
from suanwang.lifecycle.market_view import SellerReliability
from suanwang.matching.market import MarketEngine, MarketNode, MarketOrder
from suanwang.matching.market_reliability import SellerRecord, deal_outcome, seller_records
from suanwang.matching.model import StagePolicy
from suanwang.states import DealStatus
from suanwang.storage.db import make_engine, make_sessionmaker, migrate
from suanwang.storage.models import ChainCursor, Event, Job

RELIABLE, FLAKY, REJECTED = ("0x" + c * 40 for c in "abc")
BUYER, MATCHER = "0x" + "d" * 40, "0x" + "e" * 40
STATUS = {s: i for i, s in enumerate(DealStatus)}


def test_the_estimator_is_the_beta_posterior_mean() -> None:
    assert SellerRecord().score == 0.5  # no record: the uniform prior's mean
    assert SellerRecord(good=8, bad=0).score == pytest.approx(0.9)
    assert SellerRecord(good=1, bad=2).score == pytest.approx(0.4)
    records = seller_records([("0xAb", True), ("0xab", False), ("0xcd", True)])
    assert records == {"0xab": SellerRecord(1, 1), "0xcd": SellerRecord(1, 0)}


@pytest.mark.parametrize(
    ("status", "accepted", "outcome"),
    [
        ("completed", True, True),
        ("settled", True, True),
        ("refunded", True, False),  # declined, timed out (slashed) or a dispute lost
        ("refunded", False, None),  # the buyer rejected the bill: no fault of the seller's
        ("started", True, None),
        ("disputed", True, None),
    ],
)
def test_outcomes_count_only_what_the_chain_decided(status: str, accepted: bool, outcome: bool | None) -> None:
    assert deal_outcome(status, accepted) is outcome


class Chain:
    """Market events, projected by the indexer's handlers into a fresh store."""

    def __init__(self, session: Session) -> None:
        self.session, self.block, self.log = session, 0, 0

    def emit(self, name: str, **args: Any) -> None:
        self.block += 1
        self.log += 1
        event = Event(
            block_number=self.block,
            block_hash="0x" + f"{self.block:064x}",
            tx_hash="0x" + f"{self.log:064x}",
            log_index=0,
            contract="Market",
            name=name,
            args=args,
        )
        self.session.add(event)
        self.session.flush()
        HANDLERS[name](self.session, event)
        self.session.flush()
        self.session.merge(
            ChainCursor(id=1, chain_id=31337, genesis_hash="0x0", block_number=self.block, block_hash="0x0")
        )

    def match(self, deal_id: str, seller: str, status: DealStatus) -> None:
        fields = {
            "buyer": BUYER,
            "seller": seller,
            "matcher": MATCHER,
            "nodeId": 1,
            "logicMcu": 1000,
            "parallelMcu": 0,
            "neuralMcu": 0,
            "duration": 60,
            "minRunSeconds": 0,
            "maxLatencyMs": 0,
            "valueless": False,
            "computeFee": 10,
            "platformFee": 1,
            "status": STATUS[status],
            "deadline": 10**9,
            "transitOperators": [],
            "transitFees": [],
        }
        self.emit("Matched", id=deal_id, deal="0x" + pack_deal(fields, Seats(())).hex())

    def status(self, deal_id: str, status: DealStatus) -> None:
        self.emit("DealStatusChanged", id=deal_id, status=STATUS[status], deadline=0)

    def delivered(self, deal_id: str, settled: bool = True) -> None:
        self.emit("Completed", id=deal_id, deadline=10**9, usedSeconds=60, resultCid="bafkrei")
        if settled:
            self.emit("Settled", id=deal_id, computeFee=10, transitTotal=0, platformFee=1, refunded=0, valueless=False)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    with make_sessionmaker(engine)() as session:
        yield session


def deal(n: int) -> str:
    return "0x" + f"{n:064x}"


def test_declines_and_timeouts_lower_a_sellers_score_and_exit_codes_do_not(session: Session) -> None:
    chain = Chain(session)
    for n in (1, 2, 3):  # the reliable seller delivers every deal; its buyer's jobs all `exit 1`
        chain.match(deal(n), RELIABLE, DealStatus.ACCEPTED)
        chain.status(deal(n), DealStatus.STARTED)
        chain.delivered(deal(n), settled=n != 3)
        session.add(
            Job(
                deal_id=deal(n),
                executor="x",
                job_id=str(n),
                state="completed",
                exit_code=1,
                updated_at=datetime.now(UTC),
            )
        )
    chain.match(deal(4), FLAKY, DealStatus.ACCEPTED)  # auto-accepted, then declined
    chain.status(deal(4), DealStatus.REFUNDED)
    chain.match(deal(5), FLAKY, DealStatus.PROPOSED)  # accepted by the buyer, then the start deadline missed
    chain.status(deal(5), DealStatus.ACCEPTED)
    chain.status(deal(5), DealStatus.REFUNDED)
    chain.emit("Slashed", id=deal(5), seller=FLAKY, toBuyer=5, toPlatform=5)
    chain.match(deal(6), FLAKY, DealStatus.ACCEPTED)
    chain.delivered(deal(6))
    chain.match(deal(7), REJECTED, DealStatus.PROPOSED)  # the buyer rejected the bill: neither good nor bad
    chain.status(deal(7), DealStatus.REFUNDED)

    reliability = SellerReliability()
    reliability.update(session)
    assert reliability.score(RELIABLE) == pytest.approx(4 / 5)  # 3 good
    assert reliability.score(FLAKY) == pytest.approx(2 / 5)  # 1 good, 2 bad
    assert reliability.score(REJECTED) == reliability.score("0x" + "f" * 40) == 0.5

    # The API serves the same tallies and scores, for the web app's nodes view.
    served = {r.seller: (r.good, r.bad, r.score) for r in list_reliability(session)}
    assert served == {RELIABLE.lower(): (3, 0, 0.8), FLAKY.lower(): (1, 2, 0.4)}

    # Read incrementally: a later loss moves the score, the deals already read are not read again.
    chain.match(deal(8), RELIABLE, DealStatus.ACCEPTED)
    chain.status(deal(8), DealStatus.REFUNDED)
    reliability.update(session)
    assert reliability.score(RELIABLE) == pytest.approx(4 / 6)

    # The engine prefers the reliable seller between two nodes alike in every other way.
    nodes = [
        dataclasses.replace(n, reliability=reliability.score(n.owner)) for n in (_node(1, FLAKY), _node(2, RELIABLE))
    ]
    engine = MarketEngine(nodes, None, StagePolicy(3), platform_fee_bps=0)
    placement = engine.place(_order())
    assert placement.node_id == 2  # type: ignore[union-attr]


def _node(node_id: int, owner: str) -> MarketNode:
    return MarketNode(node_id, owner, "0xop", 0, 64_000, 0, 0, 65_536, 0, 0, 1, 10**15)


def _order() -> MarketOrder:
    return MarketOrder("o1", BUYER, 1000, 0, 0, 1024, 0, 0, 0, 60, 10**18, 10**20, 0, 0.0, 0.0)
