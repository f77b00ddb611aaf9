"""The parties' agents as their signed heartbeats tell: which run, and how far along each one is."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from suanwang.agents.heartbeat import MAX_SKEW_S, heartbeat_signer
from suanwang.api.deps import SessionDep
from suanwang.api.schemas import ADDRESS_PATTERN
from suanwang.errors import InputError
from suanwang.storage.models import AgentHeartbeat
from suanwang.storage.read_models import ReadModels
from suanwang.storage.repositories import Repositories

router = APIRouter(prefix="/api/agents", tags=["agents"])

AgentRole = Literal["provider", "operator", "buyer"]


class HeartbeatDocument(BaseModel):
    role: AgentRole
    address: str = Field(pattern=ADDRESS_PATTERN)
    at: int = Field(ge=0, le=2**40, description="unix seconds when the agent signed it")
    indexed_block: int | None = Field(None, ge=0, le=2**63 - 1)
    last_error: str | None = Field(None, max_length=2000)


class HeartbeatIn(BaseModel):
    document: HeartbeatDocument
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="EIP-191 signature of the document's JSON")


class AgentOut(BaseModel):
    address: str
    role: AgentRole
    sent_at: int
    indexed_block: int | None
    last_error: str | None
    received_at: datetime
    seconds_since: float = Field(description="seconds since the agent signed its last heartbeat")


def _out(row: AgentHeartbeat) -> AgentOut:
    return AgentOut(
        address=row.address,
        role=row.role,  # type: ignore[arg-type]
        sent_at=row.sent_at,
        indexed_block=row.indexed_block,
        last_error=row.last_error,
        received_at=row.received_at,
        seconds_since=max(0.0, time.time() - row.sent_at),
    )


@router.post("/heartbeat", response_model=AgentOut, summary="An agent says it runs (signed with its own key)")
def heartbeat(body: HeartbeatIn, session: SessionDep) -> AgentOut:
    document = body.document.model_dump()
    try:
        signer = heartbeat_signer(document, body.signature)
    except Exception:
        raise InputError("the signature does not recover to any address", field="signature") from None
    if signer.lower() != body.document.address.lower():
        raise InputError(f"signed by {signer}, not by {body.document.address}", field="signature")
    if abs(time.time() - body.document.at) > MAX_SKEW_S:
        raise InputError(f"signed at {body.document.at}, more than {MAX_SKEW_S} s from now", field="document.at")
    heartbeats = Repositories(session).heartbeats
    row = heartbeats.get(signer, body.document.role)
    if row is not None and row.sent_at > body.document.at:
        return _out(row)  # an older heartbeat replayed: the newer stays
    if row is None:
        row = AgentHeartbeat(address=signer, role=body.document.role)
        heartbeats.add(row)
    row.sent_at, row.indexed_block, row.last_error = (
        body.document.at,
        body.document.indexed_block,
        body.document.last_error,
    )
    row.received_at = datetime.now(UTC)
    session.commit()
    return _out(row)


@router.get("", response_model=list[AgentOut], summary="The agents that sent a heartbeat, newest first")
def list_agents(
    session: SessionDep,
    address: Annotated[str | None, Query(pattern=ADDRESS_PATTERN)] = None,
) -> list[AgentOut]:
    return [_out(r) for r in ReadModels(session).heartbeats.newest_first(address)]
