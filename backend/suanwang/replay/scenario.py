"""The scenario format (docs/replay.md): loading with line numbers and validation.

Every error is an ``InputError`` whose message starts with ``<file>:<line>: <field>:`` and whose
``field`` is ``<file>:<line>:<field>`` (the field as a dotted path, e.g. ``nodes[2].price_per_cu_hour``),
so an operator can jump to the mistake. Lines come from ``yaml.compose`` (each node's ``start_mark``);
the safe reading and the typed reads that name the line are in ``suanwang.replay.located``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from suanwang.errors import InputError
from suanwang.replay.located import (
    CORE_TAGS,
    DURATION_UNITS,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    TOKEN,
    Located,
    Reader,
    check_nesting,
    dotted_path,
    read_located,
)

# Reading YAML with lines lives in replay.located; these names stay importable from here.
__all__ = [
    "CORE_TAGS",
    "DURATION_UNITS",
    "EVENT_KINDS",
    "EXPECT_KEYS",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "ROLE_BITS",
    "TOKEN",
    "Event",
    "Expectation",
    "Located",
    "NodeGroup",
    "OperatorSpec",
    "OrderStream",
    "PartySpec",
    "PeeringSpec",
    "Reader",
    "Scenario",
    "check_nesting",
    "dotted_path",
    "load_scenario",
    "with_seed",
]
ROLE_BITS = {"operator": 1, "cloud": 2, "provider": 4, "buyer": 8, "matcher": 16, "arbiter": 32}
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


def _roles(reader: Reader, value: Any, path: tuple[Any, ...]) -> int:
    mask = 0
    for i, name in enumerate(reader.seq(value, path)):
        if name not in ROLE_BITS:
            raise reader.err((*path, i), f"unknown role {name!r}; roles: {', '.join(ROLE_BITS)}")
        mask |= ROLE_BITS[name]
    if not mask:
        raise reader.err(path, "a party needs at least one role")
    return mask


def _expectation(reader: Reader, key: str, value: Any, path: tuple[Any, ...]) -> Expectation:
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
def load_scenario(path: str | Path, *, short: bool = False, seed: int | None = None) -> Scenario:
    """Reads and validates a scenario; ``short`` applies its ``short:`` section (fewer nodes and
    orders, its own expectations)."""
    path = Path(path)
    located, doc = read_located(path)
    r = Reader(located)
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
