"""Orders: a buyer's EIP-712 signed order goes in; its way through matching, the chain, the job and
settlement comes out. Wei amounts are decimal strings. The routes parse, call the intake and quote
services (`suanwang.api.services`) and shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from suanwang.api.deps import RuntimeDep, SessionDep
from suanwang.api.order_schema import OrderIn, OrderSubmission, QuoteRequest
from suanwang.api.schemas import ADDRESS_PATTERN, RequestModel
from suanwang.api.services import intake
from suanwang.api.services import quote as quoting
from suanwang.errors import NotFoundError, SuanwangError
from suanwang.privacy.documents import MAX_RESULT_BYTES
from suanwang.states import DealStatus, OrderState
from suanwang.storage.models import OrderRecord
from suanwang.storage.read_models import OrderParts, ReadModels
from suanwang.storage.repositories import Repositories

router = APIRouter(prefix="/api/orders", tags=["orders"])


class DealOut(BaseModel):
    status: DealStatus
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
    state: OrderState = Field(description="where the service has taken the order (the deal's status is in `deal`)")
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


def _out(session: Session, record: OrderRecord, parts: OrderParts | None = None) -> OrderOut:
    deal, job, lease, settlement = parts or ReadModels(session).orders.parts([record.id])[record.id]
    return OrderOut(
        id=record.id,
        buyer=record.buyer,
        state=OrderState(record.state),
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
        deal=DealOut.model_validate(deal, from_attributes=True) if deal else None,
        job=JobOut.model_validate(job, from_attributes=True) if job else None,
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
    return _out(session, intake.place_order(body, runtime, session))


class OrderBatch(RequestModel):
    orders: list[OrderSubmission] = Field(min_length=1, max_length=500)


class BatchItemOut(BaseModel):
    index: int
    id: str | None = None
    state: OrderState | None = None
    error: dict[str, Any] | None = Field(None, description="the error shape's `error`, for this order only")


class BatchOut(BaseModel):
    accepted: int
    results: list[BatchItemOut]


@router.post("/batch", response_model=BatchOut, summary="Submit many signed orders at once (each checked alone)")
def submit_orders(body: OrderBatch, runtime: RuntimeDep, session: SessionDep) -> BatchOut:
    results = [
        _batch_error(index, placed)
        if isinstance(placed, SuanwangError)
        else BatchItemOut(index=index, id=placed.id, state=OrderState(placed.state), error=None)
        for index, placed in enumerate(intake.place_orders(body.orders, runtime, session))
    ]
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
    state: Annotated[OrderState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> OrderPage:
    orders = ReadModels(session).orders
    page = orders.page(buyer, state, limit, offset)
    parts = orders.parts([r.id for r in page.items])
    return OrderPage(total=page.total, items=[_out(session, r, parts[r.id]) for r in page.items])


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    summary="One order, with its deal, job and settlement",
    responses={404: {"description": "no such order"}},
)
def get_order(order_id: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")], session: SessionDep) -> OrderOut:
    record = Repositories(session).orders.get(order_id.lower())
    if record is None:
        raise NotFoundError(f"no order {order_id}", field="order_id")
    return _out(session, record)


class Candidate(BaseModel):
    node_id: int
    owner: str
    price_per_cu_hour: str
    bill: dict[str, Any]
    route: dict[str, Any]
    encryption_key: str | None = Field(
        description="the X25519 public key to seal the specification to (0x-hex); null: the node has none"
    )
    sealable: bool = Field(description="whether the node can read a sealed specification (it has a key)")
    note: str | None = Field(None, description="why a node is not a candidate for a sealed order")


class QuoteOut(BaseModel):
    order: OrderIn = Field(description="the order to sign once its specDigest is the sealed specification's digest")
    order_id: str = Field(description="the id of `order` as quoted (specDigest zero): the signed order's differs")
    typed_data: dict[str, Any]
    candidates: list[Candidate] = Field(description="seal the specification to every sealable one and to yourself")
    explanation: list[str]
    max_result_bytes: int = Field(
        description="the largest output of a job the content store takes once sealed (MAX_CONTENT_BYTES less the "
        "envelope's base64 and header), bytes"
    )


@router.post("/quote", response_model=QuoteOut, summary="The order to sign and the nodes that would take it")
def quote(body: QuoteRequest, runtime: RuntimeDep) -> QuoteOut:
    answer = quoting.quote(body, runtime)
    return QuoteOut(
        order=answer.order,
        order_id=answer.order_id,
        typed_data=answer.typed_data,
        candidates=[
            Candidate(
                node_id=c["node_id"],
                owner=c["owner"],
                price_per_cu_hour=str(c["price_per_cu_hour"]),
                bill=c["bill"],
                route=c["route"],
                encryption_key=c["encryption_key"],
                sealable=c["encryption_key"] is not None,
                note=None if c["encryption_key"] is not None else quoting.NO_KEY,
            )
            for c in answer.candidates
        ],
        explanation=answer.explanation,
        max_result_bytes=MAX_RESULT_BYTES,
    )
