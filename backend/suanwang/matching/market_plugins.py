"""Plugins of the marketplace mode (``MarketEngine``, profile ``market``): the checks
``Market._match`` makes, in the chain's units, and the market's scores.

The engine shares ``stage``, ``network`` and ``reliability`` with :class:`Engine`; these add
``node_fit`` (memory, GPU model and count, tier: checks, not consumed), ``mcu_capacity`` (free
mCU per class: consumed), ``market_price`` (price per CU-hour), ``bill`` (the whole bill within
``maxTotal``; cheaper total scores higher), ``mcu_fit`` (best fit on the mCU vector), ``liveness``
(nodes reported down or silent are skipped) and ``service`` (a service-ID order's candidates: the nodes
offering the service, each with its network + compute delay, network/cfn.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

import numpy as np

from suanwang.compute.catalog import default_catalog
from suanwang.compute.units import Tier
from suanwang.errors import NotFoundError
from suanwang.matching.framework import Check, FilterPlugin, ScorePlugin, register
from suanwang.matching.market import CLASSES, MarketCycle, MarketEngine, MarketOrder, tokens
from suanwang.matching.plugins import nodes_phrase
from suanwang.network.cfn import mm1_delay_ms, round_trip_ms

if TYPE_CHECKING:
    from suanwang.matching.cluster import FloatArray, IntArray
    from suanwang.matching.engine import Cycle, Engine
    from suanwang.matching.model import Order

MARKET = frozenset({"market"})


class MarketPlugin:
    """Mixin: the market engine and cycle behind the framework's Engine/Cycle-typed signatures."""

    serves: ClassVar[frozenset[str]] = MARKET
    engine: Engine

    @property
    def market(self) -> MarketEngine:
        return cast(MarketEngine, self.engine)

    @staticmethod
    def market_cycle(cycle: Cycle) -> MarketCycle:
        return cast(MarketCycle, cycle)


def _gpu_name(code: int) -> str:
    try:
        return default_catalog().by_code(code).name
    except NotFoundError:
        return f"GPU model {code}"


@register
class NodeFitFilter(MarketPlugin, FilterPlugin):
    """Memory, GPU model, GPU count and tier: the node's value must reach the order's (not consumed)."""

    name = "node_fit"

    def checks(self, cycle: Cycle) -> list[Check]:
        order = self.market_cycle(cycle).order
        s = self.market.state
        return [
            Check("gpu_model", s.gpu_model == order.gpu_model if order.gpu_model else None),
            Check("gpu_count", s.gpu_count >= order.gpu_count if order.gpu_count else None),
            Check("tier", s.tier >= order.min_tier if order.min_tier else None),
            Check("memory", s.memory >= order.memory_mib if order.memory_mib else None),
        ]

    def sentence(self, code: str, count: int, order: Order) -> str:
        o = cast(MarketOrder, order)
        if code == "gpu_model":
            return f"{nodes_phrase(count, 'lacks', 'lack')} the GPU you asked for ({_gpu_name(o.gpu_model)})"
        if code == "gpu_count":
            return f"{nodes_phrase(count, 'has', 'have')} fewer than {o.gpu_count} GPUs"
        if code == "tier":
            tier = Tier(o.min_tier).name.lower().replace("_", "-")
            return f"{nodes_phrase(count, 'is', 'are')} below the {tier} tier"
        return f"{nodes_phrase(count, 'has', 'have')} less than {o.memory_mib / 1024:g} GiB of memory"


@register
class McuCapacityFilter(MarketPlugin, FilterPlugin):
    """Free mCU per class (capacity minus what running deals reserved) at least what the order takes there
    (its mCU, or the whole CPUs they round up to where the provider reports its CPUs: MarketState.demand_at)."""

    name = "mcu_capacity"

    def checks(self, cycle: Cycle) -> list[Check]:
        state = self.market.state
        demand = self.market_cycle(cycle).order.demand
        if not state.cpus.any():  # no provider reports its CPUs: the mCU bought (no per-node copy)
            return [Check(name, state.free[:, c] >= demand[c]) for c, name in enumerate(CLASSES) if demand[c]]
        takes = state.demand_at(demand, np.arange(state.size))
        return [Check(name, state.free[:, c] >= takes[:, c]) for c, name in enumerate(CLASSES) if demand[c]]

    def sentence(self, code: str, count: int, order: Order) -> str:
        return f"{nodes_phrase(count, 'has', 'have')} too little {code} capacity left"


@register
class MarketPriceFilter(MarketPlugin, FilterPlugin):
    """The node's price per CU-hour within the order's ``max_price_per_cu_hour`` (exact integers)."""

    name = "market_price"

    def checks(self, cycle: Cycle) -> list[Check]:
        cap = self.market_cycle(cycle).order.max_price_per_cu_hour
        prices = self.market.state.prices
        return [Check("price", np.array([p <= cap for p in prices], dtype=bool))]

    def sentence(self, code: str, count: int, order: Order) -> str:
        cap = tokens(cast(MarketOrder, order).max_price_per_cu_hour)
        if count == 1:
            return f"1 node's price is over your {cap} per CU-hour"
        return f"{count} nodes' prices are over your {cap} per CU-hour"


@register
class BillFilter(MarketPlugin, FilterPlugin, ScorePlugin):
    """The whole bill (compute + platform + transit) within the order's ``max_total``; cheaper scores higher.

    The bill is computed only for the nodes every earlier filter accepted (the transit-fee
    function may be costly), so this filter belongs last in a profile.
    """

    name = "bill"

    def checks(self, cycle: Cycle) -> list[Check]:
        c = self.market_cycle(cycle)
        alive = np.flatnonzero(c.passing)
        passes = np.ones(c.passing.size, dtype=bool)
        if alive.size:
            passes[alive] = np.array([t <= c.order.max_total for t in c.bill(alive)], dtype=bool)
        return [Check("total", passes)]

    def sentence(self, code: str, count: int, order: Order) -> str:
        cap = tokens(cast(MarketOrder, order).max_total)
        if count == 1:
            return f"1 node's bill would be over your maximum of {cap}"
        return f"{count} nodes' bills would be over your maximum of {cap}"

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        totals = self.market_cycle(cycle).bill(candidates)
        return -np.array([float(t) for t in totals])


@register
class McuFitScore(MarketPlugin, ScorePlugin):
    """Best fit on the mCU vector: least capacity left after the order, each class as a share of
    the node's capacity in it, summed over the classes the node offers. A node left with a whole
    idle class (a GPU node taking a CPU-only order) scores low, so specialised nodes are used
    first and big ones stay whole for the orders that need them."""

    name = "mcu_fit"

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        s = self.market.state
        demand = np.array(self.market_cycle(cycle).order.demand, dtype=float)
        cap = s.capacity[candidates].astype(float)
        left = (s.free[candidates] - demand) / np.where(cap > 0, cap, 1.0)
        return -left.sum(axis=1)


@register
class LivenessFilter(MarketPlugin, FilterPlugin):
    """Skips the nodes their provider's agent reported down, and those it has gone silent about
    (lifecycle/market_view.py decides what silent means; ``NodeCondition``)."""

    name = "liveness"

    def checks(self, cycle: Cycle) -> list[Check]:
        s = self.market.state
        return [
            Check("down", ~s.down if s.down.any() else None),
            Check("silent", ~s.silent if s.silent.any() else None),
        ]

    def sentence(self, code: str, count: int, order: Order) -> str:
        if code == "down":
            return f"{nodes_phrase(count, 'is', 'are')} reported down by {'its' if count == 1 else 'their'} provider"
        return f"{nodes_phrase(count, 'has', 'have')} sent no live metrics lately"


@register
class ServiceFilter(MarketPlugin, FilterPlugin):
    """A service-ID order (CFN/CATS anycast): only the nodes whose provider says they offer the service,
    and are not saturated; each gets its delay, the path's round trip from the buyer's access router plus
    the M/M/1 time in the node at its reported load (network/cfn.py), which the engine minimises."""

    name = "service"

    def pre_filter(self, cycle: Cycle) -> None:
        c = self.market_cycle(cycle)
        if c.order.service_id is None:
            return
        if c.latency is None:
            c.latency, c.bandwidth = self.market.routes(c.order.access_point)
        s = self.market.state
        delay = np.full(s.size, np.inf)
        for i, condition in enumerate(s.conditions):
            service_time = condition.services.get(c.order.service_id)
            if service_time is not None:
                delay[i] = round_trip_ms(float(c.latency[i]), mm1_delay_ms(service_time, condition.load))
        c.service_delay = delay

    def checks(self, cycle: Cycle) -> list[Check]:
        c = self.market_cycle(cycle)
        if c.service_delay is None:
            return []
        offered = np.array([c.order.service_id in cond.services for cond in self.market.state.conditions], dtype=bool)
        return [Check("service", offered), Check("saturated", np.isfinite(c.service_delay) | ~offered)]

    def sentence(self, code: str, count: int, order: Order) -> str:
        service = cast(MarketOrder, order).service_id
        if code == "service":
            return f"{nodes_phrase(count, 'does', 'do')} not offer service {service}"
        return f"{nodes_phrase(count, 'is', 'are')} saturated or unreachable for service {service}"
