"""SQLAlchemy 2 tables. The chain is the source of truth: ``events`` is an index of its logs and the
other chain-derived tables (members, nodes) are projections of those events, rebuilt after a reorg."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class Base(DeclarativeBase):
    pass


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in UTC. PostgreSQL keeps the zone (timestamptz); SQLite stores the text without it and
    gives back a naive datetime, which this marks as the UTC it was written in, so the API's times carry
    their zone on both."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ChainCursor(Base):
    """Which chain the index belongs to and how far it has got (one row)."""

    __tablename__ = "chain_cursor"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    genesis_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))


class IndexedBlock(Base):
    """Hashes of indexed blocks that matter for reorg detection (range ends and blocks with logs)."""

    __tablename__ = "indexed_blocks"
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(66))


class Event(Base):
    """One decoded log, stored exactly once per (transaction hash, log index)."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("tx_hash", "log_index", name="uq_event_tx_log"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64), index=True)
    args: Mapped[dict[str, Any]] = mapped_column(JSON)


class Member(Base):
    __tablename__ = "members"
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_block: Mapped[int] = mapped_column(BigInteger)


class OperatorSeat(Base):
    """A transit operator's seat in the market (OperatorSeated): bills and deals name it by this number."""

    __tablename__ = "operator_seats"
    seat: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    address: Mapped[str] = mapped_column(String(42), unique=True)


class Node(Base):
    __tablename__ = "nodes"
    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    logic_mcu: Mapped[int] = mapped_column(BigInteger)
    parallel_mcu: Mapped[int] = mapped_column(BigInteger)
    neural_mcu: Mapped[int] = mapped_column(BigInteger)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    gpu_model: Mapped[int] = mapped_column(Integer, index=True)
    gpu_count: Mapped[int] = mapped_column(Integer)
    tier: Mapped[int] = mapped_column(Integer, index=True)
    # Wei-scale integers exceed SQLite's 64-bit INTEGER: kept as decimal strings.
    price_per_cu_hour: Mapped[str] = mapped_column(String(80))
    operator: Mapped[str] = mapped_column(String(42), index=True)
    router: Mapped[str] = mapped_column(String(66))
    locator: Mapped[str] = mapped_column(String(64))
    # The X25519 public key buyers seal job specifications to (0x-hex bytes32; all zeros when none).
    encryption_key: Mapped[str | None] = mapped_column(String(66), nullable=True)
    registered_block: Mapped[int] = mapped_column(BigInteger)
    updated_block: Mapped[int] = mapped_column(BigInteger)


class TransitTariff(Base):
    """A transit operator's published tariff per Gbps-hour (TransitTariffSet): bills charge exactly it."""

    __tablename__ = "transit_tariffs"
    operator: Mapped[str] = mapped_column(String(42), primary_key=True)
    seat: Mapped[int] = mapped_column(Integer)
    per_gbps_hour: Mapped[str] = mapped_column(String(80))  # token base units, a decimal string
    block_number: Mapped[int] = mapped_column(BigInteger)


class IdempotencyRecord(Base):
    """The first response to a POST with an Idempotency-Key (status and body None while it runs)."""

    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    headers: Mapped[list[list[str]] | None] = mapped_column(JSON, nullable=True)


# -- projections of the Market's events ------------------------------------------------------------


class Deal(Base):
    """A matched order as the chain records it (Matched, DealStatusChanged, Completed, Settled...)."""

    __tablename__ = "deals"
    id: Mapped[str] = mapped_column(String(66), primary_key=True)
    buyer: Mapped[str] = mapped_column(String(42), index=True)
    seller: Mapped[str] = mapped_column(String(42), index=True)
    matcher: Mapped[str] = mapped_column(String(42))
    node_id: Mapped[int] = mapped_column(BigInteger, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    deadline: Mapped[int] = mapped_column(BigInteger)
    deal: Mapped[dict[str, Any]] = mapped_column(JSON)  # the Deal struct every later call passes back
    valueless: Mapped[bool] = mapped_column(Boolean)
    result_cid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # The seconds billed, fixed at completion (Completed): the compute and platform fees are prorated to it.
    used_seconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dispute_bond: Mapped[str | None] = mapped_column(String(80), nullable=True)  # the buyer's bond (Disputed)
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # SlaBreached
    matched_block: Mapped[int] = mapped_column(BigInteger)
    updated_block: Mapped[int] = mapped_column(BigInteger)


class Settlement(Base):
    """How a deal was paid out (or refunded, or slashed), from Settled / Refunded / Slashed events."""

    __tablename__ = "settlements"
    deal_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))  # settled | refunded
    compute_fee: Mapped[str] = mapped_column(String(80))
    transit_total: Mapped[str] = mapped_column(String(80))
    platform_fee: Mapped[str] = mapped_column(String(80))
    refunded: Mapped[str] = mapped_column(String(80))
    slashed_to_buyer: Mapped[str] = mapped_column(String(80))
    slashed_to_platform: Mapped[str] = mapped_column(String(80))
    valueless: Mapped[bool] = mapped_column(Boolean)
    block_number: Mapped[int] = mapped_column(BigInteger)


# -- off-chain state of the lifecycle --------------------------------------------------------------


class OrderRecord(Base):
    """A buyer's signed order as received by the API, and where the service has taken it."""

    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(66), primary_key=True)  # the EIP-712 digest = the market's id
    buyer: Mapped[str] = mapped_column(String(42), index=True)
    order: Mapped[dict[str, Any]] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(String(200))
    access_point: Mapped[str] = mapped_column(String(200))
    spec_cid: Mapped[str] = mapped_column(String(128))
    # The chain node ids its sealed specification is readable by: it is matched onto one of them alone.
    spec_nodes: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    # new -> matching -> submitted -> on_chain (the deal is indexed) | unmatched (with an explanation)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    explanation: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    node_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bill: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    route: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # When the service read the receipt of the block that matched it (cleared if a reorg undoes the match).
    matched_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Job(Base):
    """The executor job that serves a deal (at most one per deal: the key is the deal id)."""

    __tablename__ = "jobs"
    deal_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    executor: Mapped[str] = mapped_column(String(32))
    executor_node: Mapped[str | None] = mapped_column(String(128), nullable=True)
    job_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), index=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    result_cid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Who its result is sealed to (privacy.documents.recipients_json): the buyer's result key and the node's.
    sealed_to: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # When the service first saw the executor run it (running, or already finished having run).
    running_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Lease(Base):
    """The network path reserved for a deal, and whether it was programmed into a data plane."""

    __tablename__ = "leases"
    deal_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    path: Mapped[dict[str, Any]] = mapped_column(JSON)
    bandwidth_gbps: Mapped[float] = mapped_column()
    reservation: Mapped[str | None] = mapped_column(String(128), nullable=True)
    programmed: Mapped[bool] = mapped_column(Boolean, default=False)
    released: Mapped[bool] = mapped_column(Boolean, default=False)


class AgentHeartbeat(Base):
    """The last signed heartbeat of a party's agent (`suanwang agent ...`): who runs, and how far along."""

    __tablename__ = "agent_heartbeats"
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    sent_at: Mapped[int] = mapped_column(BigInteger)  # unix seconds, as the agent signed it
    indexed_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class NodeMetrics(Base):
    """The newest live figures a provider's agent signed for one of its nodes (agents/node_metrics.py): the
    raw figures (CATS level 0), whether the node is up, and the CFN/CATS services it offers."""

    __tablename__ = "node_metrics"
    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reporter: Mapped[str] = mapped_column(String(42), index=True)  # the node's owner, who signed it
    sent_at: Mapped[int] = mapped_column(BigInteger)  # unix seconds, as the agent signed it
    up: Mapped[bool] = mapped_column(Boolean)
    cpus: Mapped[int] = mapped_column(Integer)
    free_cpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    free_memory_mib: Mapped[int] = mapped_column(BigInteger)
    gpus: Mapped[int] = mapped_column(Integer)
    free_gpus: Mapped[int] = mapped_column(Integer)
    load_1m: Mapped[float] = mapped_column()
    services: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"service_id", "service_time_ms"}]
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
