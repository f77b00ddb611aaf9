"""Compute nodes as indexed from the NodeRegistry contract's events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from suanwang.api.deps import SessionDep
from suanwang.api.schemas import ADDRESS_PATTERN, NodeOut, NodePage, NodeStatusName
from suanwang.errors import NotFoundError
from suanwang.storage.models import Node
from suanwang.storage.read_models import NodeFilter, ReadModels
from suanwang.storage.repositories import Repositories

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
    wanted = NodeFilter(owner, operator, status, gpu_model, tier, min_memory_mib, min_gpu_count)
    page = ReadModels(session).nodes.page(wanted, limit, offset)
    return NodePage(total=page.total, items=[_out(n) for n in page.items])


@router.get("/{node_id}", response_model=NodeOut, summary="One node", responses={404: {"description": "no such node"}})
def get_node(session: SessionDep, node_id: int) -> NodeOut:
    node = Repositories(session).nodes.get(node_id) if 0 <= node_id < 2**63 else None
    if node is None:
        raise NotFoundError(f"no node {node_id} is indexed", field="node_id")
    return _out(node)
