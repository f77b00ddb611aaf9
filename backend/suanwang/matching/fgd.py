"""Fragmentation Gradient Descent (FGD), re-implemented from the idea in Weng et al.,
"Beware of Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation Gradient
Descent", USENIX ATC 2023.

Fragmentation of a node *with respect to a task*: the node's free GPU capacity that this
task could not use.

* If the task cannot run on the node at all (too little CPU, too few GPUs with enough free
  share, a GPU model it does not accept) or needs no GPU, every free milli-GPU on the node
  is a fragment for it.
* If it can run, the fragments are the free shares of those GPUs that each hold less than the
  task's per-GPU demand.

Fragmentation with respect to a *workload* is the popularity-weighted sum over the workload's
task types. FGD places each task on the node whose fragmentation grows least (the steepest
descent of the cluster's expected fragmentation).

Incremental evaluation: the engine keeps the current fragmentation of every node, and, per
task shape, the fragmentation each node would have after taking that shape, stamped with the
node's state version. A placement bumps one node's version, so the next cycle recomputes one
node per cached shape, not the cluster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from suanwang.compute.units import GPU_MILLI_PER_GPU
from suanwang.matching.framework import ReservePlugin, ScorePlugin, register

if TYPE_CHECKING:
    from suanwang.matching.cluster import BoolArray, FloatArray, IntArray
    from suanwang.matching.engine import Cycle, Engine
    from suanwang.matching.model import Order, Placement

Shape = tuple[int, int, int]  # (cpu_milli, num_gpu, per-GPU share)


@dataclass(frozen=True)
class Workload:
    """Task types with their popularity (the target workload FGD protects)."""

    cpu: IntArray
    num_gpu: IntArray
    share: IntArray
    models: tuple[tuple[int, ...], ...]  # acceptable GPU models per type, () = any
    popularity: FloatArray

    @classmethod
    def from_orders(cls, orders: Iterable[Order]) -> Workload:
        counts = Counter((o.cpu_milli, o.num_gpu, o.gpu_share, o.gpu_models) for o in orders)
        if not counts:
            raise ValueError("a workload needs at least one order")
        keys = sorted(counts)
        total = sum(counts.values())
        return cls(
            cpu=np.array([k[0] for k in keys], dtype=np.int64),
            num_gpu=np.array([k[1] for k in keys], dtype=np.int64),
            share=np.array([k[2] for k in keys], dtype=np.int64),
            models=tuple(k[3] for k in keys),
            popularity=np.array([counts[k] / total for k in keys]),
        )

    def __len__(self) -> int:
        return int(self.cpu.size)

    @cached_property
    def distinct_shares(self) -> tuple[IntArray, IntArray]:
        """(the distinct per-GPU shares, each type's index into them): the GPU test runs per share."""
        shares, index = np.unique(self.share, return_inverse=True)
        return shares.astype(np.int64), index.astype(np.int64)

    def node_may_serve(self, gpu_model: IntArray, max_code: int) -> BoolArray:
        """[node, type] -> the node's GPU model suits the type, and the type uses GPUs at all."""
        table = np.ones((len(self), max_code + 1), dtype=bool)
        for t, models in enumerate(self.models):
            if models:
                table[t] = False
                table[t, list(models)] = True
        may: BoolArray = table[:, gpu_model].T & (self.num_gpu > 0)[None, :]
        return may


def fragmentation(cpu_free: IntArray, gpu_free: IntArray, may_serve: BoolArray, workload: Workload) -> FloatArray:
    """Expected fragmentation (milli-GPU) of each node, given its free CPU and per-GPU shares.

    ``may_serve`` is ``workload.node_may_serve`` for these nodes' GPU models.
    """
    total = gpu_free.sum(axis=1)
    if total.size == 0:
        return total.astype(float)
    shares, share_of_type = workload.distinct_shares
    can_host = gpu_free[:, None, :] >= shares[None, :, None]  # [node, share, gpu]
    hosts = can_host.sum(axis=2)[:, share_of_type]  # GPUs that could each take the type's share
    usable = (gpu_free[:, None, :] * can_host).sum(axis=2)[:, share_of_type]
    runs = may_serve & (cpu_free[:, None] >= workload.cpu[None, :]) & (hosts >= workload.num_gpu[None, :])
    per_type = np.where(runs, total[:, None] - usable, total[:, None])
    result: FloatArray = per_type @ workload.popularity
    return result


def after_placing(cpu_free: IntArray, gpu_free: IntArray, shape: Shape) -> tuple[IntArray, IntArray]:
    """Free CPU and per-GPU shares of each node had it taken one task of ``shape`` (best-fit GPUs).

    Rows where the task does not fit come out meaningless; callers only read fitting rows.
    """
    cpu, num_gpu, share = shape
    new_gpu = gpu_free.copy()
    if num_gpu:
        if share >= GPU_MILLI_PER_GPU:
            full = gpu_free == GPU_MILLI_PER_GPU
            take = full & (np.cumsum(full, axis=1) <= num_gpu)
            new_gpu[take] = 0
        else:
            fits = np.where(gpu_free >= share, gpu_free, GPU_MILLI_PER_GPU + 1)
            chosen = np.argmin(fits, axis=1)
            new_gpu[np.arange(new_gpu.shape[0]), chosen] -= share
    return cpu_free - cpu, new_gpu


@register
class FgdScore(ScorePlugin, ReservePlugin):
    """Fragmentation-aware packing: the least growth in expected fragmentation scores highest.

    Uses the engine's workload; without one, it learns the workload from the orders it sees,
    refreshing the snapshot when the count of seen orders doubles (then every 4,096 orders).
    """

    name = "fgd"

    def __init__(self, engine: Engine, args: Mapping[str, Any]) -> None:
        super().__init__(engine, args)
        self._seen: Counter[tuple[int, int, int, tuple[int, ...]]] = Counter()
        self._seen_total = 0
        self._next_refresh = 1
        self._learn = bool(args.get("learn", engine.workload is None))
        self.reset()

    def reset(self) -> None:
        self._after: dict[Shape, tuple[FloatArray, IntArray]] = {}
        self._now: FloatArray | None = None
        self._dirty: set[int] = set()
        workload = self.engine.workload
        self._may_serve = (
            None
            if workload is None
            else workload.node_may_serve(self.engine.cluster.gpu_model, self.engine.catalog.max_code)
        )

    def _learned(self, order: Order) -> None:
        self._seen[(order.cpu_milli, order.num_gpu, order.gpu_share, order.gpu_models)] += 1
        self._seen_total += 1
        if self._seen_total >= self._next_refresh:
            self._next_refresh = min(self._next_refresh * 2, self._seen_total + 4096)
            keys = sorted(self._seen)
            self.engine.workload = Workload(
                cpu=np.array([k[0] for k in keys], dtype=np.int64),
                num_gpu=np.array([k[1] for k in keys], dtype=np.int64),
                share=np.array([k[2] for k in keys], dtype=np.int64),
                models=tuple(k[3] for k in keys),
                popularity=np.array([self._seen[k] / self._seen_total for k in keys]),
            )
            self.reset()

    def pre_filter(self, cycle: Cycle) -> None:
        if self._learn:
            self._learned(cycle.order)

    def _frag(self, rows: IntArray | slice, cpu: IntArray, gpu: IntArray) -> FloatArray:
        workload = self.engine.workload
        assert workload is not None and self._may_serve is not None
        return fragmentation(cpu, gpu, self._may_serve[rows], workload)

    def current(self) -> FloatArray:
        """Expected fragmentation of every node now."""
        c = self.engine.cluster
        if self._now is None:
            self._now = self._frag(slice(None), c.cpu_free, c.gpu_free)
            self._dirty.clear()
        elif self._dirty:
            rows = np.fromiter(self._dirty, dtype=np.int64, count=len(self._dirty))
            self._now[rows] = self._frag(rows, c.cpu_free[rows], c.gpu_free[rows])
            self._dirty.clear()
        return self._now

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        c = self.engine.cluster
        shape: Shape = (cycle.cpu, cycle.num_gpu, cycle.share)
        cached = self._after.get(shape)
        if cached is None:
            cached = (np.zeros(c.size), np.full(c.size, -1, dtype=np.int64))
            self._after[shape] = cached
        after, stamp = cached
        stale = np.flatnonzero(stamp != c.version)
        if stale.size and self._now is not None and self._dirty:
            # One evaluation for both: the stale "after" rows and the nodes changed since.
            dirty = np.fromiter(self._dirty, dtype=np.int64, count=len(self._dirty))
            self._dirty.clear()
            cpu, gpu = after_placing(c.cpu_free[stale], c.gpu_free[stale], shape)
            values = self._frag(
                np.concatenate([stale, dirty]),
                np.concatenate([cpu, c.cpu_free[dirty]]),
                np.concatenate([gpu, c.gpu_free[dirty]]),
            )
            after[stale] = values[: stale.size]
            self._now[dirty] = values[stale.size :]
            stamp[stale] = c.version[stale]
        elif stale.size:
            cpu, gpu = after_placing(c.cpu_free[stale], c.gpu_free[stale], shape)
            after[stale] = self._frag(stale, cpu, gpu)
            stamp[stale] = c.version[stale]
        growth = after[candidates] - self.current()[candidates]
        return -growth

    def reserve(self, placement: Placement) -> None:
        self._dirty.add(placement.node_index)

    def unreserve(self, placement: Placement) -> None:
        self._dirty.add(placement.node_index)
