"""Live node metrics: what each provider's agent signs, with its own key, about its nodes (free CPUs,
memory and GPUs, load, up or down, the CFN/CATS services offered), and how the matcher judges them.

A report is accepted only when signed (EIP-191, the document's canonical JSON, as heartbeats) by the
owner of every node it names, as the node registry's events say; a report signed more than MAX_SKEW_S
from the service's clock is refused; an older report than the one held for a node is ignored (a replay
changes nothing)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from suanwang.agents.heartbeat import heartbeat_signer
from suanwang.api.deps import RuntimeDep, SessionDep
from suanwang.api.schemas import ADDRESS_PATTERN
from suanwang.errors import InputError, NotFoundError
from suanwang.lifecycle.market_view import LivenessRule, SellerReliability
from suanwang.network.cfn import cats_level, utilisation
from suanwang.storage.models import NodeMetrics
from suanwang.storage.read_models import ReadModels
from suanwang.storage.repositories import Repositories

router = APIRouter(prefix="/api/nodes", tags=["nodes"])

# Tighter than a heartbeat's: a report keeps a node live for two report intervals from when it was
# signed, so a report dated far ahead must not be taken (docs/matching.md, "Live node metrics").
MAX_SKEW_S = 60
SERVICE_ID_PATTERN = r"^0x[0-9a-f]{64}$"


class ServiceOffer(BaseModel):
    service_id: str = Field(pattern=SERVICE_ID_PATTERN, description="CFN/CATS anycast service id (bytes32)")
    service_time_ms: float = Field(gt=0, le=3_600_000, description="time one request takes on the idle node")


class NodeFigures(BaseModel):
    node_id: int = Field(ge=1, le=2**63 - 1)
    up: bool
    cpus: int = Field(ge=0, le=2**31 - 1)
    free_cpus: int = Field(ge=0, le=2**31 - 1)
    memory_mib: int = Field(ge=0, le=2**53)
    free_memory_mib: int = Field(ge=0, le=2**53)
    gpus: int = Field(ge=0, le=2**31 - 1)
    free_gpus: int = Field(ge=0, le=2**31 - 1)
    load_1m: float = Field(ge=0, le=1_000_000, description="the one-minute load average")
    services: list[ServiceOffer] = Field(default_factory=list, max_length=64)


class MetricsDocument(BaseModel):
    kind: Literal["node_metrics"] = Field(description="what the signature covers (not a heartbeat)")
    reporter: str = Field(pattern=ADDRESS_PATTERN, description="the nodes' owner, who signs")
    at: int = Field(ge=0, le=2**40, description="unix seconds when the agent signed it")
    nodes: list[NodeFigures] = Field(min_length=1, max_length=1000)


class MetricsIn(BaseModel):
    document: MetricsDocument
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="EIP-191 signature of the document's JSON")


class CatsLevels(BaseModel):
    """The CATS metric draft's normalised levels (draft-ietf-cats-metric-definition-08): level 1 per
    resource, round(10 * the share free), 0..10 (10 = idle); level 2 the lowest of them (0 when down)."""

    cpu: int
    memory: int
    gpu: int | None = Field(description="None on a node without GPUs")
    level2: int


class NodeMetricsOut(BaseModel):
    node_id: int
    reporter: str
    sent_at: int
    received_at: datetime
    seconds_since: float = Field(description="seconds since the report was signed (or received, if earlier)")
    up: bool
    live: bool = Field(description="what the matcher makes of it: up, and heard from within two intervals")
    cpus: int
    free_cpus: int
    memory_mib: int
    free_memory_mib: int
    gpus: int
    free_gpus: int
    load_1m: float
    utilisation: float = Field(description="0..1: the compute load the service-ID placement uses")
    cats: CatsLevels
    services: list[ServiceOffer]


def _share(free: int, total: int) -> float:
    return free / total if total > 0 else 0.0


def _out(row: NodeMetrics, rule: LivenessRule, now: float) -> NodeMetricsOut:
    condition = rule.condition(row, True, now)
    cpu, memory = cats_level(_share(row.free_cpus, row.cpus)), cats_level(_share(row.free_memory_mib, row.memory_mib))
    gpu = cats_level(_share(row.free_gpus, row.gpus)) if row.gpus else None
    level2 = min(x for x in (cpu, memory, gpu) if x is not None) if row.up else 0
    return NodeMetricsOut(
        node_id=row.node_id,
        reporter=row.reporter,
        sent_at=row.sent_at,
        received_at=row.received_at,
        seconds_since=max(0.0, now - min(float(row.sent_at), row.received_at.timestamp())),
        up=row.up,
        live=not (condition.down or condition.silent),
        cpus=row.cpus,
        free_cpus=row.free_cpus,
        memory_mib=row.memory_mib,
        free_memory_mib=row.free_memory_mib,
        gpus=row.gpus,
        free_gpus=row.free_gpus,
        load_1m=row.load_1m,
        utilisation=utilisation(row.cpus, row.free_cpus, row.load_1m),
        cats=CatsLevels(cpu=cpu, memory=memory, gpu=gpu, level2=level2),
        services=[ServiceOffer.model_validate(s) for s in row.services],
    )


def _rule(runtime: RuntimeDep) -> LivenessRule:
    return LivenessRule.of(runtime.settings)


def _check_figures(nodes: list[NodeFigures]) -> None:
    seen: set[int] = set()
    for i, node in enumerate(nodes):
        where = f"document.nodes[{i}]"
        if node.node_id in seen:
            raise InputError(f"node {node.node_id} is reported twice in one document", field=f"{where}.node_id")
        seen.add(node.node_id)
        for free, total in (("free_cpus", "cpus"), ("free_memory_mib", "memory_mib"), ("free_gpus", "gpus")):
            if getattr(node, free) > getattr(node, total):
                raise InputError(
                    f"node {node.node_id}: {free} {getattr(node, free)} is more than {total} {getattr(node, total)}",
                    field=f"{where}.{free}",
                )


@router.post(
    "/metrics",
    response_model=list[NodeMetricsOut],
    summary="A provider's agent reports its nodes' live figures (signed with the owner's key)",
)
def report_metrics(body: MetricsIn, session: SessionDep, runtime: RuntimeDep) -> list[NodeMetricsOut]:
    document = body.document
    try:
        signer = heartbeat_signer(document.model_dump(), body.signature)
    except Exception:
        raise InputError("the signature does not recover to any address", field="signature") from None
    if signer.lower() != document.reporter.lower():
        raise InputError(f"signed by {signer}, not by {document.reporter}", field="signature")
    now = time.time()
    if abs(now - document.at) > MAX_SKEW_S:
        raise InputError(f"signed at {document.at}, more than {MAX_SKEW_S} s from now", field="document.at")
    _check_figures(document.nodes)
    repos = Repositories(session)
    for i, node in enumerate(document.nodes):
        indexed = repos.nodes.get(node.node_id)
        if indexed is None:
            raise InputError(f"no node {node.node_id} is registered on chain", field=f"document.nodes[{i}].node_id")
        if indexed.owner.lower() != signer.lower():
            raise InputError(
                f"node {node.node_id} is owned by {indexed.owner}, not by the signer {signer}",
                field=f"document.nodes[{i}].node_id",
            )
    rows = []
    for node in document.nodes:
        row = repos.node_metrics.get(node.node_id)
        if row is not None and row.sent_at > document.at:
            rows.append(row)  # an older report replayed: the newer stays
            continue
        if row is None:
            row = NodeMetrics(node_id=node.node_id)
            repos.node_metrics.add(row)
        row.reporter, row.sent_at, row.received_at = signer, document.at, datetime.now(UTC)
        row.up, row.load_1m = node.up, node.load_1m
        row.cpus, row.free_cpus = node.cpus, node.free_cpus
        row.memory_mib, row.free_memory_mib = node.memory_mib, node.free_memory_mib
        row.gpus, row.free_gpus = node.gpus, node.free_gpus
        row.services = [s.model_dump() for s in node.services]
        rows.append(row)
    session.commit()
    rule = _rule(runtime)
    return [_out(row, rule, now) for row in rows]


class SellerReliabilityOut(BaseModel):
    seller: str
    good: int = Field(description="deals completed or settled")
    bad: int = Field(description="deals refunded after the seller had them accepted: declined, timed out, lost")
    score: float = Field(description="(good + 1) / (good + bad + 2): the matcher's score (docs/matching.md)")


@router.get(
    "/reliability",
    response_model=list[SellerReliabilityOut],
    summary="Each seller's reliability, from its deals' on-chain outcomes alone, as the matcher scores it",
)
def list_reliability(session: SessionDep) -> list[SellerReliabilityOut]:
    # Read afresh from the index (the matcher keeps its own incremental copy): the same rule, the same rows.
    reliability = SellerReliability()
    reliability.update(session)
    return [
        SellerReliabilityOut(seller=seller, good=r.good, bad=r.bad, score=r.score)
        for seller, r in sorted(reliability.records().items())
    ]


@router.get("/metrics", response_model=list[NodeMetricsOut], summary="Every node's newest live metrics, by node id")
def list_metrics(
    session: SessionDep,
    runtime: RuntimeDep,
    owner: Annotated[str | None, Query(pattern=ADDRESS_PATTERN, description="owner address")] = None,
) -> list[NodeMetricsOut]:
    rule, now = _rule(runtime), time.time()
    return [_out(row, rule, now) for row in ReadModels(session).node_metrics.listing(owner)]


@router.get(
    "/{node_id}/metrics",
    response_model=NodeMetricsOut,
    summary="One node's newest live metrics",
    responses={404: {"description": "the node has no metrics report"}},
)
def node_metrics(session: SessionDep, runtime: RuntimeDep, node_id: int) -> NodeMetricsOut:
    row = Repositories(session).node_metrics.get(node_id) if 0 <= node_id < 2**63 else None
    if row is None:
        raise NotFoundError(f"node {node_id} has no metrics report", field="node_id")
    return _out(row, _rule(runtime), time.time())
