"""Matching engine: who serves whom (pure domain code; see docs/matching.md).

Public API: :class:`Engine` (online placement, release, explanations, batch clearing), the
data classes :class:`Node`, :class:`Order`, :class:`Placement`, :class:`Unplaced`,
:class:`Explanation`, :class:`StagePolicy`, the :class:`NetworkCost` protocol the network
module implements, :class:`Workload` (FGD's target workload) and :class:`BatchResult`; the marketplace mode in
on-chain units, :class:`MarketEngine` with :class:`MarketNode`, :class:`MarketOrder`,
:class:`MarketPlacement` and :class:`MarketBatchResult`.
"""

from suanwang.matching.batch import BatchResult, clear_batch
from suanwang.matching.engine import Engine
from suanwang.matching.fgd import Workload
from suanwang.matching.framework import Profile, load_profiles, profile_named
from suanwang.matching.market import (
    MarketBatchResult,
    MarketEngine,
    MarketNode,
    MarketOrder,
    MarketPlacement,
)
from suanwang.matching.model import (
    Explanation,
    NetworkCost,
    Node,
    Order,
    Placement,
    Rejection,
    StagePolicy,
    Unplaced,
)

__all__ = [
    "BatchResult",
    "Engine",
    "Explanation",
    "MarketBatchResult",
    "MarketEngine",
    "MarketNode",
    "MarketOrder",
    "MarketPlacement",
    "NetworkCost",
    "Node",
    "Order",
    "Placement",
    "Profile",
    "Rejection",
    "StagePolicy",
    "Unplaced",
    "Workload",
    "clear_batch",
    "load_profiles",
    "profile_named",
]
