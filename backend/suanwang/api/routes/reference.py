"""Reference data the clients need: the device catalog (GPU model codes) and the network."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from suanwang.api.deps import RuntimeDep
from suanwang.compute import default_catalog
from suanwang.errors import SuanwangError

router = APIRouter(tags=["reference"])


class DeviceOut(BaseModel):
    code: int
    name: str
    vendor: str
    kind: str
    fp64_tflops: float | None
    fp32_tflops: float | None
    fp16_tflops: float | None
    int8_tops: float | None
    memory_gib: float | None
    source: str


class RouterOut(BaseModel):
    index: int
    name: str
    operator: str
    label: str
    latitude: float
    longitude: float
    router_id: str
    locator: str
    locator_bytes16: str
    locator_length: int


class LinkOut(BaseModel):
    a: int
    b: int
    operator: str | None
    latency_ms: float
    capacity_gbps: float
    free_gbps: float


class TopologyOut(BaseModel):
    operators: list[str]
    routers: list[RouterOut]
    links: list[LinkOut]


class RouteOut(BaseModel):
    path: list[str]
    latency_ms: float
    bandwidth_gbps: float
    segments: list[str]
    operators: list[str]
    transit_fee_per_gbps_hour: dict[str, str]


@router.get("/api/catalog/devices", response_model=list[DeviceOut], summary="The device catalog (GPU model codes)")
def devices() -> list[DeviceOut]:
    return [
        DeviceOut(
            code=int(d.code),
            name=d.name,
            vendor=d.vendor,
            kind=str(d.kind),
            fp64_tflops=d.fp64,
            fp32_tflops=d.fp32,
            fp16_tflops=d.fp16,
            int8_tops=d.int8,
            memory_gib=d.memory_gib,
            source=d.source,
        )
        for d in default_catalog()
    ]


@router.get("/api/topology", response_model=TopologyOut, summary="The market's network: routers and links")
def topology(runtime: RuntimeDep) -> TopologyOut:
    network = runtime.marketplace().network
    free = network.free_gbps()
    return TopologyOut(
        operators=[op.name for op in network.operators],
        routers=[
            RouterOut(
                index=r.index,
                name=r.name,
                operator=r.operator,
                label=r.label,
                latitude=r.latitude,
                longitude=r.longitude,
                router_id="0x" + r.router_id.hex(),
                locator=str(r.locator),
                locator_bytes16="0x" + r.locator.prefix.hex(),
                locator_length=r.locator.length,
            )
            for r in network.routers
        ],
        links=[
            LinkOut(
                a=ln.a,
                b=ln.b,
                operator=ln.operator,
                latency_ms=ln.latency_ms,
                capacity_gbps=ln.capacity_gbps,
                free_gbps=float(free[ln.index]),
            )
            for ln in network.links
        ],
    )


@router.get("/api/routes", response_model=RouteOut, summary="The path the market would program between two routers")
def route(
    runtime: RuntimeDep,
    src: Annotated[str, Query(alias="from", min_length=1, max_length=200, description="router name or label")],
    dst: Annotated[str, Query(alias="to", min_length=1, max_length=200, description="router name or label")],
    max_latency_ms: Annotated[float | None, Query(gt=0, le=10_000)] = None,
    min_bandwidth_gbps: Annotated[float | None, Query(ge=0, le=100_000)] = None,
) -> RouteOut:
    network = runtime.marketplace().network
    for parameter, name in (("from", src), ("to", dst)):
        try:
            network.router_index(name)
        except SuanwangError as exc:  # name the query parameter the client sent, not the network's "router"
            raise type(exc)(exc.message, field=parameter) from exc
    path = network.path(src, dst, max_latency_ms=max_latency_ms, min_bandwidth_gbps=min_bandwidth_gbps)
    return RouteOut(
        path=list(path.routers),
        latency_ms=path.latency_ms,
        bandwidth_gbps=path.bandwidth_gbps,
        segments=list(path.segments),
        operators=list(path.operators),
        transit_fee_per_gbps_hour={k: str(v) for k, v in path.transit_fee_per_gbps_hour.items()},
    )
