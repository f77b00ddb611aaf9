"""Follows the chain's logs into the database: confirmations, reorgs, exactly-once, resumable.

- The cursor row names the chain (id and genesis hash) and the last indexed block with its hash.
  A different chain behind the same RPC URL is refused (`ChainReplacedError`), never mixed in.
- Each step first checks that the cursor's block still has the recorded hash. If not, a reorg (or an
  ``anvil_rollback``) undid it: the newest recorded block whose hash still matches is the common
  ancestor; events above it are deleted and the projections rebuilt from what remains.
- A new range is indexed only when its first block's parentHash is the cursor's hash, so every indexed
  block descends from the last one: a stale block can never hide below a cursor whose hash matches.
- A range is committed in one database transaction together with the cursor, so a crash leaves either
  all of it or none; (tx hash, log index) is unique, so nothing is stored twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from suanwang.chain import projections
from suanwang.chain.deployment import Deployment
from suanwang.chain.gateway import to_jsonable
from suanwang.errors import SuanwangError
from suanwang.storage.models import ChainCursor, Event, IndexedBlock

log = logging.getLogger(__name__)


class ChainReplacedError(SuanwangError):
    """The RPC serves a different chain from the one this database indexes."""


@dataclass(frozen=True)
class SyncResult:
    from_block: int
    to_block: int
    events: int
    rolled_back_to: int | None = None


def _hex(value: Any) -> str:
    return HexBytes(value).to_0x_hex()


class Indexer:
    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        bindings: dict[str, Contract],
        sessions: sessionmaker[Session],
        *,
        confirmations: int = 0,
        chunk_blocks: int = 2000,
        on_events: Callable[[list[Event]], None] | None = None,
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.sessions = sessions
        self.confirmations = confirmations
        self.chunk_blocks = chunk_blocks
        self.on_events = on_events
        # (block, hash) of the cursor last seen on this very chain: the identity check can then be skipped.
        self._cursor_hash_checked: tuple[int, str] | None = None
        self._addresses = [c.address for c in bindings.values()]
        self._decoders: dict[bytes, tuple[str, Any]] = {}
        for name, contract in bindings.items():
            for abi in contract.abi:
                if abi.get("type") == "event":
                    event_abi = cast(ABIEvent, abi)
                    event = contract.events[event_abi["name"]]()
                    self._decoders[bytes(event_abi_to_log_topic(event_abi))] = (name, event)

    # -- chain identity -------------------------------------------------------------------------
    def _chain_identity(self) -> tuple[int, str]:
        return int(self.w3.eth.chain_id), _hex(self.w3.eth.get_block(0)["hash"])

    def _load_cursor(self, session: Session) -> ChainCursor:
        cursor = session.get(ChainCursor, 1)
        if cursor is not None and self._cursor_hash_checked == (cursor.block_number, cursor.block_hash):
            # The chain still has the cursor's block (a hash commits to every block before it, genesis
            # included): it is the same chain, and the identity needs no second look until that changes.
            return cursor
        chain_id, genesis = self._chain_identity()
        if cursor is None:
            if (chain_id, genesis) != (self.deployment.chain_id, self.deployment.genesis_hash):
                raise ChainReplacedError(
                    f"the deployment record is for chain {self.deployment.chain_id} "
                    f"(genesis {self.deployment.genesis_hash}) but the RPC serves chain {chain_id} "
                    f"(genesis {genesis}): redeploy, or point SUANWANG_RPC_URL at the recorded chain"
                )
            start = max(self.deployment.deployed_block - 1, 0)
            cursor = ChainCursor(
                id=1,
                chain_id=chain_id,
                genesis_hash=genesis,
                block_number=start,
                block_hash=_hex(self.w3.eth.get_block(start)["hash"]),
            )
            session.add(cursor)
            session.flush()
        elif (cursor.chain_id, cursor.genesis_hash) != (chain_id, genesis):
            raise ChainReplacedError(
                f"this database indexes chain {cursor.chain_id} (genesis {cursor.genesis_hash}) but the RPC "
                f"serves chain {chain_id} (genesis {genesis}); refusing to mix them: use a new database "
                f"(SUANWANG_DATABASE_URL) for the new chain"
            )
        return cursor

    def _hash_at(self, number: int) -> str | None:
        block = self.w3.eth.get_block(number) if number <= self.w3.eth.block_number else None
        return _hex(block["hash"]) if block is not None else None

    # -- reorgs ------------------------------------------------------------------------------------
    def _rollback_if_reorged(self, session: Session, cursor: ChainCursor) -> int | None:
        if self._hash_at(cursor.block_number) == cursor.block_hash:
            return None
        self._cursor_hash_checked = None
        self._load_cursor(session)  # a replaced chain is refused here, before anything is rolled back
        ancestor_number = max(self.deployment.deployed_block - 1, 0)
        ancestor_hash = _hex(self.w3.eth.get_block(ancestor_number)["hash"])
        recorded = session.scalars(
            select(IndexedBlock).where(IndexedBlock.number < cursor.block_number).order_by(IndexedBlock.number.desc())
        )
        for block in recorded:
            if self._hash_at(block.number) == block.hash:
                ancestor_number, ancestor_hash = block.number, block.hash
                break
        log.warning("reorg: block %s changed; rolling back to %s", cursor.block_number, ancestor_number)
        session.execute(delete(Event).where(Event.block_number > ancestor_number))
        session.execute(delete(IndexedBlock).where(IndexedBlock.number > ancestor_number))
        cursor.block_number, cursor.block_hash = ancestor_number, ancestor_hash
        projections.rebuild(session)
        return ancestor_number

    # -- one step ----------------------------------------------------------------------------------
    def sync_once(self) -> SyncResult | None:
        """Indexes up to one chunk of confirmed blocks. Returns None when there was nothing to do."""
        with self.sessions.begin() as session:
            cursor = self._load_cursor(session)
            rolled_back_to = self._rollback_if_reorged(session, cursor)
            if rolled_back_to is None:
                self._cursor_hash_checked = (cursor.block_number, cursor.block_hash)
            target = self.w3.eth.block_number - self.confirmations
            if target <= cursor.block_number:
                return (
                    SyncResult(cursor.block_number, cursor.block_number, 0, rolled_back_to)
                    if rolled_back_to is not None
                    else None
                )
            start, end = cursor.block_number + 1, min(target, cursor.block_number + self.chunk_blocks)
            first = self.w3.eth.get_block(start)
            if _hex(first["parentHash"]) != cursor.block_hash:
                # The next block does not descend from the cursor's: a reorg is under way, or the rollback
                # above took an ancestor from a fork the node has since left. Indexing on would link a stale
                # block to a current one for good (the cursor's hash would then match again); the next pass
                # compares the cursor with the chain and rolls back further.
                self._cursor_hash_checked = None
                log.info("block %s does not descend from the cursor's block %s; retrying", start, cursor.block_number)
                return SyncResult(start, start - 1, 0, rolled_back_to)
            end_hash = _hex((first if end == start else self.w3.eth.get_block(end))["hash"])
            logs = self.w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": self._addresses})
            block_hashes = {end: end_hash}
            for number in sorted({int(entry["blockNumber"]) for entry in logs} - {end}):  # one read per block
                block_hashes[number] = _hex(self.w3.eth.get_block(number)["hash"])
            consistent = all(_hex(e["blockHash"]) == block_hashes[int(e["blockNumber"])] for e in logs)
            if not consistent or self._hash_at(end) != end_hash:
                log.info("chain moved while reading blocks %s..%s; retrying", start, end)
                return SyncResult(start, start - 1, 0, rolled_back_to)
            new_events = self._store(session, logs)
            for number, block_hash in block_hashes.items():
                session.merge(IndexedBlock(number=number, hash=block_hash))
            cursor.block_number, cursor.block_hash = end, end_hash
            self._cursor_hash_checked = (end, end_hash)
        if self.on_events and new_events:
            self.on_events(new_events)
        return SyncResult(start, end, len(new_events), rolled_back_to)

    def _store(self, session: Session, logs: Iterable[Any]) -> list[Event]:
        """The chunk's new events stored (one flush for all of them), then projected in chain order."""
        ordered = sorted(logs, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
        tx_hashes = sorted({_hex(entry["transactionHash"]) for entry in ordered})
        stored: set[tuple[str, int]] = set()  # (tx hash, log index) already indexed: a query per 500 transactions
        for at in range(0, len(tx_hashes), 500):
            chunk = tx_hashes[at : at + 500]
            rows = session.execute(select(Event.tx_hash, Event.log_index).where(Event.tx_hash.in_(chunk)))
            stored.update((str(tx), int(index)) for tx, index in rows)
        events = []
        for entry in ordered:
            decoder = self._decoders.get(bytes(entry["topics"][0])) if entry["topics"] else None
            if decoder is None:
                continue
            contract_name, event_type = decoder
            tx_hash, log_index = _hex(entry["transactionHash"]), int(entry["logIndex"])
            if (tx_hash, log_index) in stored:
                continue
            decoded = event_type.process_log(entry)
            event = Event(
                block_number=int(entry["blockNumber"]),
                block_hash=_hex(entry["blockHash"]),
                tx_hash=tx_hash,
                log_index=log_index,
                contract=contract_name,
                name=decoded["event"],
                args=to_jsonable(decoded["args"]),
            )
            events.append(event)
        session.add_all(events)
        session.flush()
        projections.apply_events(session, events)
        return events

    def sync_to_head(self, max_steps: int = 10_000) -> int:
        """Runs steps until caught up; returns the number of events stored."""
        stored = 0
        for _ in range(max_steps):
            result = self.sync_once()
            if result is None:
                break
            stored += result.events
        return stored


class IndexerThread(threading.Thread):
    """Runs the indexer in the background; transient errors are logged and retried, a replaced chain stops it."""

    def __init__(self, indexer: Indexer, poll_interval_s: float) -> None:
        super().__init__(name="suanwang-indexer", daemon=True)
        self.indexer = indexer
        self.poll_interval_s = poll_interval_s
        self.stopped = threading.Event()
        self.fatal_error: str | None = None
        self.last_error: str | None = None

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.indexer.sync_to_head()
                self.last_error = None
            except ChainReplacedError as exc:
                self.fatal_error = exc.message
                log.error("indexer stopped: %s", exc.message)
                return
            except Exception as exc:  # RPC outage, database busy: retried on the next poll
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("indexer step failed, retrying: %s", self.last_error)
            self.stopped.wait(self.poll_interval_s)

    def stop(self) -> None:
        self.stopped.set()
