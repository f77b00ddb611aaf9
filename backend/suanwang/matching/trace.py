"""Replay of an OpenB-format trace, as in Weng et al. (ATC 2023).

Pods arrive in creation order and never leave; the list is repeated (with fresh ids) until
the GPU demand that has arrived reaches ``target`` times the cluster's GPU capacity. The
allocation rate is then the share of the cluster's GPU capacity that is allocated.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from suanwang.compute.catalog import Catalog, default_catalog
from suanwang.compute.openb import OpenbNode, OpenbPod, load_nodes, load_pods
from suanwang.errors import InputError
from suanwang.matching.engine import Engine
from suanwang.matching.fgd import FgdScore, Workload, fragmentation
from suanwang.matching.model import NetworkCost, Node, Order, Placement


def openb_nodes(rows: Sequence[OpenbNode]) -> list[Node]:
    return [
        Node(id=r.sn, cpu_milli=r.cpu_milli, memory_mib=r.memory_mib, gpu_count=r.gpu_count, gpu_model=r.gpu_model)
        for r in rows
    ]


def openb_orders(rows: Sequence[OpenbPod]) -> list[Order]:
    """Orders in creation order (stable for equal times)."""
    ordered = sorted(rows, key=lambda r: r.creation_time)
    return [
        Order(
            id=r.name,
            cpu_milli=r.cpu_milli,
            memory_mib=r.memory_mib,
            num_gpu=r.num_gpu,
            gpu_milli=r.gpu_milli if r.num_gpu else 1000,
            gpu_models=r.gpu_models,
        )
        for r in ordered
    ]


@dataclass(frozen=True)
class ReplayResult:
    policy: str
    gpu_capacity_milli: int
    arrived_gpu_milli: int
    allocated_gpu_milli: int
    orders_arrived: int
    orders_placed: int
    fragmented_gpu_milli: float
    seconds: float

    @property
    def allocation_rate(self) -> float:
        return self.allocated_gpu_milli / self.gpu_capacity_milli

    @property
    def fragmentation_rate(self) -> float:
        """Share of the idle GPU capacity that is fragmented for the trace's workload."""
        idle = self.gpu_capacity_milli - self.allocated_gpu_milli
        return self.fragmented_gpu_milli / idle if idle else 0.0

    @property
    def placements_per_s(self) -> float:
        return self.orders_arrived / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "policy": self.policy,
            "allocation_rate": round(self.allocation_rate, 6),
            "fragmentation_rate": round(self.fragmentation_rate, 6),
            "gpu_capacity": self.gpu_capacity_milli / 1000,
            "arrived_gpu": self.arrived_gpu_milli / 1000,
            "allocated_gpu": self.allocated_gpu_milli / 1000,
            "orders_arrived": self.orders_arrived,
            "orders_placed": self.orders_placed,
            "placements_per_s": round(self.placements_per_s, 1),
        }


def replay(
    nodes: Sequence[Node],
    orders: Sequence[Order],
    policy: str,
    *,
    target: float = 1.0,
    seed: int = 0,
    network: NetworkCost | None = None,
    catalog: Catalog | None = None,
) -> ReplayResult:
    """Place ``orders`` (repeated as needed) until arrived GPU demand reaches ``target`` x capacity."""
    if not orders:
        raise ValueError("the trace has no orders")
    workload = Workload.from_orders(orders)
    engine = Engine(nodes, profile=policy, workload=workload, network=network, catalog=catalog, seed=seed)
    capacity = int(engine.cluster.gpu_cap_milli.sum())
    goal = target * capacity
    arrived = placed = count = 0
    started = time.perf_counter()
    while arrived < goal:
        base = orders[count % len(orders)]
        round_ = count // len(orders)
        order = base if round_ == 0 else _renamed(base, f"{base.id}#{round_}")
        count += 1
        arrived += order.gpu_demand_milli
        if isinstance(engine.place(order), Placement):
            placed += 1
        if count > 50 * len(orders):
            break  # a trace with (almost) no GPU demand; stop rather than loop for ever
    seconds = time.perf_counter() - started
    c = engine.cluster
    fgd = next((p for p in engine.plugins.values() if isinstance(p, FgdScore)), None)
    if fgd is None:
        may_serve = workload.node_may_serve(c.gpu_model, engine.catalog.max_code)
        frag = fragmentation(c.cpu_free, c.gpu_free, may_serve, workload)
    else:
        frag = fgd.current()
    return ReplayResult(policy, capacity, arrived, c.gpu_allocated_milli(), count, placed, float(frag.sum()), seconds)


def _renamed(order: Order, new_id: str) -> Order:
    from dataclasses import replace

    return replace(order, id=new_id)


def replay_files(nodes_csv: Path, pods_csv: Path, policy: str, **options: object) -> ReplayResult:
    catalog = default_catalog()
    pods = load_pods(pods_csv, catalog)
    if not pods:
        raise InputError(f"{pods_csv.name} has a header but no pod rows", field=f"{pods_csv.name}:2")
    return replay(
        openb_nodes(load_nodes(nodes_csv, catalog)),
        openb_orders(pods),
        policy,
        catalog=catalog,
        **options,  # type: ignore[arg-type]
    )
