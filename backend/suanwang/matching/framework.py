"""The matching framework, after kube-scheduler's: extension points, plugins by name, profiles.

A placement cycle for one order runs:

1. pre-filter: plugins prepare what their filters and scores need (cached across cycles);
2. filter: each filter plugin returns named checks, each a boolean mask over all nodes
   (expected rejections are data, not exceptions, so every rejection has a reason);
3. score: each score plugin scores the feasible nodes (higher is better); scores are
   normalised to 0..100 (min-max over the feasible nodes) before the profile's weights apply;
   of the nodes with the highest total, the one with the smallest id wins;
4. reserve: the winning node's resources are taken and plugins update their per-node state;
5. bind: the engine's ``bind`` callback (if any) commits the placement; if it raises a
   ``SuanwangError`` the reservation is undone (unreserve) and the order is reported unplaced.

Profiles (``profiles.yaml``) name the filters and the weighted scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import yaml

from suanwang.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from suanwang.matching.cluster import BoolArray, FloatArray, IntArray
    from suanwang.matching.engine import Cycle, Engine
    from suanwang.matching.model import Order, Placement

PROFILES_PATH = Path(__file__).with_name("profiles.yaml")
SCORE_RANGE = 100.0


@dataclass(frozen=True, slots=True)
class Check:
    """One named condition over all nodes; ``passes`` None means every node passes."""

    code: str
    passes: BoolArray | None


class Plugin:
    """Base of every plugin. A plugin may serve several extension points (as in kube)."""

    name: ClassVar[str] = ""
    # Which engines the plugin works with: "resources" (Engine: CPU, memory, GPU shares) and/or
    # "market" (MarketEngine: on-chain mCU); an engine refuses a profile naming a plugin it cannot run.
    serves: ClassVar[frozenset[str]] = frozenset({"resources"})

    def __init__(self, engine: Engine, args: Mapping[str, Any]) -> None:
        self.engine = engine
        self.args = dict(args)

    def reset(self) -> None:
        """Drop caches (the network or the workload changed)."""

    def pre_filter(self, cycle: Cycle) -> None:
        """Prepare per-cycle data; raise InputError for an order this plugin cannot read."""


class FilterPlugin(Plugin):
    def checks(self, cycle: Cycle) -> list[Check]:
        raise NotImplementedError

    def sentence(self, code: str, count: int, order: Order) -> str:
        raise NotImplementedError


class ScorePlugin(Plugin):
    # A plugin that also says which GPUs of the chosen node an order takes; the profile's
    # highest-weight score decides when it does (the artifact's gpuSelMethod), else the best fit.
    selects_gpus: ClassVar[bool] = False

    def score(self, cycle: Cycle, candidates: IntArray) -> FloatArray:
        """Raw scores of the candidate node indices; higher is better."""
        raise NotImplementedError

    def choose_gpus(self, cycle: Cycle, index: int) -> tuple[int, ...] | None:
        """The GPUs the order takes on node ``index`` (None: they do not fit)."""
        return self.engine.cluster.choose_gpus(index, cycle.num_gpu, cycle.share)

    @staticmethod
    def normalise(raw: FloatArray) -> FloatArray:
        low = raw.min()
        spread = raw.max() - low
        if not spread > 0:
            return np.zeros_like(raw)
        normalised: FloatArray = (raw - low) * (SCORE_RANGE / spread)
        return normalised


class ReservePlugin(Plugin):
    def reserve(self, placement: Placement) -> None:
        raise NotImplementedError

    def unreserve(self, placement: Placement) -> None:
        raise NotImplementedError


REGISTRY: dict[str, type[Plugin]] = {}


def register(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: make a plugin available to profiles under ``cls.name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"plugin name {cls.name!r} is empty or taken")
    REGISTRY[cls.name] = cls
    return cls


@dataclass(frozen=True)
class Profile:
    """A named choice of filters (in order) and weighted scores, with per-plugin arguments."""

    name: str
    filters: tuple[str, ...]
    scores: tuple[tuple[str, float], ...]
    args: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for plugin in (*self.filters, *(name for name, _ in self.scores)):
            if plugin not in REGISTRY:
                raise NotFoundError(
                    f"profile {self.name!r} names unknown plugin {plugin!r}; known: {', '.join(sorted(REGISTRY))}",
                    field=f"profiles:{self.name}:{plugin}",
                )
        for plugin, weight in self.scores:
            if not weight > 0:
                raise InputError(
                    f"weight of {plugin} in {self.name!r} must be positive, got {weight}",
                    field=f"profiles:{self.name}:scores:{plugin}",
                )


def parse_profiles(data: Mapping[str, Any]) -> dict[str, Profile]:
    default_filters = tuple(data.get("filters", ()))
    profiles = {}
    for name, spec in data["profiles"].items():
        scores = spec.get("scores") or {}
        profiles[name] = Profile(
            name=name,
            filters=tuple(spec.get("filters", default_filters)),
            scores=tuple((plugin, float(weight)) for plugin, weight in scores.items()),
            args={plugin: dict(a or {}) for plugin, a in (spec.get("args") or {}).items()},
        )
    return profiles


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """Profiles from a YAML file (default: the shipped ``profiles.yaml``)."""
    # Plugins register themselves on import; make sure the built-in ones are loaded.
    import suanwang.matching.fgd
    import suanwang.matching.market_plugins
    import suanwang.matching.plugins  # noqa: F401

    with (path or PROFILES_PATH).open(encoding="utf-8") as f:
        return parse_profiles(yaml.safe_load(f))


def profile_named(name: str, path: Path | None = None) -> Profile:
    profiles = load_profiles(path)
    try:
        return profiles[name]
    except KeyError:
        raise NotFoundError(f"no profile {name!r}; known: {', '.join(profiles)}", field="policy") from None


Binder = Callable[["Placement"], None]
