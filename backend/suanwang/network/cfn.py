"""CFN / CATS: compute-aware service routing (draft-li-rtgwg-cfn-framework; the CATS framework and
metric definitions, draft-ietf-cats-metric-definition).

Service instances register their state (anycast service id, instance address, compute load) at
the CFN node (router) they sit behind. Each CFN node originates an advertisement of its local
instances with a sequence number; routers flood advertisements to their neighbours (simulated
synchronous message passing, one hop per round; a router accepts and relays an advertisement only
if its sequence number is newer than what it holds). Every ingress then has a service routing
table and picks, per new flow, the instance and egress minimising network latency (ingress to
egress, both ways) plus the instance's estimated compute delay; a flow stays with its instance
while that instance is advertised.

Compute load is carried as a CATS-style metric (draft-ietf-cats-metric-definition-08: level 0 the raw
figures, level 1 a normalised figure per category, level 2 one normalised figure for the instance). The
draft leaves the normalisation function to the implementation; this module fixes it once (``cats_level``):
a level is round(10 * the share left), an integer 0..10 with 10 = idle, and an instance's level 2 is the
lowest of its level-1 figures (the bottleneck resource decides what a new request gets).

The market uses the same model for service-ID orders (matching/market_plugins.py, ``service``): the
providers' agents report each node's figures and services (agents/node_metrics.py), and the engine picks
the node with the least ``round_trip_ms(path latency, compute delay)``, as ``CfnDomain.select`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from suanwang.errors import InfeasibleError, InputError, NotFoundError
from suanwang.network.model import Network


def cats_level(share_left: float) -> int:
    """The normalised level 0..10 (10 = all of it free) of a resource with ``share_left`` (0..1) free."""
    return max(0, min(10, round(10 * share_left)))


def utilisation(cpus: int, free_cpus: int, load_1m: float) -> float:
    """An instance's utilisation 0..1 from its level-0 figures: the larger of the share of its CPUs given
    to jobs and its one-minute load average per CPU (a job may use less than it was given, or other work
    may load the host), capped at 1 (saturated)."""
    if cpus <= 0:
        return 1.0
    return max(0.0, min(1.0, max(1.0 - free_cpus / cpus, load_1m / cpus)))


def mm1_delay_ms(service_time_ms: float, load: float) -> float:
    """Expected time in an instance (M/M/1: service time / (1 - utilisation)); inf when saturated."""
    return float("inf") if load >= 1.0 else service_time_ms / (1.0 - load)


def round_trip_ms(one_way_latency_ms: float, compute_delay_ms: float) -> float:
    """What a request to an instance costs: the path there and back, plus the time in the instance."""
    return 2 * one_way_latency_ms + compute_delay_ms


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    service_id: str
    address: str
    site: int  # the CFN node (router index) the instance registers at
    load: float  # CATS level-0 computing metric: utilisation 0..1
    service_time_ms: float = 5.0  # processing time of one request when idle

    @property
    def cats_level1(self) -> int:
        """Normalised computing metric 0..10, 10 meaning idle."""
        return cats_level(1.0 - self.load)

    def compute_delay_ms(self) -> float:
        return mm1_delay_ms(self.service_time_ms, self.load)


@dataclass(frozen=True, slots=True)
class Advertisement:
    origin: int
    sequence: int
    instances: tuple[ServiceInstance, ...]


@dataclass(frozen=True, slots=True)
class Convergence:
    rounds: int
    messages: int
    routers: int
    links: int


@dataclass(frozen=True, slots=True)
class Choice:
    service_id: str
    instance: ServiceInstance
    egress: str
    network_rtt_ms: float
    compute_delay_ms: float
    sticky: bool

    @property
    def total_ms(self) -> float:
        return self.network_rtt_ms + self.compute_delay_ms


@dataclass(slots=True)
class _Router:
    lsdb: dict[int, Advertisement] = field(default_factory=dict)


class CfnDomain:
    """The CFN control plane over a Network's routers (every router relays; any router can be a CFN
    node by having instances registered at it, and any router can be an ingress)."""

    def __init__(self, network: Network) -> None:
        self.net = network
        self._routers = [_Router() for _ in network.routers]
        self._local: dict[int, dict[str, ServiceInstance]] = {}  # site -> address -> instance
        self._sequence: dict[int, int] = {}
        self._pending: list[tuple[int, int, Advertisement]] = []  # (from, to, advertisement)
        self._flows: dict[tuple[int, str], str] = {}  # (ingress, flow id) -> instance address

    # ---- registration (at the CFN node) -------------------------------------------------------

    def register(
        self, service_id: str, address: str, site: str | int, load: float, service_time_ms: float = 5.0
    ) -> None:
        if not 0.0 <= load <= 1.0:
            raise InputError(f"compute load is a utilisation 0..1; got {load}", field="load")
        node = self.net.router_index(site)
        for other, table in self._local.items():
            if other != node and address in table:
                raise InputError(
                    f"instance {address} is already registered at {self.net.routers[other].name}", field="address"
                )
        self._local.setdefault(node, {})[address] = ServiceInstance(service_id, address, node, load, service_time_ms)
        self._originate(node)

    def update_load(self, address: str, load: float) -> None:
        site, inst = self._find(address)
        self.register(inst.service_id, address, site, load, inst.service_time_ms)

    def withdraw(self, address: str) -> None:
        site, _ = self._find(address)
        del self._local[site][address]
        self._originate(site)

    def _find(self, address: str) -> tuple[int, ServiceInstance]:
        for site, table in self._local.items():
            if address in table:
                return site, table[address]
        known = [a for t in self._local.values() for a in t]
        raise NotFoundError(f"no instance {address}; registered: {', '.join(known) or 'none'}", field="address")

    def _originate(self, node: int) -> None:
        seq = self._sequence.get(node, 0) + 1
        self._sequence[node] = seq
        adv = Advertisement(node, seq, tuple(self._local.get(node, {}).values()))
        self._routers[node].lsdb[node] = adv
        self._pending += [(node, nbr, adv) for nbr in self.net.adjacency(node)]

    # ---- flooding -----------------------------------------------------------------------------

    def converge(self, max_rounds: int = 10_000) -> Convergence:
        """Deliver messages round by round until none is in flight; counts rounds and messages."""
        rounds = messages = 0
        while self._pending:
            rounds += 1
            if rounds > max_rounds:
                raise InfeasibleError(f"flooding did not converge in {max_rounds} rounds", field="cfn")
            inflight, self._pending = self._pending, []
            messages += len(inflight)
            for sender, receiver, adv in inflight:
                held = self._routers[receiver].lsdb.get(adv.origin)
                if held is not None and held.sequence >= adv.sequence:
                    continue
                self._routers[receiver].lsdb[adv.origin] = adv
                self._pending += [(receiver, nbr, adv) for nbr in self.net.adjacency(receiver) if nbr != sender]
        return Convergence(rounds, messages, len(self.net.routers), len(self.net.links))

    def table(self, ingress: str | int) -> dict[str, list[tuple[ServiceInstance, int]]]:
        """The service routing table at ``ingress``: service id -> [(instance, advertised sequence)]."""
        node = self.net.router_index(ingress)
        out: dict[str, list[tuple[ServiceInstance, int]]] = {}
        for adv in self._routers[node].lsdb.values():
            for inst in adv.instances:
                out.setdefault(inst.service_id, []).append((inst, adv.sequence))
        return out

    def consistent(self) -> bool:
        """True when every router holds the newest advertisement of every origin."""
        newest = {o: s for o, s in self._sequence.items()}
        return all({o: a.sequence for o, a in r.lsdb.items()} == newest for r in self._routers)

    # ---- data plane decision at the ingress ---------------------------------------------------

    def select(self, ingress: str | int, service_id: str, flow_id: str | None = None) -> Choice:
        """Pick instance and egress for a request arriving at ``ingress`` for the anycast
        ``service_id``; a known ``flow_id`` keeps its instance while the instance is advertised."""
        node = self.net.router_index(ingress)
        entries = self.table(node).get(service_id, [])
        if not entries:
            known = sorted(self.table(node))
            raise NotFoundError(
                f"{self.net.routers[node].name} knows no instance of {service_id!r}; "
                f"services it knows: {', '.join(known) or 'none'}",
                field="service_id",
            )
        latency = self.net.latency_from(node)
        if flow_id is not None:
            pinned = self._flows.get((node, flow_id))
            for inst, _ in entries:
                if inst.address == pinned:
                    return Choice(
                        service_id,
                        inst,
                        self.net.routers[inst.site].name,
                        2 * float(latency[inst.site]),
                        inst.compute_delay_ms(),
                        True,
                    )
        best = min(
            entries, key=lambda e: (round_trip_ms(latency[e[0].site], e[0].compute_delay_ms()), e[0].address)
        )[0]
        if best.compute_delay_ms() == float("inf") or latency[best.site] == float("inf"):
            raise InfeasibleError(
                f"every instance of {service_id!r} is saturated or unreachable from {self.net.routers[node].name}",
                field="service_id",
            )
        if flow_id is not None:
            self._flows[(node, flow_id)] = best.address
        return Choice(
            service_id,
            best,
            self.net.routers[best.site].name,
            2 * float(latency[best.site]),
            best.compute_delay_ms(),
            False,
        )
