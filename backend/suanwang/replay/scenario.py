"""The scenario format (docs/replay.md): loading with line numbers and validation.

Every error is an ``InputError`` whose message starts with ``<file>:<line>: <field>:`` and whose
``field`` is ``<file>:<line>:<field>`` (the field as a dotted path, e.g. ``nodes[2].price_per_cu_hour``),
so an operator can jump to the mistake. Lines come from ``yaml.compose`` (each node's ``start_mark``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from suanwang.errors import InputError

TOKEN = 10**18
ROLE_BITS = {"operator": 1, "cloud": 2, "provider": 4, "buyer": 8, "matcher": 16, "arbiter": 32}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EXPECT_KEYS = {
    "stage": "the federation's stage at the end",
    "operators": "operator members at the end",
    "members_admitted_by_vote": "members admitted by an operators' vote",
    "orders": "orders submitted",
    "nodes": "nodes registered",
    "matched": "orders matched on chain",
    "match_rate": "matched / orders",
    "settled": "deals settled",
    "refunded": "deals refunded",
    "slashed": "deals whose seller was slashed",
    "disputes": "deals disputed",
    "rerouted": "leases re-routed after a link failure",
    "sla_compliance": "share of matched deals whose path latency met the order's bound",
    "valueless_deals": "deals matched in stage 1 (recorded, no tokens moved)",
    "valued_deals": "deals that moved value (stage 2 and later)",
    "value_moved": "total absolute change in the parties' holdings, in tokens",
    "transit_operators_paid": "operators that earned transit",
    "internal_settled": "deals settled between the founder's own teams",
    "open_deals": "deals not final at the end",
    "conservation": "the conservation check passed",
}
EVENT_KINDS = ("stage", "admit", "vote", "node_failure", "link_failure", "dispute")


# A scenario is a page of YAML; these bounds refuse what no scenario needs and a hostile file uses:
# aliases that expand exponentially (the YAML "billion laughs"), cycles, and nesting that would
# exhaust the stack.
MAX_YAML_NODES = 20_000  # the shipped scenarios hold 100 to 400
MAX_YAML_DEPTH = 64
# Tags the scenario format uses (YAML 1.1's core schema); anything else (!!python/..., custom tags) is refused.
CORE_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
}


class Located:
    """A YAML tree as plain values plus the line of every path (1-based)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[tuple[Any, ...], int] = {}
        self.nodes = 0
        self._scalars = SafeConstructor()  # what yaml.safe_load would make of each scalar

    def build(self, node: yaml.Node, path: tuple[Any, ...] = ()) -> Any:
        self.lines[path] = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise self.error(path, f"more than {MAX_YAML_NODES:,} values (aliases expanding without end?)")
        if len(path) > MAX_YAML_DEPTH:
            raise self.error(path, f"nested more than {MAX_YAML_DEPTH} levels deep (an alias that contains itself?)")
        if node.tag not in CORE_TAGS:
            raise self.error(path, f"unsupported YAML tag {node.tag!r}; a scenario holds plain values only")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.lines[(*path, "?")] = key_node.start_mark.line + 1
                    raise self.error((*path, "?"), "a key must be a plain name, not a list or a mapping")
                key = str(key_node.value)
                if key in out:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
                    raise self.error((*path, key), f"the key {key!r} is given twice")
                out[key] = self.build(value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == "tag:yaml.org,2002:str":
            return node.value
        try:
            return self._scalars.construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:  # e.g. an integer of more than 4,300 digits
            reason = str(exc).split(";")[0]  # not Python's advice on raising its own limit
            raise self.error(path, f"{node.value[:40]!r} is not a valid value: {reason}") from None

    def line(self, path: tuple[Any, ...]) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def error(self, path: tuple[Any, ...], message: str) -> InputError:
        dotted = dotted_path(path if len(path) <= 8 else (*path[:8], "...")) or "(top level)"
        line = self.line(path)
        return InputError(f"{self.file}:{line}: {dotted}: {message}", field=f"{self.file}:{line}:{dotted}")


def dotted_path(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class OperatorSpec:
    topology: str
    name: str
    transit_price_per_gbps_hour: int
    paid_to: str  # party paid this operator's transit
    line: int = 1


@dataclass(frozen=True)
class PeeringSpec:
    a: str
    b: str
    capacity_gbps: float


@dataclass(frozen=True)
class PartySpec:
    name: str
    roles: int
    founder: bool
    admitted: str  # "start" or "event"
    tokens: int
    deposit: int
    stake: str | int  # "auto" (what its nodes need) or base units
    line: int


@dataclass(frozen=True)
class NodeGroup:
    owner: str
    count: int
    routers: tuple[str, ...]
    operator: str | None  # the operator party whose domain; None = the router topology's paid_to
    price_per_cu_hour: int
    price_jitter: float
    spec: dict[str, int] | None  # explicit NodeSpec figures (logic_mcu, ...)
    openb: dict[str, Any] | None  # draw rows from an OpenB node list
    label: str
    line: int


@dataclass(frozen=True)
class OrderStream:
    buyer: str
    count: int
    window: tuple[int, int]
    access_points: tuple[str, ...]
    shape: dict[str, int] | None
    openb: dict[str, Any] | None
    duration: tuple[int, int]
    max_price_per_cu_hour: int
    max_latency_ms: tuple[int, int]
    min_bandwidth_mbps: int
    transit_allowance: int
    line: int


@dataclass(frozen=True)
class Event:
    at: int
    kind: str
    args: dict[str, Any]
    line: int


@dataclass(frozen=True)
class Expectation:
    key: str
    op: str
    value: float | bool
    line: int

    def holds(self, actual: float | bool) -> bool:
        if isinstance(self.value, bool):
            return bool(actual) == self.value
        a, v = float(actual), float(self.value)
        return {"==": a == v, ">=": a >= v, "<=": a <= v, ">": a > v, "<": a < v}[self.op]

    def text(self) -> str:
        return f"{self.key} {self.op} {self.value}"


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    description: str
    seed: int
    step: int
    epoch: int
    max_time: int
    batch_size: int
    operators: tuple[OperatorSpec, ...]
    peering: tuple[PeeringSpec, ...]
    lease_bandwidth_gbps: float
    parties: tuple[PartySpec, ...]
    nodes: tuple[NodeGroup, ...]
    orders: tuple[OrderStream, ...]
    events: tuple[Event, ...]
    expect: tuple[Expectation, ...]
    short: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def party(self, name: str) -> PartySpec:
        return next(p for p in self.parties if p.name == name)

    @property
    def founder(self) -> PartySpec:
        return next(p for p in self.parties if p.founder)


# --------------------------------------------------------------------------- parsing helpers
class _Reader:
    def __init__(self, located: Located) -> None:
        self.loc = located

    def err(self, path: tuple[Any, ...], message: str) -> InputError:
        return self.loc.error(path, message)

    def mapping(
        self, value: Any, path: tuple[Any, ...], allowed: set[str], required: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.err(path, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.err((*path, unknown[0]), f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
        missing = sorted(required - set(value))
        if missing:
            raise self.err(path, f"missing field {missing[0]!r}")
        return value

    def seq(self, value: Any, path: tuple[Any, ...]) -> list[Any]:
        if not isinstance(value, list):
            raise self.err(path, f"expected a list, got {type(value).__name__}")
        return value

    def string(self, value: Any, path: tuple[Any, ...]) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.err(path, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def integer(self, value: Any, path: tuple[Any, ...], low: int = 0, high: int = 2**128 - 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.err(path, f"expected an integer in {low}..{high}, got {value!r}")
        return value

    def number(self, value: Any, path: tuple[Any, ...], low: float = 0.0, high: float = float("inf")) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise self.err(path, f"expected a number in {low}..{high}, got {value!r}")
        return float(value)

    def tokens(self, value: Any, path: tuple[Any, ...]) -> int:
        """An amount in tokens (decimal string or number; '0.05' = 5 * 10**16 base units)."""
        if isinstance(value, bool):
            raise self.err(path, f"expected an amount of tokens, got {value!r}")
        try:
            amount = Decimal(str(value)) * TOKEN
        except InvalidOperation:
            raise self.err(path, f"expected an amount of tokens (e.g. '0.05'), got {value!r}") from None
        if amount < 0 or amount != amount.to_integral_value() or amount >= 2**128:
            raise self.err(path, f"an amount of tokens must be >= 0 with at most 18 decimals, got {value!r}")
        return int(amount)

    def duration(self, value: Any, path: tuple[Any, ...]) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", str(value)) if isinstance(value, str) else None
        if match is None:
            raise self.err(path, f"expected a duration (seconds, or e.g. '90s', '30m', '2h', '1d'), got {value!r}")
        return int(float(match.group(1)) * DURATION_UNITS[match.group(2)])

    def int_range(self, value: Any, path: tuple[Any, ...], parse: Any) -> tuple[int, int]:
        if isinstance(value, list):
            if len(value) != 2:
                raise self.err(path, f"expected [low, high], got {value!r}")
            low, high = parse(value[0], (*path, 0)), parse(value[1], (*path, 1))
            if low > high:
                raise self.err(path, f"low {value[0]!r} is above high {value[1]!r}")
            return low, high
        single = parse(value, path)
        return single, single


def _roles(reader: _Reader, value: Any, path: tuple[Any, ...]) -> int:
    mask = 0
    for i, name in enumerate(reader.seq(value, path)):
        if name not in ROLE_BITS:
            raise reader.err((*path, i), f"unknown role {name!r}; roles: {', '.join(ROLE_BITS)}")
        mask |= ROLE_BITS[name]
    if not mask:
        raise reader.err(path, "a party needs at least one role")
    return mask


def _expectation(reader: _Reader, key: str, value: Any, path: tuple[Any, ...]) -> Expectation:
    line = reader.loc.line(path)
    if key not in EXPECT_KEYS:
        raise reader.err(path, f"unknown outcome {key!r}; known: {', '.join(EXPECT_KEYS)}")
    if isinstance(value, bool):
        return Expectation(key, "==", value, line)
    if isinstance(value, int | float):
        return Expectation(key, "==", float(value), line)
    match = re.fullmatch(r"\s*(>=|<=|==|>|<)\s*(-?\d+(?:\.\d+)?)\s*", str(value))
    if match is None:
        raise reader.err(path, f"expected a number, true/false or a comparison such as '>= 1', got {value!r}")
    return Expectation(key, match.group(1), float(match.group(2)), line)


# --------------------------------------------------------------------------- the loader
def _check_nesting(text: str, file: str) -> None:
    """Refuses nesting deeper than MAX_YAML_DEPTH from the parser's events (the parser keeps its own
    stack, so this costs no recursion, while composing 100,000 levels took minutes)."""
    depth = 0
    for event in yaml.parse(text):
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise InputError(
                    f"{file}:{line}: (syntax): nested more than {MAX_YAML_DEPTH} levels deep",
                    field=f"{file}:{line}:syntax",
                )
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            depth -= 1


def load_scenario(path: str | Path, *, short: bool = False, seed: int | None = None) -> Scenario:
    """Reads and validates a scenario; ``short`` applies its ``short:`` section (fewer nodes and
    orders, its own expectations)."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"{file}:1: (file): cannot read the scenario ({exc.strerror})", field=f"{file}:1:file"
        ) from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError(f"{file}:{line}: (file): not UTF-8 text ({exc.reason})", field=f"{file}:{line}:file") from None
    located = Located(file)
    try:
        _check_nesting(text, file)  # before compose, which recurses once per level
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        line = (exc.problem_mark.line + 1) if exc.problem_mark else 1
        raise InputError(f"{file}:{line}: (syntax): {exc.problem}", field=f"{file}:{line}:syntax") from None
    except yaml.YAMLError as exc:  # e.g. a control character PyYAML refuses, without a mark
        raise InputError(f"{file}:1: (syntax): {exc}", field=f"{file}:1:syntax") from None
    except RecursionError:
        raise InputError(
            f"{file}:1: (syntax): nested too deeply to read (a scenario needs a few levels)",
            field=f"{file}:1:syntax",
        ) from None
    if root is None:
        raise InputError(f"{file}:1: (top level): the scenario is empty", field=f"{file}:1:")
    doc = located.build(root)
    r = _Reader(located)
    top_keys = {
        "name",
        "description",
        "seed",
        "step",
        "epoch",
        "max_time",
        "batch_size",
        "network",
        "parties",
        "nodes",
        "orders",
        "events",
        "expect",
        "short",
        "notes",
    }
    r.mapping(doc, (), top_keys, {"name", "network", "parties", "nodes", "orders"})
    short_cfg: dict[str, Any] = {}
    if "short" in doc:
        short_cfg = r.mapping(doc["short"], ("short",), {"nodes_scale", "orders_scale", "window_scale", "expect"})
        for scale in ("nodes_scale", "orders_scale", "window_scale"):
            if scale in short_cfg:
                r.number(short_cfg[scale], ("short", scale), 0.0001, 1000.0)
    name = r.string(doc["name"], ("name",))
    seed_value = seed if seed is not None else r.integer(doc.get("seed", 0), ("seed",), 0, 2**63 - 1)
    step = r.duration(doc.get("step", "5m"), ("step",))
    if step < 60:
        raise r.err(("step",), "a round must last at least 60 s")

    # network ----------------------------------------------------------------------------------
    net = r.mapping(doc["network"], ("network",), {"operators", "peering", "lease_bandwidth_gbps"}, {"operators"})
    operators = []
    for i, op in enumerate(r.seq(net["operators"], ("network", "operators"))):
        p: tuple[Any, ...] = ("network", "operators", i)
        op = r.mapping(op, p, {"topology", "name", "transit_price_per_gbps_hour", "paid_to"}, {"topology", "paid_to"})
        topology = r.string(op["topology"], (*p, "topology"))
        operators.append(
            OperatorSpec(
                topology=topology,
                name=r.string(op.get("name", Path(topology).stem), (*p, "name")),
                transit_price_per_gbps_hour=r.tokens(
                    op.get("transit_price_per_gbps_hour", "0.001"), (*p, "transit_price_per_gbps_hour")
                ),
                paid_to=r.string(op["paid_to"], (*p, "paid_to")),
                line=located.line((*p, "topology")),
            )
        )
    if not operators:
        raise r.err(("network", "operators"), "at least one operator topology is needed")
    peering = []
    for i, pe in enumerate(r.seq(net.get("peering", []), ("network", "peering"))):
        p = ("network", "peering", i)
        pe = r.mapping(pe, p, {"a", "b", "capacity_gbps"}, {"a", "b"})
        peering.append(
            PeeringSpec(
                r.string(pe["a"], (*p, "a")),
                r.string(pe["b"], (*p, "b")),
                r.number(pe.get("capacity_gbps", 10), (*p, "capacity_gbps"), 0.001),
            )
        )

    # parties ----------------------------------------------------------------------------------
    parties: list[PartySpec] = []
    for i, pa in enumerate(r.seq(doc["parties"], ("parties",))):
        p = ("parties", i)
        pa = r.mapping(pa, p, {"name", "roles", "founder", "admitted", "tokens", "deposit", "stake"}, {"name", "roles"})
        pname = r.string(pa["name"], (*p, "name"))
        if any(x.name == pname for x in parties):
            raise r.err((*p, "name"), f"party {pname!r} is listed twice")
        admitted = pa.get("admitted", "start")
        if admitted not in ("start", "event"):
            raise r.err((*p, "admitted"), f"expected 'start' or 'event', got {admitted!r}")
        stake = pa.get("stake", "auto")
        parties.append(
            PartySpec(
                name=pname,
                roles=_roles(r, pa["roles"], (*p, "roles")),
                founder=bool(pa.get("founder", False)),
                admitted=admitted,
                tokens=r.tokens(pa.get("tokens", 1_000_000), (*p, "tokens")),
                deposit=r.tokens(pa.get("deposit", 0), (*p, "deposit")),
                stake="auto" if stake == "auto" else r.tokens(stake, (*p, "stake")),
                line=located.line(p),
            )
        )
    founders = [x for x in parties if x.founder]
    if len(founders) != 1:
        raise r.err(("parties",), f"exactly one party must be the founder (founder: true); found {len(founders)}")
    if founders[0].admitted != "start" or not founders[0].roles & ROLE_BITS["operator"]:
        raise r.err(
            ("parties", parties.index(founders[0]), "roles"), "the founder is an operator member from the start"
        )
    names = {x.name for x in parties}
    for i, op in enumerate(operators):
        if op.paid_to not in names:
            raise r.err(
                ("network", "operators", i, "paid_to"),
                f"no party named {op.paid_to!r}; parties: {', '.join(sorted(names))}",
            )
        if not next(x for x in parties if x.name == op.paid_to).roles & ROLE_BITS["operator"]:
            raise r.err(("network", "operators", i, "paid_to"), f"{op.paid_to!r} must hold the operator role")

    # nodes ------------------------------------------------------------------------------------
    nodes_scale = float(short_cfg.get("nodes_scale", 1.0)) if short else 1.0
    node_groups = []
    spec_keys = {"logic_mcu", "parallel_mcu", "neural_mcu", "memory_mib", "gpu_model", "gpu_count", "tier"}
    for i, ng in enumerate(r.seq(doc["nodes"], ("nodes",))):
        p = ("nodes", i)
        ng = r.mapping(
            ng,
            p,
            {"owner", "count", "routers", "operator", "price_per_cu_hour", "price_jitter", "spec", "openb", "label"},
            {"owner", "routers", "price_per_cu_hour"},
        )
        owner = r.string(ng["owner"], (*p, "owner"))
        if owner not in names:
            raise r.err((*p, "owner"), f"no party named {owner!r}; parties: {', '.join(sorted(names))}")
        if ("spec" in ng) == ("openb" in ng):
            raise r.err(p, "give exactly one of 'spec' (explicit figures) or 'openb' (rows drawn from the trace)")
        spec = None
        if "spec" in ng:
            raw = r.mapping(ng["spec"], (*p, "spec"), spec_keys, {"logic_mcu", "memory_mib", "tier"})
            spec = {k: r.integer(raw.get(k, 0), (*p, "spec", k), 0, 2**48 - 1) for k in spec_keys}
            if spec["tier"] > 3:
                raise r.err((*p, "spec", "tier"), f"tier is 0..3, got {spec['tier']}")
            if spec["logic_mcu"] + spec["parallel_mcu"] + spec["neural_mcu"] == 0:
                raise r.err((*p, "spec"), "a node needs compute in at least one class")
            if (spec["gpu_model"] == 0) != (spec["gpu_count"] == 0):
                raise r.err((*p, "spec", "gpu_count"), "gpu_model and gpu_count are both 0 or both set")
        openb = None
        if "openb" in ng:
            openb = r.mapping(ng["openb"], (*p, "openb"), {"file", "gpu"})
            if "file" in openb:
                r.string(openb["file"], (*p, "openb", "file"))
            if openb.get("gpu", "any") not in ("any", "only", "none"):
                raise r.err((*p, "openb", "gpu"), f"expected any, only or none, got {openb.get('gpu')!r}")
        count = r.integer(ng.get("count", 1), (*p, "count"), 1, 10_000)
        if short and nodes_scale != 1.0:
            count = max(1, round(count * nodes_scale))
        routers = ng["routers"] if isinstance(ng["routers"], list) else [ng["routers"]]
        node_groups.append(
            NodeGroup(
                owner=owner,
                count=count,
                routers=tuple(r.string(x, (*p, "routers", j)) for j, x in enumerate(routers)),
                operator=r.string(ng["operator"], (*p, "operator")) if "operator" in ng else None,
                price_per_cu_hour=r.tokens(ng["price_per_cu_hour"], (*p, "price_per_cu_hour")),
                price_jitter=r.number(ng.get("price_jitter", 0.0), (*p, "price_jitter"), 0.0, 0.9),
                spec=spec,
                openb=openb,
                label=str(ng.get("label", f"{owner}-{i}")),
                line=located.line(p),
            )
        )
        if node_groups[-1].operator is not None and node_groups[-1].operator not in names:
            raise r.err((*p, "operator"), f"no party named {node_groups[-1].operator!r}")

    # orders -----------------------------------------------------------------------------------
    orders_scale = float(short_cfg.get("orders_scale", 1.0)) if short else 1.0
    window_scale = float(short_cfg.get("window_scale", 1.0)) if short else 1.0
    streams = []
    shape_keys = {"logic_mcu", "parallel_mcu", "neural_mcu", "memory_mib", "gpu_model", "gpu_count", "min_tier"}
    for i, st in enumerate(r.seq(doc["orders"], ("orders",))):
        p = ("orders", i)
        st = r.mapping(
            st,
            p,
            {
                "buyer",
                "count",
                "window",
                "access_points",
                "shape",
                "openb",
                "duration",
                "max_price_per_cu_hour",
                "max_latency_ms",
                "min_bandwidth_mbps",
                "transit_allowance",
            },
            {"buyer", "count", "window", "access_points", "duration", "max_price_per_cu_hour"},
        )
        buyer = r.string(st["buyer"], (*p, "buyer"))
        if buyer not in names:
            raise r.err((*p, "buyer"), f"no party named {buyer!r}; parties: {', '.join(sorted(names))}")
        if not next(x for x in parties if x.name == buyer).roles & ROLE_BITS["buyer"]:
            raise r.err((*p, "buyer"), f"{buyer!r} must hold the buyer role")
        if ("shape" in st) == ("openb" in st):
            raise r.err(p, "give exactly one of 'shape' (explicit figures) or 'openb' (pods drawn from the trace)")
        shape = None
        if "shape" in st:
            raw = r.mapping(st["shape"], (*p, "shape"), shape_keys, {"memory_mib"})
            shape = {k: r.integer(raw.get(k, 0), (*p, "shape", k), 0, 2**48 - 1) for k in shape_keys}
            if shape["logic_mcu"] + shape["parallel_mcu"] + shape["neural_mcu"] == 0:
                raise r.err((*p, "shape"), "an order needs compute in at least one class")
        openb = None
        if "openb" in st:
            openb = r.mapping(st["openb"], (*p, "openb"), {"file", "gpu", "max_gpus"})
            if "file" in openb:
                r.string(openb["file"], (*p, "openb", "file"))
            if "max_gpus" in openb:
                r.integer(openb["max_gpus"], (*p, "openb", "max_gpus"), 0, 64)
            if openb.get("gpu", "any") not in ("any", "only", "none"):
                raise r.err((*p, "openb", "gpu"), f"expected any, only or none, got {openb.get('gpu')!r}")
        count = r.integer(st["count"], (*p, "count"), 1, 1_000_000)
        if short and orders_scale != 1.0:
            count = max(1, round(count * orders_scale))
        window = r.int_range(st["window"], (*p, "window"), r.duration)
        if window_scale != 1.0:
            window = (int(window[0] * window_scale), int(window[1] * window_scale))
        aps = st["access_points"] if isinstance(st["access_points"], list) else [st["access_points"]]
        streams.append(
            OrderStream(
                buyer=buyer,
                count=count,
                window=window,
                access_points=tuple(r.string(x, (*p, "access_points", j)) for j, x in enumerate(aps)),
                shape=shape,
                openb=openb,
                duration=r.int_range(st["duration"], (*p, "duration"), r.duration),
                max_price_per_cu_hour=r.tokens(st["max_price_per_cu_hour"], (*p, "max_price_per_cu_hour")),
                max_latency_ms=r.int_range(
                    st.get("max_latency_ms", 0), (*p, "max_latency_ms"), lambda v, q: r.integer(v, q, 0, 2**32 - 1)
                ),
                min_bandwidth_mbps=r.integer(st.get("min_bandwidth_mbps", 0), (*p, "min_bandwidth_mbps"), 0, 2**32 - 1),
                transit_allowance=r.tokens(st.get("transit_allowance", 10), (*p, "transit_allowance")),
                line=located.line(p),
            )
        )
        if streams[-1].duration[0] < 60:
            raise r.err((*p, "duration"), "orders last at least 60 s")

    # events -----------------------------------------------------------------------------------
    events = []
    for i, ev in enumerate(r.seq(doc.get("events", []), ("events",))):
        p = ("events", i)
        ev = r.mapping(ev, p, {"at", *EVENT_KINDS})
        kinds = [k for k in EVENT_KINDS if k in ev]
        if len(kinds) != 1:
            raise r.err(p, f"an event has one 'at' and exactly one of {', '.join(EVENT_KINDS)}")
        if "at" not in ev:
            raise r.err(p, "missing field 'at'")
        at = r.duration(ev["at"], (*p, "at"))
        kind = kinds[0]
        q = (*p, kind)
        value = ev[kind]
        if window_scale != 1.0:
            at = int(at * window_scale)
        if kind == "stage":
            args: dict[str, Any] = {"stage": r.integer(value, q, 2, 3)}
        elif kind == "admit":
            party = r.string(value, q)
            if party not in names:
                raise r.err(q, f"no party named {party!r}")
            args = {"party": party}
        elif kind == "vote":
            v = r.mapping(value, q, {"candidate", "proposer", "voters"}, {"candidate", "proposer"})
            args = {
                "candidate": r.string(v["candidate"], (*q, "candidate")),
                "proposer": r.string(v["proposer"], (*q, "proposer")),
                "voters": [
                    r.string(x, (*q, "voters", j)) for j, x in enumerate(r.seq(v.get("voters", []), (*q, "voters")))
                ],
            }
            for key, who in (("candidate", args["candidate"]), ("proposer", args["proposer"])):
                if who not in names:
                    raise r.err((*q, key), f"no party named {who!r}")
            for j, who in enumerate(args["voters"]):
                if who not in names:
                    raise r.err((*q, "voters", j), f"no party named {who!r}")
        elif kind == "node_failure":
            v = r.mapping(value, q, {"owner", "index"}, {"owner"})
            args = {"owner": r.string(v["owner"], (*q, "owner")), "index": r.integer(v.get("index", 0), (*q, "index"))}
            if args["owner"] not in names:
                raise r.err((*q, "owner"), f"no party named {args['owner']!r}")
        elif kind == "link_failure":
            v = r.mapping(value, q, {"a", "b"}, {"a", "b"})
            args = {"a": r.string(v["a"], (*q, "a")), "b": r.string(v["b"], (*q, "b"))}
        else:  # dispute
            v = r.mapping(value, q, {"buyer", "count", "arbiter", "seller_wins"}, {"buyer", "arbiter"})
            args = {
                "buyer": r.string(v["buyer"], (*q, "buyer")),
                "count": r.integer(v.get("count", 1), (*q, "count"), 1),
                "arbiter": r.string(v["arbiter"], (*q, "arbiter")),
                "seller_wins": bool(v.get("seller_wins", False)),
            }
            for key in ("buyer", "arbiter"):
                if args[key] not in names:
                    raise r.err((*q, key), f"no party named {args[key]!r}")
        events.append(Event(at, kind, args, located.line(p)))
    events.sort(key=lambda e: e.at)  # stable: same-time events keep file order

    # expectations -----------------------------------------------------------------------------
    expect_src = dict(doc.get("expect") or {})
    expect_path: dict[str, tuple[Any, ...]] = {k: ("expect", k) for k in expect_src}
    if "expect" in doc:
        r.mapping(doc["expect"], ("expect",), set(EXPECT_KEYS))
    if short and "expect" in short_cfg:
        r.mapping(short_cfg["expect"], ("short", "expect"), set(EXPECT_KEYS))
        for k, v in short_cfg["expect"].items():
            expect_src[k] = v
            expect_path[k] = ("short", "expect", k)
    expect = tuple(_expectation(r, k, v, expect_path[k]) for k, v in expect_src.items())

    scenario = Scenario(
        path=path,
        name=name,
        description=str(doc.get("description", "")).strip(),
        seed=seed_value,
        step=step,
        epoch=r.integer(doc.get("epoch", 4_102_444_800), ("epoch",), 1, 2**40 - 1),
        max_time=r.duration(doc.get("max_time", "7d"), ("max_time",)),
        batch_size=r.integer(doc.get("batch_size", 50), ("batch_size",), 1, 500),
        operators=tuple(operators),
        peering=tuple(peering),
        lease_bandwidth_gbps=r.number(
            net.get("lease_bandwidth_gbps", 0.01), ("network", "lease_bandwidth_gbps"), 0.000001
        ),
        parties=tuple(parties),
        nodes=tuple(node_groups),
        orders=tuple(streams),
        events=tuple(events),
        expect=expect,
        short=short,
        notes=tuple(str(x) for x in (doc.get("notes") or [])),
    )
    _check_membership(scenario, located)
    return scenario


def _check_membership(s: Scenario, located: Located) -> None:
    """Parties admitted by an event need exactly one admit or vote event naming them."""
    by_event: dict[str, int] = {}
    for i, e in enumerate(s.events):
        who = e.args.get("party") if e.kind == "admit" else e.args.get("candidate") if e.kind == "vote" else None
        if who is None:
            continue
        party = s.party(who)
        if party.admitted != "event":
            raise InputError(
                f"{located.file}:{e.line}: events[{i}].{e.kind}: {who!r} is a member from the start "
                "(set admitted: event on the party to admit it by an event)",
                field=f"{located.file}:{e.line}:events[{i}].{e.kind}",
            )
        if who in by_event:
            raise InputError(
                f"{located.file}:{e.line}: events[{i}].{e.kind}: {who!r} is admitted twice",
                field=f"{located.file}:{e.line}:events[{i}].{e.kind}",
            )
        by_event[who] = i
        if e.kind == "vote" and not party.roles & ROLE_BITS["operator"]:
            raise InputError(
                f"{located.file}:{e.line}: events[{i}].vote.candidate: a vote admits operators; "
                f"{who!r} has no operator role",
                field=f"{located.file}:{e.line}:events[{i}].vote.candidate",
            )
    for p in s.parties:
        if p.admitted == "event" and p.name not in by_event:
            raise InputError(
                f"{located.file}:{p.line}: parties.{p.name}.admitted: no admit or vote event names {p.name!r}",
                field=f"{located.file}:{p.line}:parties.{p.name}.admitted",
            )


def with_seed(scenario: Scenario, seed: int) -> Scenario:
    return replace(scenario, seed=seed)
