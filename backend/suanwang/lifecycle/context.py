"""What every lifecycle step of one process shares: the chain seam, the keys it holds, its database
(the service's, or an agent's own), and where the chain and the index stand."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from suanwang.chain.contracts import ChainGateway
from suanwang.chain.market import STRANDED_CHECK_S
from suanwang.lifecycle.keys import Keyring
from suanwang.storage.repositories import Repositories


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ChainHead:
    number: int
    timestamp: int
    gas_limit: int


@dataclass
class StepContext:
    w3: Web3
    chain: ChainGateway
    sessions: sessionmaker[Session]
    keys: Keyring
    confirmations: int = 0
    # Per kind of pass: the head it last collected receipts at, and when (time.monotonic()).
    _polled_heads: dict[str, tuple[int, float]] = field(default_factory=dict)

    def head(self, kind: str) -> tuple[ChainHead, bool]:
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

    def indexed_block(self) -> int | None:
        """The last block the index holds, or None before its first pass."""
        with self.sessions() as session:
            return Repositories(session).indexed_block()

    def caught_up(self) -> bool:
        """True when the index has every confirmed block: only then is a view built from it current
        enough to turn an order away."""
        indexed = self.indexed_block()
        return indexed is not None and indexed >= self.w3.eth.block_number - self.confirmations
