"""The reads that decide who may fetch a piece of sealed content (api/services/content_access.py): the
orders whose specification it is, the deals whose result it is, and a reader's results on given nodes."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suanwang.storage.models import Deal, Node, OrderRecord


class ContentReaders:
    def __init__(self, session: Session) -> None:
        self.session = session

    def orders_with_spec(self, cid: str) -> list[OrderRecord]:
        return list(self.session.scalars(select(OrderRecord).where(OrderRecord.spec_cid == cid)))

    def deals_with_result(self, cids: Collection[str]) -> list[Deal]:
        """The deals completed with any of `cids` (one CID's spellings)."""
        return list(self.session.scalars(select(Deal).where(Deal.result_cid.in_(list(cids)))))

    def has_deal(self, party: str) -> bool:
        """Whether `party` is the buyer or the seller of any deal."""
        me = party.lower()
        query = select(Deal.id).where((func.lower(Deal.buyer) == me) | (func.lower(Deal.seller) == me))
        return self.session.scalars(query.limit(1)).first() is not None

    def owns_any(self, owner: str, node_ids: Collection[int]) -> bool:
        """Whether `owner` registered any of `node_ids`."""
        if not node_ids:
            return False
        query = select(Node.node_id).where(Node.node_id.in_(list(node_ids)), func.lower(Node.owner) == owner.lower())
        return self.session.scalars(query.limit(1)).first() is not None

    def results_of(self, buyer: str, node_ids: Collection[int]) -> list[str]:
        """The result CIDs of `buyer`'s deals on `node_ids`, newest first."""
        query = (
            select(Deal.result_cid)
            .where(
                func.lower(Deal.buyer) == buyer.lower(), Deal.node_id.in_(list(node_ids)), Deal.result_cid.isnot(None)
            )
            .order_by(Deal.updated_block.desc())
        )
        return [cid for cid in self.session.scalars(query) if cid]
