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

As the authors' artifact (hkust-adsl/kubernetes-scheduler-simulator, ``FGDScore``) scores it, by
default: the workload is the *typical* task types, the most popular ones that together make up 95%
of the tasks (CPU-only tasks included, counted at their popularity); a node's score is the integer
``int(100 * sigmoid((fragmentation before - fragmentation after) / 1000))``, so nodes whose
fragmentation grows by about the same amount tie (the engine then takes the smallest node id); a
task that shares one GPU is scored on each GPU that could take it, the node keeping its best GPU,
and the task goes to the first GPU with that best score. Profile arguments: ``levels`` (the
score's range, 100 in the artifact: fewer levels make more nodes tie), ``single_gpu_levels`` (the
range for tasks that take one whole GPU; default ``levels``) and ``popularity`` (the share of tasks
the typical types cover, 0.95 in the artifact; 1.0 keeps every type).

Incremental evaluation: the engine keeps the current fragmentation of every node, and, per
task shape, the fragmentation each node would have after taking that shape (on its best GPU),
stamped with the node's state version. A placement bumps one node's version, so the next cycle
recomputes one node per cached shape, not the cluster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
TaskType = tuple[int, int, int, tuple[int, ...]]  # (cpu_milli, num_gpu, per-GPU share, acceptable models)
TYPICAL_POPULARITY = 0.95  # the artifact's podPopularityThreshold (95%, step 1, CPU tasks involved)


@dataclass(frozen=True)
class Workload:
    """Task types with their popularity (the target workload FGD protects)."""

    cpu: IntArray
    num_gpu: IntArray
    share: IntArray
    models: tuple[tuple[int, ...], ...]  # acceptable GPU models per type, () = any
    popularity: FloatArray
    counts: Mapping[TaskType, int] | None = field(default=None, compare=False, repr=False)  # every type seen

    @classmethod
    def from_orders(cls, orders: Iterable[Order], popularity: float = TYPICAL_POPULARITY) -> Workload:
        """The typical task types of ``orders``: the most frequent types that together make up at
        least ``popularity`` of the orders (1.0: every type), with their shares renormalised."""
        return cls.from_counts(Counter((o.cpu_milli, o.num_gpu, o.gpu_share, o.gpu_models) for o in orders), popularity)

    @classmethod
    def from_counts(cls, counts: Mapping[TaskType, int], popularity: float = TYPICAL_POPULARITY) -> Workload:
        if not counts:
            raise ValueError("a workload needs at least one order")
        if not 0 < popularity <= 1:
            raise ValueError(f"popularity must be in (0, 1], got {popularity}")
        total = sum(counts.values())
        # Most frequent first; equal counts: the larger type first (the artifact's reversed order).
        ranked = sorted(counts, key=lambda k: (counts[k], k[0], k[2], k[1], k[3]), reverse=True)
        kept, covered = [], 0
        for key in ranked:
            if covered >= popularity * total:
                break
            kept.append(key)
            covered += counts[key]
        keys = sorted(kept)
        return cls(
            cpu=np.array([k[0] for k in keys], dtype=np.int64),
            num_gpu=np.array([k[1] for k in keys], dtype=np.int64),
            share=np.array([k[2] for k in keys], dtype=np.int64),
            models=tuple(k[3] for k in keys),
            popularity=np.array([counts[k] / covered for k in keys]),
            counts=dict(counts),
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


def after_placing(
    cpu_free: IntArray, gpu_free: IntArray, shape: Shape, gpu: IntArray | None = None
) -> tuple[IntArray, IntArray]:
    """Free CPU and per-GPU shares of each node had it taken one task of ``shape``: whole GPUs are
    the first free ones; a shared GPU is ``gpu`` (one index per node) or else the best fit.

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
            if gpu is None:
                gpu = np.argmin(np.where(gpu_free >= share, gpu_free, GPU_MILLI_PER_GPU + 1), axis=1)
            new_gpu[np.arange(new_gpu.shape[0]), gpu] -= share
    return cpu_free - cpu, new_gpu


def artifact_score(before: FloatArray, after: FloatArray, levels: float = 100.0) -> FloatArray:
    """The artifact's FGD score: ``int(sigmoid((before - after) / 1000) * 100)``, truncated to 0..100
    (the same floating-point steps, so equal inputs give the artifact's integers); ``levels``
    replaces the 100."""
    x = (before - after) / 1000.0
    score: FloatArray = np.trunc((1.0 / (1.0 + np.exp(-x))) * levels)
    return score


@register
class FgdScore(ScorePlugin, ReservePlugin):
    """Fragmentation-aware packing: the least growth in expected fragmentation scores highest.

    Uses the engine's workload; without one, it learns the workload from the orders it sees,
    refreshing the snapshot when the count of seen orders doubles (then every 4,096 orders).
    Arguments: ``levels`` (default 100), ``single_gpu_levels`` (default ``levels``) and
    ``popularity`` (default: the workload's own, 0.95).
    """

    name = "fgd"
    selects_gpus = True

    def __init__(self, engine: Engine, args: Mapping[str, Any]) -> None:
        super().__init__(engine, args)
        self._seen: Counter[TaskType] = Counter()
        self._seen_total = 0
        self._next_refresh = 1
        self._learn = bool(args.get("learn", engine.workload is None))
        self._levels = float(args.get("levels", 100.0))
        self._single_gpu_levels = float(args.get("single_gpu_levels", self._levels))
        self._popularity = args.get("popularity")
        self.reset()

    def reset(self) -> None:
        # Per shape: each node's fragmentation after taking it on its best GPU, and the node version it is for.
        self._after: dict[Shape, tuple[FloatArray, IntArray]] = {}
        self._now: FloatArray | None = None
        self._dirty: set[int] = set()
        workload = self.engine.workload
        if workload is not None and self._popularity is not None and workload.counts is not None:
            workload = Workload.from_counts(workload.counts, float(self._popularity))
        self._workload = workload
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
            self.engine.workload = Workload.from_counts(self._seen)
            self.reset()

    def pre_filter(self, cycle: Cycle) -> None:
        if self._learn:
            self._learned(cycle.order)

    def _frag(self, rows: IntArray | slice, cpu: IntArray, gpu: IntArray) -> FloatArray:
        workload = self._workload
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

    def _variants(self, rows: IntArray, shape: Shape) -> tuple[IntArray, IntArray, IntArray]:
        """(owner, free CPU, free shares) of each state ``rows`` could be in after taking ``shape``:
        one per row, or for a shared GPU one per GPU that could take it (GPUs with the same free
        share leave the same state, so each free share once); ``owner`` indexes ``rows``."""
        c = self.engine.cluster
        cpu_free, gpu_free = c.cpu_free[rows], c.gpu_free[rows]
        _, num_gpu, share = shape
        if not num_gpu or share >= GPU_MILLI_PER_GPU:
            return np.arange(rows.size), *after_placing(cpu_free, gpu_free, shape)
        repeated = np.triu(gpu_free[:, :, None] == gpu_free[:, None, :], k=1).any(axis=1)
        owner, gpu = np.nonzero((gpu_free >= share) & ~repeated)
        return owner, *after_placing(cpu_free[owner], gpu_free[owner], shape, gpu)

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        c = self.engine.cluster
        shape: Shape = (cycle.cpu, cycle.num_gpu, cycle.share)
        if self._now is None:
            self.current()
        now = self._now
        assert now is not None
        cached = self._after.get(shape)
        if cached is None:
            cached = (np.zeros(c.size), np.full(c.size, -1, dtype=np.int64))
            self._after[shape] = cached
        after, stamp = cached
        stale = candidates[stamp[candidates] != c.version[candidates]]
        if stale.size:
            # One evaluation for the stale candidates' states after the task and the changed nodes' now.
            owner, cpu, gpu = self._variants(stale, shape)
            dirty = np.fromiter(self._dirty, dtype=np.int64, count=len(self._dirty))
            self._dirty.clear()
            values = self._frag(
                np.concatenate([stale[owner], dirty]),
                np.concatenate([cpu, c.cpu_free[dirty]]),
                np.concatenate([gpu, c.gpu_free[dirty]]),
            )
            best = np.full(stale.size, np.inf)
            np.minimum.at(best, owner, values[: owner.size])
            after[stale] = best
            stamp[stale] = c.version[stale]
            now[dirty] = values[owner.size :]
        else:
            now = self.current()
        return artifact_score(now[candidates], after[candidates], self._levels_for(cycle))

    def _levels_for(self, cycle: Cycle) -> float:
        whole_one = cycle.num_gpu == 1 and cycle.share >= GPU_MILLI_PER_GPU
        return self._single_gpu_levels if whole_one else self._levels

    def choose_gpus(self, cycle: Cycle, index: int) -> tuple[int, ...] | None:
        """A shared GPU: the first GPU with the best score on this node (the artifact's GPU choice)."""
        c = self.engine.cluster
        if cycle.num_gpu != 1 or cycle.share >= GPU_MILLI_PER_GPU:
            return c.choose_gpus(index, cycle.num_gpu, cycle.share)
        row = c.gpu_free[index, : c.gpu_count[index]]
        options = np.flatnonzero(row >= cycle.share)
        if options.size == 0:
            return None
        rows = np.full(options.size, index)
        cpu, gpu = after_placing(c.cpu_free[rows], c.gpu_free[rows], (cycle.cpu, 1, cycle.share), options)
        after = self._frag(rows, cpu, gpu)
        value = artifact_score(np.full(options.size, self.current()[index]), after, self._levels_for(cycle))
        return (int(options[int(np.argmax(value))]),)

    def reserve(self, placement: Placement) -> None:
        self._dirty.add(placement.node_index)

    def unreserve(self, placement: Placement) -> None:
        self._dirty.add(placement.node_index)
