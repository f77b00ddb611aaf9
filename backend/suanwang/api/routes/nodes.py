"""Compute nodes as indexed from the NodeRegistry contract's events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from suanwang.api.deps import SessionDep
from suanwang.api.schemas import ADDRESS_PATTERN, NodeOut, NodePage, NodeStatusName
from suanwang.errors import NotFoundError
from suanwang.storage.models import Node

router = APIRouter(prefix="/api/nodes", tags=["nodes"])


def _out(node: Node) -> NodeOut:
    return NodeOut.model_validate(node, from_attributes=True)


@router.get("", response_model=NodePage, summary="List nodes, filtered")
def list_nodes(
    session: SessionDep,
    owner: Annotated[str | None, Query(pattern=ADDRESS_PATTERN, description="owner address")] = None,
    operator: Annotated[str | None, Query(pattern=ADDRESS_PATTERN, description="network operator address")] = None,
    status: Annotated[NodeStatusName | None, Query()] = None,
    gpu_model: Annotated[int | None, Query(ge=0, le=65535, description="device catalog index; 0 = no GPU")] = None,
    tier: Annotated[int | None, Query(ge=0, le=3)] = None,
    min_memory_mib: Annotated[int | None, Query(ge=0, le=2**32 - 1)] = None,
    min_gpu_count: Annotated[int | None, Query(ge=0, le=65535)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> NodePage:
    query = select(Node)
    if owner is not None:
        query = query.where(func.lower(Node.owner) == owner.lower())
    if operator is not None:
        query = query.where(func.lower(Node.operator) == operator.lower())
    if status is not None:
        query = query.where(Node.status == status)
    if gpu_model is not None:
        query = query.where(Node.gpu_model == gpu_model)
    if tier is not None:
        query = query.where(Node.tier == tier)
    if min_memory_mib is not None:
        query = query.where(Node.memory_mib >= min_memory_mib)
    if min_gpu_count is not None:
        query = query.where(Node.gpu_count >= min_gpu_count)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Node.node_id).limit(limit).offset(offset))
    return NodePage(total=total, items=[_out(n) for n in rows])


@router.get("/{node_id}", response_model=NodeOut, summary="One node", responses={404: {"description": "no such node"}})
def get_node(session: SessionDep, node_id: int) -> NodeOut:
    node = session.get(Node, node_id) if 0 <= node_id < 2**63 else None
    if node is None:
        raise NotFoundError(f"no node {node_id} is indexed", field="node_id")
    return _out(node)
