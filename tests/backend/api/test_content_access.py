"""Attacks on who may read sealed content (api/services/content_access.py), against a real store and index
(SQLite, the local content store), without a chain: the rules read only the index."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from suanwang.api.services.content_access import readable_content, signed_reader
from suanwang.content import LocalContentStore
from suanwang.errors import ForbiddenError, UnauthenticatedError
from suanwang.privacy import BUYER, Recipient, node_key_pair, result_key_pair, seal
from suanwang.privacy.documents import SIGNED_AT_HEADER, content_request_headers
from suanwang.storage.db import make_engine, make_sessionmaker, migrate
from suanwang.storage.models import Deal, Node, OrderRecord

VICTIM_BUYER, VICTIM_SELLER = "0x" + "b1" * 20, "0x" + "51" * 20
ATTACKER_SELLER, ATTACKER_BUYER = "0x" + "a5" * 20, "0x" + "ab" * 20
VICTIM_NODE, ATTACKER_NODE = 5, 7


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    with make_sessionmaker(engine)() as session:
        yield session


def node(node_id: int, owner: str) -> Node:
    return Node(node_id=node_id, owner=owner, status="active", logic_mcu=1000, parallel_mcu=0, neural_mcu=0,
                memory_mib=1024, gpu_model=0, gpu_count=0, tier=0, price_per_cu_hour="1", operator=owner,
                router="0x00", locator="00", registered_block=1, updated_block=1)  # fmt: skip


def deal(n: int, buyer: str, seller: str, node_id: int, result_cid: str) -> Deal:
    return Deal(id="0x" + f"{n:064x}", buyer=buyer, seller=seller, matcher=seller, node_id=node_id,
                status="completed", deadline=0, deal={}, valueless=False, result_cid=result_cid,
                matched_block=1, updated_block=1)  # fmt: skip


def victims_result(store: LocalContentStore) -> str:
    """A result sealed, as providers seal them, to its buyer's result key and to the victim's node."""
    buyer_key = result_key_pair("0x" + "11" * 32, 31337).public_key
    node_key = node_key_pair("0x" + "22" * 32, 31337).public_key
    return store.put(seal(b'{"exit_code": 0}', [Recipient(buyer_key, role=BUYER), Recipient(node_key, node=5)]))


def test_a_seller_cannot_read_another_deals_result_by_naming_its_cid(session: Session, tmp_path: Path) -> None:
    """A deal's result CID is whatever its seller passed to `complete`: the attacker completes its own deal
    (with itself as the buyer) naming the victim's result. Neither side of that deal gets it."""
    store = LocalContentStore(tmp_path / "content")
    cid = victims_result(store)
    session.add_all([node(VICTIM_NODE, VICTIM_SELLER), node(ATTACKER_NODE, ATTACKER_SELLER)])
    session.add(deal(1, VICTIM_BUYER, VICTIM_SELLER, VICTIM_NODE, cid))
    session.add(deal(2, ATTACKER_BUYER, ATTACKER_SELLER, ATTACKER_NODE, cid))
    session.commit()
    for attacker in (ATTACKER_SELLER, ATTACKER_BUYER):
        with pytest.raises(ForbiddenError):
            readable_content(session, store, cid, attacker)
    assert readable_content(session, store, cid, VICTIM_BUYER) == store.get(cid)
    assert readable_content(session, store, cid, VICTIM_SELLER) == store.get(cid)


def test_another_spelling_of_the_cid_is_the_same_cid(session: Session, tmp_path: Path) -> None:
    """A specification sealed to two candidate nodes and matched onto the victim's: the other candidate's
    seller may no longer read it. Upper-case base32 names the same content, and must not find it unmatched
    (the index is asked for the canonical form, as the store is)."""
    store = LocalContentStore(tmp_path / "content")
    keys = [node_key_pair(k, 31337).public_key for k in ("0x" + "22" * 32, "0x" + "33" * 32)]
    spec = store.put(
        seal(b'{"command": ["true"]}', [Recipient(keys[0], node=VICTIM_NODE), Recipient(keys[1], node=ATTACKER_NODE)])
    )
    session.add_all([node(VICTIM_NODE, VICTIM_SELLER), node(ATTACKER_NODE, ATTACKER_SELLER)])
    now = datetime.now(UTC)
    session.add(OrderRecord(id="0x" + "01" * 32, buyer=VICTIM_BUYER, order={}, signature="0x", access_point="a",
                            spec_cid=spec, spec_nodes=[VICTIM_NODE, ATTACKER_NODE], node_id=VICTIM_NODE,
                            state="on_chain", attempts=1, created_at=now, updated_at=now))  # fmt: skip
    session.commit()
    for spelling in (spec, spec.upper()):
        with pytest.raises(ForbiddenError):
            readable_content(session, store, spelling, ATTACKER_SELLER)
        assert readable_content(session, store, spelling, VICTIM_SELLER) == store.get(spec)


class CountingStore(LocalContentStore):
    """The local store, counting its reads (the rule must decide before it reads)."""

    reads = 0

    def get(self, cid: str) -> bytes:
        self.reads += 1
        return super().get(cid)


def test_a_stranger_with_no_deal_makes_the_service_read_nothing(session: Session, tmp_path: Path) -> None:
    """Content no order or deal names (an output) is read from the store only for a party of some deal."""
    store = CountingStore(tmp_path / "content")
    cid = victims_result(store)
    with pytest.raises(ForbiddenError):
        readable_content(session, store, cid, "0x" + "99" * 20)
    assert store.reads == 0


@pytest.mark.parametrize("signed_at", ["\u00b2", "9" * 5000, "-5", "1e9", ""])
def test_a_malformed_signing_time_is_a_401_naming_the_header(signed_at: str) -> None:
    headers = content_request_headers("0x" + "11" * 32, "bafkreiabc")
    with pytest.raises(UnauthenticatedError) as refused:
        signed_reader("bafkreiabc", headers["X-Suanwang-Address"], signed_at, headers["X-Suanwang-Signature"])
    assert refused.value.field == SIGNED_AT_HEADER


def test_a_well_formed_request_recovers_its_signer() -> None:
    headers = content_request_headers("0x" + "11" * 32, "bafkreiabc")
    signed_at = headers[SIGNED_AT_HEADER]
    assert abs(int(signed_at) - time.time()) < 60
    signer = signed_reader("bafkreiabc", headers["X-Suanwang-Address"], signed_at, headers["X-Suanwang-Signature"])
    assert signer == headers["X-Suanwang-Address"]
