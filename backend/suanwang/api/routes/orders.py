"""Orders: a buyer's EIP-712 signed order goes in; its way through matching, the chain, the job and
settlement comes out. Wei amounts are decimal strings."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field, ValidationInfo, field_validator
from sqlalchemy import func, select

from suanwang.api.deps import RuntimeDep, SessionDep
from suanwang.api.intake import ChainFacts, refuse_doomed
from suanwang.api.routes.nodes import ADDRESS_PATTERN
from suanwang.api.schemas import RequestModel
from suanwang.chain.market import order_id, order_id_and_signer, typed_order
from suanwang.content import spec_digest
from suanwang.errors import ConflictError, InfeasibleError, InputError, NotFoundError, SuanwangError
from suanwang.storage.models import Deal, Job, Lease, OrderRecord, Settlement

router = APIRouter(prefix="/api/orders", tags=["orders"])

U256_DECIMAL = r"^[0-9]{1,78}$"
BYTES32_HEX = r"^0x[0-9a-fA-F]{64}$"
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = "0x" + "00" * 32
# A quoted order's nonce: the buyer's nonce floor plus a random counter below 2**40 (IMarket.cancelAllOrders).
NONCE_COUNTER_BITS = 40


def _bounded(value: str, bits: int, name: str) -> str:
    if int(value) >= 2**bits:
        raise ValueError(f"{name} must be below 2^{bits}")
    return value


class OrderIn(RequestModel):
    """The Order struct exactly as the buyer signed it (contracts/interfaces/IMarket.sol)."""

    buyer: str = Field(pattern=ADDRESS_PATTERN)
    matcher: str = Field(pattern=ADDRESS_PATTERN, description="the only matcher that may match it; 0x0...0 = any")
    logicMcu: int = Field(ge=0, lt=2**64)
    parallelMcu: int = Field(ge=0, lt=2**64)
    neuralMcu: int = Field(ge=0, lt=2**64)
    memoryMib: int = Field(ge=0, lt=2**32)
    gpuModel: int = Field(ge=0, lt=2**16, description="device catalog code; 0 = any")
    gpuCount: int = Field(ge=0, lt=2**16)
    gpuMilli: int = Field(ge=0, le=1000, description="a share of one GPU in milli-GPU (OpenB gpu_milli); 0 = none")
    minTier: int = Field(ge=0, le=3)
    duration: int = Field(ge=1, lt=2**32, description="seconds")
    minRunSeconds: int = Field(
        ge=0, lt=2**32, description="seconds: not completed earlier, billed at least this long; <= duration"
    )
    maxPricePerCuHour: str = Field(pattern=U256_DECIMAL, description="token base units per CU-hour")
    maxTotal: str = Field(pattern=U256_DECIMAL, description="the whole bill's limit, token base units")
    maxTransit: str = Field(pattern=U256_DECIMAL, description="the transit fees' limit, token base units")
    maxLatencyMs: int = Field(ge=0, lt=2**32, description="0 = no bound")
    minBandwidthMbps: int = Field(ge=0, lt=2**32, description="reserved on the path; transit is priced on it")
    autoAccept: bool
    expiry: int = Field(ge=0, lt=2**40, description="unix time")
    nonce: int = Field(ge=0, lt=2**64, description="at least the buyer's nonce floor (Market.nonceFloorOf)")
    epoch: int = Field(ge=0, lt=2**32, description="the value epoch it is signed in (Federation.epoch)")
    specDigest: str = Field(
        pattern=BYTES32_HEX, description="sha2-256 digest of the job specification (the digest inside its CID)"
    )
    serviceId: str = Field(pattern=BYTES32_HEX, description="CFN/CATS anycast service id; 0x00...0 = none")
    apnId: int = Field(ge=0, lt=2**64, description="APN6 APN ID (APP-GROUP-ID 32 | USER-GROUP-ID 32); 0 = none")
    apnSlaClass: int = Field(ge=0, lt=2**8, description="APN6 SLA class; 0 = none")

    @field_validator("maxPricePerCuHour", "maxTotal", "maxTransit")
    @classmethod
    def _u128(cls, value: str) -> str:
        return _bounded(value, 128, "the amount")

    @field_validator("minRunSeconds")
    @classmethod
    def _within_duration(cls, value: int, info: ValidationInfo) -> int:
        duration = info.data.get("duration")
        if duration is not None and value > duration:
            raise ValueError(f"minRunSeconds ({value}) must not exceed the duration ({duration} s)")
        return value

    def as_struct(self) -> dict[str, Any]:
        out = self.model_dump()
        for name in ("maxPricePerCuHour", "maxTotal", "maxTransit"):
            out[name] = int(out[name])
        return out


class JobIn(RequestModel):
    command: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(min_length=1, max_length=64)


class OrderSubmission(RequestModel):
    order: OrderIn
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="the buyer's EIP-712 signature")
    access_point: str = Field(min_length=1, max_length=200, description="the buyer's router (name or label)")
    job: JobIn


class DealOut(BaseModel):
    status: str
    deadline: int
    seller: str
    node_id: int
    result_cid: str | None
    valueless: bool
    used_seconds: int | None = Field(
        None, description="the seconds billed, fixed at completion: the compute and platform fees are prorated to it"
    )


class JobOut(BaseModel):
    state: str
    executor: str
    executor_node: str | None
    exit_code: int | None
    reason: str | None
    result_cid: str | None
    running_at: datetime | None = Field(
        None, description="when the service first saw the executor run the job (running, or already finished)"
    )


class SettlementOut(BaseModel):
    outcome: str
    compute_fee: str
    transit_total: str
    platform_fee: str
    refunded: str
    slashed_to_buyer: str
    slashed_to_platform: str
    valueless: bool


class OrderOut(BaseModel):
    id: str
    buyer: str
    state: str = Field(description="new, submitting, on_chain or unmatched (the deal's status is in `deal`)")
    access_point: str
    reason: str | None
    explanation: list[str] | None
    node_id: int | None
    bill: dict[str, Any] | None
    route: dict[str, Any] | None
    spec_cid: str
    match_tx: str | None = Field(None, description="the transaction that carried the match to the chain")
    created_at: datetime
    matched_at: datetime | None = Field(
        None, description="when the service read the receipt of the block that matched the order on chain"
    )
    deal: DealOut | None
    job: JobOut | None
    lease_reserved_gbps: float | None
    settlement: SettlementOut | None


class OrderPage(BaseModel):
    total: int
    items: list[OrderOut]


def _related(session: Any, ids: list[str]) -> dict[str, tuple[Any, Any, Any, Any]]:
    """Each order's deal, job, lease and settlement (or None), keyed like the order by its id: one
    query per table for a whole page, not four per order."""
    found: list[dict[str, Any]] = [
        {row.id: row for row in session.scalars(select(Deal).where(Deal.id.in_(ids)))},
        *(
            {row.deal_id: row for row in session.scalars(select(model).where(model.deal_id.in_(ids)))}
            for model in (Job, Lease, Settlement)
        ),
    ]
    return {i: (found[0].get(i), found[1].get(i), found[2].get(i), found[3].get(i)) for i in ids}


def _out(session: Any, record: OrderRecord, related: tuple[Any, Any, Any, Any] | None = None) -> OrderOut:
    deal, job, lease, settlement = related or _related(session, [record.id])[record.id]
    return OrderOut(
        id=record.id,
        buyer=record.buyer,
        state=record.state,
        access_point=record.access_point,
        reason=record.reason,
        explanation=record.explanation,
        node_id=record.node_id,
        bill=record.bill,
        route=record.route,
        spec_cid=record.spec_cid,
        match_tx=record.tx_hash,
        created_at=record.created_at,
        matched_at=record.matched_at,
        deal=DealOut(
            status=deal.status,
            deadline=deal.deadline,
            seller=deal.seller,
            node_id=deal.node_id,
            result_cid=deal.result_cid,
            valueless=deal.valueless,
            used_seconds=deal.used_seconds,
        )
        if deal
        else None,
        job=JobOut(
            state=job.state,
            executor=job.executor,
            executor_node=job.executor_node,
            exit_code=job.exit_code,
            reason=job.reason,
            result_cid=job.result_cid,
            running_at=job.running_at,
        )
        if job
        else None,
        lease_reserved_gbps=lease.bandwidth_gbps if lease and lease.reservation else None,
        settlement=SettlementOut.model_validate(settlement, from_attributes=True) if settlement else None,
    )


@router.post(
    "",
    response_model=OrderOut,
    status_code=status.HTTP_201_CREATED,
    summary="Submit a signed order",
    responses={
        400: {"description": "bad signature or unknown access point"},
        409: {"description": "the same signed order was placed before with another access point"},
    },
)
def submit_order(body: OrderSubmission, runtime: RuntimeDep, session: SessionDep) -> OrderOut:
    record = _accept(body, runtime, session)
    session.commit()
    return _out(session, record)


def _accept(body: OrderSubmission, runtime: Any, session: Any) -> OrderRecord:
    """Checks a signed order and stores it as new (or returns the stored one: the same signed order
    twice is the same order). Raises InputError naming the field at fault."""
    oid, struct, access = _checked(body, runtime)
    existing = session.get(OrderRecord, oid)
    if existing is not None:
        return _same_placement(existing, body, access)
    return _new_order(body, runtime, session, oid, struct, access, ChainFacts(runtime))


def _same_placement(existing: OrderRecord, body: OrderSubmission, access: str) -> OrderRecord:
    """The stored order when `body` places the same signed order the same way (a retry); ConflictError
    when it names another access point, which the buyer's signature does not cover (the job it does: its
    digest is the order's specDigest, checked before)."""
    once = "a signed order is placed once: sign a new one (another nonce) to order again"
    if existing.access_point != access:
        raise ConflictError(
            f"this signed order was already placed from access point {existing.access_point!r}, not {access!r}; {once}",
            field="access_point",
        )
    return existing


def job_document(command: list[str]) -> bytes:
    """The job specification as stored and content-addressed: an order's specDigest is its sha2-256 digest."""
    return json.dumps({"command": list(command)}, sort_keys=True).encode()


def _job_spec(body: OrderSubmission) -> bytes:
    return job_document(body.job.command)


def _checked(body: OrderSubmission, runtime: Any) -> tuple[str, dict[str, Any], str]:
    """The order's id, its struct and its access router's name, once its signature is the buyer's and
    its access point is in the network; InputError naming the field at fault otherwise."""
    deployment = runtime.load_deployment()
    market = deployment.contracts.get("Market")
    if market is None:
        raise NotFoundError("this deployment has no Market contract", field="order")
    struct = body.order.as_struct()
    try:
        oid, signer = order_id_and_signer(struct, body.signature, deployment.chain_id, market)
    except Exception as exc:
        raise InputError(f"the signature cannot be recovered ({exc})", field="signature") from exc
    if signer.lower() != body.order.buyer.lower():
        raise InputError(
            f"the signature is {signer}'s, not the buyer {body.order.buyer}'s (chain "
            f"{deployment.chain_id}, market {market})",
            field="signature",
        )
    digest = spec_digest(_job_spec(body))
    if body.order.specDigest.lower() != digest:
        raise InputError(
            f"the order's specDigest {body.order.specDigest} is not the digest of this job's specification, {digest}: "
            "the buyer signs the job it places (sign the order again with that digest)",
            field="order.specDigest",
        )
    network = runtime.marketplace().network
    try:
        access = network.routers[network.router_index(body.access_point)].name
    except (InputError, NotFoundError) as exc:
        raise InputError(exc.message, field="access_point") from exc
    return oid, struct, access


def _new_order(
    body: OrderSubmission, runtime: Any, session: Any, oid: str, struct: dict[str, Any], access: str, facts: ChainFacts
) -> OrderRecord:
    refuse_doomed(struct, facts)
    spec_cid = runtime.content().put(_job_spec(body))
    created = datetime.now(UTC)
    record = OrderRecord(
        id=oid,
        buyer=body.order.buyer,
        order=struct,
        signature=body.signature,
        access_point=access,
        spec_cid=spec_cid,
        state="new",
        attempts=0,
        created_at=created,
        updated_at=created,
    )
    session.add(record)
    return record


class OrderBatch(RequestModel):
    orders: list[OrderSubmission] = Field(min_length=1, max_length=500)


class BatchItemOut(BaseModel):
    index: int
    id: str | None = None
    state: str | None = None
    error: dict[str, Any] | None = Field(None, description="the error shape's `error`, for this order only")


class BatchOut(BaseModel):
    accepted: int
    results: list[BatchItemOut]


@router.post("/batch", response_model=BatchOut, summary="Submit many signed orders at once (each checked alone)")
def submit_orders(body: OrderBatch, runtime: RuntimeDep, session: SessionDep) -> BatchOut:
    checked: list[tuple[str, dict[str, Any], str] | SuanwangError] = []
    for item in body.orders:
        try:
            checked.append(_checked(item, runtime))
        except SuanwangError as exc:
            checked.append(exc)
    # The orders already stored, in one query; the batch's new rows are written together at the commit
    # (a flush per order would hold SQLite's one write lock for the whole request, and the service's
    # other writers wait for it).
    ids = [c[0] for c in checked if not isinstance(c, SuanwangError)]
    known: dict[str, OrderRecord] = {
        r.id: r for r in session.scalars(select(OrderRecord).where(OrderRecord.id.in_(ids)))
    }
    results = []
    facts = ChainFacts(runtime)
    with session.no_autoflush:
        for index, (item, check) in enumerate(zip(body.orders, checked, strict=True)):
            if isinstance(check, SuanwangError):
                results.append(_batch_error(index, check))
                continue
            oid, struct, access = check
            try:
                stored = known.get(oid)
                record = (
                    _same_placement(stored, item, access)
                    if stored is not None
                    else _new_order(item, runtime, session, oid, struct, access, facts)
                )
            except SuanwangError as exc:
                results.append(_batch_error(index, exc))
                continue
            known[oid] = record  # the same signed order twice in one batch is one order
            results.append(BatchItemOut(index=index, id=record.id, state=record.state, error=None))
    session.commit()
    return BatchOut(accepted=sum(1 for r in results if r.error is None), results=results)


def _batch_error(index: int, exc: SuanwangError) -> BatchItemOut:
    """The error shape for one order of a batch, naming `orders.<index>.<field>`."""
    field = f"orders.{index}.{exc.field}" if exc.field else f"orders.{index}"
    return BatchItemOut(
        index=index,
        error={
            "code": exc.code,
            "message": exc.message,
            "fields": [{"field": field, "location": "body", "message": exc.message}],
        },
    )


@router.get("", response_model=OrderPage, summary="List orders")
def list_orders(
    session: SessionDep,
    buyer: Annotated[str | None, Query(pattern=ADDRESS_PATTERN)] = None,
    state: Annotated[str | None, Query(pattern=r"^(new|submitting|on_chain|unmatched)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> OrderPage:
    query = select(OrderRecord)
    if buyer is not None:
        query = query.where(func.lower(OrderRecord.buyer) == buyer.lower())
    if state is not None:
        query = query.where(OrderRecord.state == state)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(session.scalars(query.order_by(OrderRecord.created_at.desc()).limit(limit).offset(offset)))
    related = _related(session, [r.id for r in rows])
    return OrderPage(total=total, items=[_out(session, r, related[r.id]) for r in rows])


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    summary="One order, with its deal, job and settlement",
    responses={404: {"description": "no such order"}},
)
def get_order(order_id: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")], session: SessionDep) -> OrderOut:
    record = session.get(OrderRecord, order_id.lower())
    if record is None:
        raise NotFoundError(f"no order {order_id}", field="order_id")
    return _out(session, record)


class QuoteRequest(RequestModel):
    """What a buyer wants; the answer is the Order to sign and the nodes that would take it."""

    buyer: str = Field(pattern=ADDRESS_PATTERN)
    logic_mcu: int = Field(0, ge=0, lt=2**64, description="scalar/integer compute, milli-CU")
    parallel_mcu: int = Field(0, ge=0, lt=2**64, description="vector FP32/FP64 compute, milli-CU")
    neural_mcu: int = Field(0, ge=0, lt=2**64, description="tensor compute, milli-CU")
    memory_mib: int = Field(0, ge=0, lt=2**32)
    gpu_model: int = Field(0, ge=0, lt=2**16, description="device catalog code; 0 = any")
    gpu_count: int = Field(0, ge=0, lt=2**16)
    min_tier: int = Field(0, ge=0, le=3)
    duration_s: int = Field(ge=1, le=365 * 86400)
    max_price_per_cu_hour: str = Field(pattern=U256_DECIMAL, description="token base units per CU-hour")
    max_total: str = Field(pattern=U256_DECIMAL, description="token base units")
    access_point: str = Field(min_length=1, max_length=200)
    max_latency_ms: int = Field(0, ge=0, lt=2**32, description="0 = no bound")
    min_bandwidth_mbps: int = Field(0, ge=0, lt=2**32, description="reserved on the path; transit is priced on it")
    max_transit: str = Field(
        "10000000000000000000", pattern=U256_DECIMAL, description="the transit fees' limit, token base units"
    )
    auto_accept: bool = True
    valid_for_s: int = Field(3600, ge=60, le=30 * 86400)
    gpu_milli: int = Field(0, ge=0, le=1000, description="a share of one GPU in milli-GPU; 0 = none")
    min_run_s: int = Field(0, ge=0, lt=2**32, description="not completed earlier, billed at least this long")
    matcher: str = Field(ZERO_ADDRESS, pattern=ADDRESS_PATTERN, description="the only matcher allowed; 0x0...0 = any")
    service_id: str = Field(ZERO_BYTES32, pattern=BYTES32_HEX, description="CFN/CATS service id; 0x00...0 = none")
    apn_id: int = Field(0, ge=0, lt=2**64, description="APN6 APN ID; 0 = none")
    apn_sla_class: int = Field(0, ge=0, lt=2**8, description="APN6 SLA class; 0 = none")
    job: JobIn = Field(description="what the node runs: the order signs its specification's digest (specDigest)")

    @field_validator("max_price_per_cu_hour", "max_total", "max_transit")
    @classmethod
    def _u128(cls, value: str) -> str:
        return _bounded(value, 128, "the amount")

    @field_validator("min_run_s")
    @classmethod
    def _within_duration(cls, value: int, info: ValidationInfo) -> int:
        duration = info.data.get("duration_s")
        if duration is not None and value > duration:
            raise ValueError(f"min_run_s ({value}) must not exceed the duration ({duration} s)")
        return value


class Candidate(BaseModel):
    node_id: int
    owner: str
    price_per_cu_hour: str
    bill: dict[str, Any]
    route: dict[str, Any]


class QuoteOut(BaseModel):
    order: OrderIn
    order_id: str
    typed_data: dict[str, Any]
    candidates: list[Candidate]
    explanation: list[str]


@router.post("/quote", response_model=QuoteOut, summary="The order to sign and the nodes that would take it")
def quote(body: QuoteRequest, runtime: RuntimeDep) -> QuoteOut:
    if body.logic_mcu + body.parallel_mcu + body.neural_mcu == 0:
        raise InputError("ask for some compute in at least one class", field="logic_mcu")
    deployment = runtime.load_deployment()
    market = deployment.contracts["Market"]
    network = runtime.marketplace().network
    try:
        access = network.routers[network.router_index(body.access_point)].name
    except (InputError, NotFoundError) as exc:
        raise InputError(exc.message, field="access_point") from exc
    chain_time = int(runtime.w3.eth.get_block("latest")["timestamp"])
    orchestrator = runtime.orchestrator()
    epoch = int(orchestrator.contracts["Federation"].functions.epoch().call())
    floor = int(orchestrator.market.functions.nonceFloorOf(body.buyer).call())
    order = OrderIn(
        buyer=body.buyer,
        matcher=body.matcher,
        logicMcu=body.logic_mcu,
        parallelMcu=body.parallel_mcu,
        neuralMcu=body.neural_mcu,
        memoryMib=body.memory_mib,
        gpuModel=body.gpu_model,
        gpuCount=body.gpu_count,
        gpuMilli=body.gpu_milli,
        minTier=body.min_tier,
        duration=body.duration_s,
        minRunSeconds=body.min_run_s,
        maxPricePerCuHour=body.max_price_per_cu_hour,
        maxTotal=body.max_total,
        maxTransit=body.max_transit,
        maxLatencyMs=body.max_latency_ms,
        minBandwidthMbps=body.min_bandwidth_mbps,
        autoAccept=body.auto_accept,
        expiry=chain_time + body.valid_for_s,
        # At or above the buyer's floor; exact in a JavaScript number while the floor is below 2**52, so
        # browsers sign what was quoted.
        nonce=floor + secrets.randbits(NONCE_COUNTER_BITS),
        epoch=epoch,
        specDigest=spec_digest(job_document(body.job.command)),
        serviceId=body.service_id,
        apnId=body.apn_id,
        apnSlaClass=body.apn_sla_class,
    )
    struct = order.as_struct()
    for _ in range(50):  # a quote against a stale index would miss nodes: wait (briefly) for it
        if orchestrator.caught_up():
            break
        time.sleep(0.1)
    else:
        raise InfeasibleError("the market is still reading the chain; ask again in a moment", field="access_point")
    candidates, explanation = orchestrator.quote(struct, access)
    typed = typed_order(struct, deployment.chain_id, market)
    typed["message"] = {
        k: str(v) if isinstance(v, int) and not isinstance(v, bool) and v > 2**53 else v
        for k, v in typed["message"].items()
    }
    return QuoteOut(
        order=order,
        order_id=order_id(struct, deployment.chain_id, market),
        typed_data=typed,
        candidates=[
            Candidate(
                node_id=c["node_id"],
                owner=c["owner"],
                price_per_cu_hour=str(c["price_per_cu_hour"]),
                bill=c["bill"],
                route=c["route"],
            )
            for c in candidates
        ],
        explanation=explanation,
    )
