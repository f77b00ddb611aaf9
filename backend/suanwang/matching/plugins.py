"""Built-in filter and score plugins (fragmentation-aware scoring lives in ``fgd``).

Filters cache what does not change between cycles (masks by GPU type, tier, stage; routing
answers per access point; cost rates per order shape), so a cycle costs a few vector
operations over the nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from suanwang.compute.units import GPU_MILLI_PER_GPU, Tier
from suanwang.matching.framework import Check, FilterPlugin, ScorePlugin, register

BOTH_ENGINES = frozenset({"resources", "market"})

if TYPE_CHECKING:
    from suanwang.matching.cluster import BoolArray, FloatArray, IntArray
    from suanwang.matching.engine import Cycle, Engine
    from suanwang.matching.model import Order


def nodes_phrase(count: int, singular: str, plural: str) -> str:
    """'1 node lacks' / '412 nodes lack'."""
    return f"{count} node {singular}" if count == 1 else f"{count} nodes {plural}"


@register
class StageFilter(FilterPlugin):
    """Who may serve whom in the deployment's rollout stage."""

    name = "stage"
    serves = BOTH_ENGINES

    def __init__(self, engine: Engine, args: Mapping[str, Any]) -> None:
        super().__init__(engine, args)
        self._mask: BoolArray | None = None
        self._for_policy = None

    def reset(self) -> None:
        self._for_policy = None

    def checks(self, cycle: Cycle) -> list[Check]:
        policy = self.engine.stage
        if self._for_policy is not policy:
            c = self.engine.cluster
            allowed = np.array([policy.allows(owner) for owner in c.owner_names])
            mask = allowed[c.owner]
            self._mask = None if mask.all() else mask
            self._for_policy = policy  # type: ignore[assignment]
        return [Check("seller", self._mask)]

    def sentence(self, code: str, count: int, order: Order) -> str:
        rule = self.engine.stage.describe()
        return f"{nodes_phrase(count, 'belongs', 'belong')} to sellers that may not serve ({rule})"


@register
class GpuTypeFilter(FilterPlugin):
    """The order's acceptable GPU models."""

    name = "gpu_type"

    def __init__(self, engine: Engine, args: Mapping[str, Any]) -> None:
        super().__init__(engine, args)
        self._cache: dict[tuple[int, ...], BoolArray] = {}

    def checks(self, cycle: Cycle) -> list[Check]:
        models = cycle.order.gpu_models
        if not cycle.num_gpu or not models:
            return [Check("model", None)]
        mask = self._cache.get(models)
        if mask is None:
            lookup = np.zeros(self.engine.catalog.max_code + 1, dtype=bool)
            lookup[list(models)] = True
            mask = self._cache[models] = lookup[self.engine.cluster.gpu_model]
        return [Check("model", mask)]

    def sentence(self, code: str, count: int, order: Order) -> str:
        names = [self.engine.catalog.by_code(m).name for m in order.gpu_models]
        wanted = " or ".join(names)
        return f"{nodes_phrase(count, 'lacks', 'lack')} the GPU you asked for ({wanted})"


@register
class TierFilter(FilterPlugin):
    """The order's minimum node tier."""

    name = "tier"

    def __init__(self, engine: Engine, args: Mapping[str, Any]) -> None:
        super().__init__(engine, args)
        self._cache: dict[int, BoolArray] = {}

    def checks(self, cycle: Cycle) -> list[Check]:
        tier = int(cycle.order.min_tier)
        if tier == 0:
            return [Check("tier", None)]
        mask = self._cache.get(tier)
        if mask is None:
            mask = self._cache[tier] = self.engine.cluster.tier >= tier
        return [Check("tier", mask)]

    def sentence(self, code: str, count: int, order: Order) -> str:
        tier = Tier(order.min_tier).name.lower().replace("_", "-")
        return f"{nodes_phrase(count, 'is', 'are')} below the {tier} tier"


@register
class ResourceFitFilter(FilterPlugin):
    """Free CPU, memory, GPU count and fractional GPU share on the node now."""

    name = "resource_fit"

    def checks(self, cycle: Cycle) -> list[Check]:
        c = self.engine.cluster
        checks = [
            Check("cpu", c.cpu_free >= cycle.cpu if cycle.cpu else None),
            Check("memory", c.mem_free >= cycle.mem if cycle.mem else None),
        ]
        if cycle.num_gpu:
            if cycle.share >= GPU_MILLI_PER_GPU:
                checks.append(Check("gpu", c.full_gpus >= cycle.num_gpu))
            else:
                checks.append(Check("gpu_share", c.max_gpu_free >= cycle.share))
        return checks

    def sentence(self, code: str, count: int, order: Order) -> str:
        if code == "cpu":
            return f"{nodes_phrase(count, 'lacks', 'lack')} {order.cpu_milli / 1000:g} free CPU cores"
        if code == "memory":
            return f"{nodes_phrase(count, 'lacks', 'lack')} {order.memory_mib / 1024:g} GiB of free memory"
        if code == "gpu":
            gpus = "a free GPU" if order.num_gpu == 1 else f"{order.num_gpu} free GPUs"
            return f"{nodes_phrase(count, 'lacks', 'lack')} {gpus}"
        return f"{nodes_phrase(count, 'has', 'have')} no GPU with {order.gpu_milli / 10:g}% free"


@register
class PriceFilter(FilterPlugin, ScorePlugin):
    """Within the buyer's maximum price per hour; cheaper scores higher."""

    name = "price"

    def checks(self, cycle: Cycle) -> list[Check]:
        cap = cycle.order.max_price_per_hour
        if cap is None:
            return [Check("price", None)]
        # The bill rounds the rate to whole base units, so a rate below cap + 0.5 bills at most cap.
        return [Check("price", cycle.cost_rate() < cap + 0.5)]

    def sentence(self, code: str, count: int, order: Order) -> str:
        return f"{nodes_phrase(count, 'is', 'are')} over your price of {order.max_price_per_hour} per hour"

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        return -cycle.cost_rate()[candidates]


@register
class NetworkFilter(FilterPlugin, ScorePlugin):
    """Latency and bandwidth between the buyer's access point and the node's router."""

    name = "network"
    serves = BOTH_ENGINES

    def pre_filter(self, cycle: Cycle) -> None:
        if cycle.order.access_point is not None:
            cycle.latency, cycle.bandwidth = self.engine.routes(cycle.order.access_point)

    def checks(self, cycle: Cycle) -> list[Check]:
        max_latency, min_bandwidth = cycle.max_latency_ms, cycle.min_bandwidth_gbps
        if cycle.latency is None or cycle.bandwidth is None or (max_latency is None and min_bandwidth is None):
            return []
        checks = [Check("unreachable", np.isfinite(cycle.latency))]
        if max_latency is not None:
            checks.append(Check("latency", cycle.latency <= max_latency))
        if min_bandwidth is not None:
            checks.append(Check("bandwidth", cycle.bandwidth >= min_bandwidth))
        return checks

    def sentence(self, code: str, count: int, order: Order) -> str:
        if code == "unreachable":
            if self.engine.network is None:
                return f"{nodes_phrase(count, 'is', 'are')} unreachable: no routing function is configured"
            return f"{nodes_phrase(count, 'is', 'are')} unreachable from your access point"
        if code == "latency":
            return f"{nodes_phrase(count, 'is', 'are')} farther than {order.max_latency_ms:g} ms"
        return f"{nodes_phrase(count, 'offers', 'offer')} less than {order.min_bandwidth_gbps:g} Gbps"

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        if cycle.latency is None:
            return np.zeros(candidates.size)
        latency = cycle.latency[candidates]
        finite = np.isfinite(latency)
        if not finite.all():
            worst = latency[finite].max() * 2 + 1 if finite.any() else 1.0
            latency = np.where(finite, latency, worst)
        return -latency


@register
class ReliabilityFilter(FilterPlugin, ScorePlugin):
    """The seller's delivery record: a floor (``min_reliability``) and a preference."""

    name = "reliability"
    serves = BOTH_ENGINES

    def checks(self, cycle: Cycle) -> list[Check]:
        floor = float(self.args.get("min_reliability", 0.0))
        if floor <= 0:
            return [Check("record", None)]
        return [Check("record", self.engine.cluster.reliability >= floor)]

    def sentence(self, code: str, count: int, order: Order) -> str:
        floor = float(self.args.get("min_reliability", 0.0))
        return f"{nodes_phrase(count, 'has', 'have')} a delivery record below {floor:.0%}"

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        return self.engine.cluster.reliability[candidates]


def _gpu_term(cycle: Cycle) -> float:
    return float(cycle.num_gpu * cycle.share)


# The artifact's normalisers for the packing baselines (open-gpu-share utils: MaxSpecCpu, MaxSpecGpu):
# the largest node's CPU (128 cores) and GPUs (8), so scores compare across nodes of any size.
MAX_SPEC_CPU_MILLI = 128_000
MAX_SPEC_GPU_MILLI = 8 * GPU_MILLI_PER_GPU


@register
class BestFitScore(ScorePlugin):
    """Least CPU + GPU left on the node after placing, each as a share of the largest node's, half
    weight each: ``int(100 * (1 - left))`` (the ATC'23 best-fit baseline as the artifact scores it)."""

    name = "best_fit"

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        c = self.engine.cluster
        cpu_left = (c.cpu_free[candidates] - cycle.cpu) / MAX_SPEC_CPU_MILLI
        gpu_left = (c.gpu_free_total[candidates] - _gpu_term(cycle)) / MAX_SPEC_GPU_MILLI
        score: FloatArray = np.trunc((1.0 - (0.5 * cpu_left + 0.5 * gpu_left)) * 100.0)
        return score


@register
class DotProductScore(ScorePlugin):
    """Smallest dot product of demand and free resources, each over the largest node's capacity:
    ``int(100 * (1 - dot / 2))`` (the dot-product baseline of ATC'23, after Tetris, SIGCOMM 2014)."""

    name = "dot_product"

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        c = self.engine.cluster
        dot = (c.cpu_free[candidates] / MAX_SPEC_CPU_MILLI) * (cycle.cpu / MAX_SPEC_CPU_MILLI) + (
            c.gpu_free_total[candidates] / MAX_SPEC_GPU_MILLI
        ) * (_gpu_term(cycle) / MAX_SPEC_GPU_MILLI)
        score: FloatArray = np.trunc((1.0 - dot / 2.0) * 100.0)
        return score


@register
class GpuPackingScore(ScorePlugin):
    """Prefer a GPU already in use, then a free GPU on a node in use, then an idle node (ATC'23
    baseline, the artifact's integer rule): a shared GPU scores 100 - its free tenths (at least 50);
    free GPUs on a busy node 50 - their count (at least 33); an idle node 33 - its GPUs."""

    name = "gpu_packing"

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        c = self.engine.cluster
        if not cycle.num_gpu:
            return np.zeros(candidates.size)
        full = c.full_gpus[candidates]
        idle = full == c.gpu_count[candidates]
        score = np.maximum(50 - cycle.num_gpu, 33) * np.ones(candidates.size)
        if cycle.share < GPU_MILLI_PER_GPU:
            rows = c.gpu_free[candidates]
            tightest = np.where(rows >= cycle.share, rows, GPU_MILLI_PER_GPU + 1).min(axis=1)
            shared = tightest < GPU_MILLI_PER_GPU
            score = np.where(shared, np.maximum(100 - (tightest * 100 // GPU_MILLI_PER_GPU) // 10, 50), score)
        packed: FloatArray = np.where(idle, np.maximum(33 - full, full), score).astype(float)
        return packed


@register
class RandomScore(ScorePlugin):
    """A uniformly random feasible node, on a uniformly random GPU that fits (the random baseline)."""

    name = "random"
    selects_gpus = True

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        return self.engine.rng.random(candidates.size)

    def choose_gpus(self, cycle: Cycle, index: int) -> tuple[int, ...] | None:
        c = self.engine.cluster
        if cycle.num_gpu != 1 or cycle.share >= GPU_MILLI_PER_GPU:
            return c.choose_gpus(index, cycle.num_gpu, cycle.share)
        options = np.flatnonzero(c.gpu_free[index, : c.gpu_count[index]] >= cycle.share)
        return (int(self.engine.rng.choice(options)),) if options.size else None
