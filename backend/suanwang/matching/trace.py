"""Replay of an OpenB-format trace, as in Weng et al. (ATC 2023), under two protocols.

``creation`` (:func:`replay`): pods arrive in creation order and never leave; the list is repeated
(with fresh ids) until the GPU demand that has arrived reaches ``target`` times the cluster's GPU
capacity. The allocation rate is then the share of the cluster's GPU capacity that is allocated.

``artifact`` (:func:`replay_artifact`): the authors' published simulator
(hkust-adsl/kubernetes-scheduler-simulator, ``pkg/simulator/core.go`` and ``simulator.go``,
``experiments/analysis/merge_alloc_discrete.py``), seed by seed:

* the typical task types (FGD's workload) come from the pod list as published;
* pods sorted by name, shuffled by the seed, then tuned to 1.3 x the cluster's milli-GPU
  capacity: tuning up appends pods drawn with replacement from the list until the next one would
  pass it, tuning down deletes random pods until the demand is within it;
* each node named ``<4-digit random index>-<name>``, so ties (the smallest name wins) fall to a
  random but fixed node order;
* no departures; a sample after every pod attempt, placed or failed, CPU-only pods included:
  arrived = the GPU demand of every pod attempted so far, allocated = the milli-GPU in use;
* the value at x% arrived = the mean of the samples (allocation in percent rounded to 2 places)
  whose arrived percent rounds to x, else of those within x +- 1.

Our random streams are numpy's, not Go's: compare means over seeds, not single runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from suanwang.compute.catalog import Catalog, default_catalog
from suanwang.compute.openb import OpenbNode, OpenbPod, load_nodes, load_pods
from suanwang.errors import InputError
from suanwang.matching.cluster import IntArray
from suanwang.matching.engine import Engine
from suanwang.matching.fgd import FgdScore, Workload, fragmentation
from suanwang.matching.framework import Profile
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


def load_trace(nodes_csv: Path, pods_csv: Path) -> tuple[list[Node], list[Order], Catalog]:
    """Nodes and orders (in creation order) of an OpenB node list and pod list, any published layout."""
    catalog = default_catalog()
    pods = load_pods(pods_csv, catalog)
    if not pods:
        raise InputError(f"{pods_csv.name} has a header but no pod rows", field=f"{pods_csv.name}:2")
    return openb_nodes(load_nodes(nodes_csv, catalog)), openb_orders(pods), catalog


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
    return replace(order, id=new_id)


def replay_files(nodes_csv: Path, pods_csv: Path, policy: str, **options: object) -> ReplayResult:
    nodes, orders, catalog = load_trace(nodes_csv, pods_csv)
    return replay(nodes, orders, policy, catalog=catalog, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the artifact's protocol
ARTIFACT_SEEDS = tuple(range(42, 52))
ARTIFACT_TUNE_RATIO = 1.3
ARTIFACT_POINTS = (100, 130)


@dataclass(frozen=True)
class ArtifactRun:
    """One seed of the artifact's protocol: a sample after every pod attempt (milli-GPU)."""

    policy: str
    seed: int
    gpu_capacity_milli: int
    arrived_milli: IntArray
    allocated_milli: IntArray
    seconds: float

    def allocation_at(self, percent: int) -> float:
        """Allocation (percent of GPU capacity) when ``percent`` % of it had arrived, as the
        artifact's analysis computes it; NaN when no sample is within 1 point."""
        arrived = np.round(self.arrived_milli / self.gpu_capacity_milli * 100)  # half to even, as pandas
        allocated = np.round(self.allocated_milli / self.gpu_capacity_milli * 100, 2)
        near = allocated[arrived == percent]
        if near.size == 0:
            near = allocated[(arrived >= percent - 1) & (arrived <= percent + 1)]
        return round(float(near.mean()), 2) if near.size else float("nan")


def artifact_workload(orders: Sequence[Order], seed: int, capacity_milli: int) -> list[Order]:
    """The pods the artifact replays for one seed: sorted by name, shuffled, tuned to 1.3 x capacity."""
    rng = np.random.default_rng(seed)
    by_name = sorted(orders, key=lambda o: o.id)
    pods = [by_name[i] for i in rng.permutation(len(by_name))]
    target = ARTIFACT_TUNE_RATIO * capacity_milli
    total = sum(o.gpu_demand_milli for o in pods)
    while total > target:  # tune down: delete random pods
        total -= pods.pop(int(rng.integers(len(pods)))).gpu_demand_milli
    tuned = 0
    while total < target:  # tune up: append pods drawn with replacement
        drawn = by_name[int(rng.integers(len(by_name)))]
        # The artifact stops when the drawn pod's per-GPU share (not its total) would pass the target.
        if total + drawn.gpu_share > target:
            break
        pods.append(_renamed(drawn, f"{drawn.id}-tuned-{tuned}"))
        total += drawn.gpu_demand_milli
        tuned += 1
    return pods


def artifact_nodes(nodes: Sequence[Node], seed: int) -> list[Node]:
    """Nodes sorted by name, each renamed ``<random index>-<name>`` (a random tie-break order)."""
    rng = np.random.default_rng([seed, 1])
    by_name = sorted(nodes, key=lambda n: n.id)
    width = max(4, len(str(len(by_name))))
    order = rng.permutation(len(by_name))
    return [replace(n, id=f"{int(i):0{width}d}-{n.id}") for n, i in zip(by_name, order, strict=True)]


def replay_artifact(
    nodes: Sequence[Node],
    orders: Sequence[Order],
    policy: str | Profile,
    seed: int,
    *,
    catalog: Catalog | None = None,
) -> ArtifactRun:
    """One seed of the artifact's protocol (module docstring) with the named matching profile."""
    if not orders:
        raise ValueError("the trace has no orders")
    named = artifact_nodes(nodes, seed)
    capacity = sum(n.gpu_count for n in named) * 1000
    pods = artifact_workload(orders, seed, capacity)
    engine = Engine(named, profile=policy, workload=Workload.from_orders(orders), catalog=catalog, seed=seed)
    demand = np.array([o.gpu_demand_milli for o in pods], dtype=np.int64)
    placed = np.zeros(len(pods), dtype=bool)
    started = time.perf_counter()
    for i, order in enumerate(pods):
        placed[i] = isinstance(engine.place(order), Placement)
    seconds = time.perf_counter() - started
    name = policy if isinstance(policy, str) else policy.name
    return ArtifactRun(name, seed, capacity, np.cumsum(demand), np.cumsum(demand * placed), seconds)


def artifact_summary(runs: Sequence[ArtifactRun], percent: int) -> dict[str, float]:
    """{mean, min, max} over seeds of the allocation (percent) at ``percent`` % arrived."""
    values = [r.allocation_at(percent) for r in runs]
    return {"mean": round(float(np.mean(values)), 2), "min": min(values), "max": max(values)}
