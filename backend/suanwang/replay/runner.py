"""Replays a scenario against a chain with the real contracts, the market engine and the network.

Time runs in rounds of ``scenario.step`` seconds of chain time (Anvil's clock is set at the start of
every round: ``epoch + t``). In each round, in this order: the events due, timeouts, arbitration,
settlement or disputes of completed deals, completion of started deals whose duration has passed,
matching the orders that arrive in the round (engine placement, exact bill, ``matchSignedBatch``),
starting accepted deals, then one sample of the figures. A failed node never starts or completes
its deals (they time out and the seller is slashed); a failed link is removed from the network, the
leases crossing it are re-routed and the engine re-reads the routes.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from suanwang.chain.bill import DEAL_FIELDS, Bill, Seats, make_bill, pack_entry, transit_fee
from suanwang.chain.market import order_id as digest_of
from suanwang.chain.market import sign_order
from suanwang.compute.catalog import default_catalog
from suanwang.compute.measure import device_units, grade, node_units, thread_units
from suanwang.errors import InfeasibleError, SuanwangError
from suanwang.lifecycle.marketplace import RoutedCost
from suanwang.matching.market import MarketEngine, MarketNode, MarketOrder, Unplaced
from suanwang.matching.model import StagePolicy
from suanwang.network.model import Network
from suanwang.replay.chain import (
    ReplayError,
    Sender,
    decoder,
    fund_gas,
    load_contracts,
    matched_fields,
    party_key,
    result_cid,
    rpc,
    set_time,
)
from suanwang.replay.inputs import build_network, openb_nodes, openb_pods
from suanwang.replay.scenario import ROLE_BITS, TOKEN, Scenario

OPERATOR, CLOUD, PROVIDER, BUYER, MATCHER, ARBITER = (ROLE_BITS[r] for r in ROLE_BITS)
STATUS = (
    "none",
    "posted",
    "proposed",
    "accepted",
    "started",
    "completed",
    "disputed",
    "settled",
    "refunded",
    "cancelled",
)
FINAL = {"settled", "refunded", "cancelled"}
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = "0x" + "00" * 32
# The replay runs no jobs: every order signs the digest of one plain job specification.
REPLAY_SPEC_DIGEST = "0x" + hashlib.sha256(b'{"command": ["true"]}').hexdigest()
UNROUTABLE = 2**120
# A seller's automatic stake: what its nodes require times this, the rest backing its open deals' locks.
STAKE_HEADROOM = 2  # a transit estimate no order can afford: the engine's bill filter turns the node away


@dataclass
class Party:
    name: str
    roles: int
    key: str
    address: str
    sender: Sender
    member: bool = False
    internal: bool = False  # one of the founder's own teams (admitted in stage 1)
    admitted_by_vote: bool = False


@dataclass
class NodeState:
    label: str
    owner: str
    router: str
    router_index: int
    operator_party: str
    spec: dict[str, int]
    price: int
    node_id: int = 0
    registered: bool = False
    failed: bool = False


@dataclass
class Plan:
    index: int
    buyer: str
    at: int
    access_point: str
    order: dict[str, Any]
    id: str = ""
    outcome: str = "pending"  # pending | matched | unmatched
    reason: str = ""


@dataclass
class DealState:
    id: str
    plan: Plan
    node: NodeState
    deal: dict[str, Any]
    packed: bytes  # the Matched event's deal bytes, which every lifecycle call passes back
    status: str
    deadline: int
    valueless: bool
    total: int
    transit: dict[str, int]  # operator address -> fee
    latency_ms: float
    path: list[int]
    gbps: float
    reservation: int | None = None
    started_at: int | None = None
    dispute: tuple[str, bool] | None = None  # (arbiter party, seller wins)
    bond: int = 0  # the buyer's dispute bond while disputed
    compute_paid: int = 0  # from Settled: prorated to the time used
    platform_paid: int = 0
    transit_paid: bool = False  # Settled paid the transit lines (no SLA breach reported)
    slashed: bool = False
    rerouted: bool = False
    sla_met: bool | None = None


@dataclass
class Sample:
    t: int
    holdings: dict[str, int]
    submitted: int
    matched: int
    utilisation: float
    reserved_gbps: float
    open_deals: int


@dataclass
class ReplayResult:
    scenario: Scenario
    figures: dict[str, Any]
    samples: list[Sample]
    gas: dict[str, list[int]]
    deals: list[DealState]
    plans: list[Plan]
    log: list[str]
    conservation: dict[str, Any]
    before: dict[str, int]
    after: dict[str, int]
    start_block: int
    end_block: int
    addresses: dict[str, str]
    contracts: dict[str, str]
    seconds: float
    outcomes: list[tuple[str, str, Any, bool]] = field(default_factory=list)  # (expectation, line, actual, ok)

    @property
    def ok(self) -> bool:
        return all(o[3] for o in self.outcomes) and bool(self.conservation.get("ok"))


class Replay:
    def __init__(
        self,
        scenario: Scenario,
        w3: Web3,
        addresses: dict[str, str],
        founder_key: str,
        *,
        extra_accounts: dict[str, str] | None = None,
        progress: bool = True,
    ) -> None:
        self.s = scenario
        self.w3 = w3
        self.c: dict[str, Contract] = load_contracts(w3, addresses)
        self.addresses = addresses
        self.market = self.c["Market"]
        self.errors = decoder(self.c)
        self.chain_id = int(w3.eth.chain_id)
        self.progress = progress
        self.rng = np.random.default_rng(scenario.seed)
        self.catalog = default_catalog()
        self.log: list[str] = []
        self.gas: dict[str, list[int]] = defaultdict(list)
        self.extra_accounts = dict(extra_accounts or {})  # other holders of the token (demo accounts)
        self.parties: dict[str, Party] = {}
        for spec in scenario.parties:
            key = founder_key if spec.founder else party_key(scenario.name, spec.name)
            sender = Sender(w3, key, self.chain_id, self.errors)
            self.parties[spec.name] = Party(spec.name, spec.roles, key, sender.address, sender)
        self.founder = self.parties[scenario.founder.name]
        self.by_address = {p.address: p.name for p in self.parties.values()}
        self.failed_links: list[tuple[str, str]] = []
        self.network = self._build_network()
        self.paid_to = {op.name: op.paid_to for op in scenario.operators}
        self.nodes: list[NodeState] = self._make_nodes()
        self.plans: list[Plan] = self._make_orders()
        self.deals: dict[str, DealState] = {}
        self.stage = int(self.c["Federation"].functions.stage().call())
        self.epoch = int(self.c["Federation"].functions.epoch().call())  # signed orders name it
        self.fee_bps = int(self.c["Federation"].functions.platformFeeBps().call())
        # Each operator party's published transit tariff per Gbps-hour (what bills must charge), once it
        # publishes: the highest price of the topologies it is paid for.
        self.tariffs: dict[str, int] = {}
        self.engine = MarketEngine(
            [], RoutedCost(self.network), self._policy(), self.fee_bps, transit_fee=self._transit_estimate
        )
        self._transit_cache: dict[tuple[Any, ...], tuple[int, Any]] = {}
        self.pending_disputes: dict[str, list[tuple[str, bool, int]]] = defaultdict(list)
        self.samples: list[Sample] = []
        self.counts: Counter[str] = Counter()
        self.now = 0

    # ------------------------------------------------------------------ set-up
    def _build_network(self) -> Network:
        return build_network(self.s, self.failed_links)

    def _router(self, name: str, where: str) -> int:
        try:
            return self.network.router_index(name)
        except SuanwangError as exc:
            raise SuanwangError(f"{self.s.path}:{where}: {exc.message}", field=f"{self.s.path}:{where}") from None

    def _make_nodes(self) -> list[NodeState]:
        nodes: list[NodeState] = []
        openb_cpu = int(self.catalog.openb_cpu.code)
        for group in self.s.nodes:
            rows: list[Any] = []
            if group.openb is not None:
                table = openb_nodes(self.s, group, self.catalog)
                picks = self.rng.choice(len(table), size=min(group.count, len(table)), replace=False)
                rows = [table[int(i)] for i in sorted(picks)]
            for k in range(group.count):
                router = group.routers[k % len(group.routers)]
                index = self._router(router, f"{group.line}:nodes.routers")
                operator_name = self.network.routers[index].operator
                operator_party = group.operator or self.paid_to_for(operator_name)
                if group.spec is not None:
                    spec = dict(group.spec)
                else:
                    row = rows[k % len(rows)]
                    units = node_units(
                        self.catalog,
                        cpu_model=openb_cpu,
                        vcpus=row.cpu_milli / 1000,
                        gpu_model=int(row.gpu_model),
                        gpu_count=row.gpu_count,
                    )
                    spec = {
                        "logic_mcu": units.logic,
                        "parallel_mcu": units.parallel,
                        "neural_mcu": units.neural,
                        "memory_mib": row.memory_mib,
                        "gpu_model": int(row.gpu_model) if row.gpu_count else 0,
                        "gpu_count": row.gpu_count,
                        "tier": int(grade(units)),
                    }
                jitter = 1.0 + group.price_jitter * float(self.rng.uniform(-1, 1)) if group.price_jitter else 1.0
                price = max(1, int(group.price_per_cu_hour * jitter))
                nodes.append(NodeState(f"{group.label}#{k}", group.owner, router, index, operator_party, spec, price))
        return nodes

    def paid_to_for(self, operator: str) -> str:
        return next(op.paid_to for op in self.s.operators if op.name == operator)

    def _make_orders(self) -> list[Plan]:
        plans: list[Plan] = []
        cpu = self.catalog.openb_cpu
        pods_cache: dict[str, list[Any]] = {}
        for stream in self.s.orders:
            arrivals = np.sort(self.rng.integers(stream.window[0], stream.window[1] + 1, size=stream.count))
            pods: list[Any] = []
            if stream.openb is not None:
                pods = openb_pods(self.s, stream, self.catalog, pods_cache)
            for j, at in enumerate(arrivals.tolist()):
                ap = stream.access_points[int(self.rng.integers(len(stream.access_points)))]
                self._router(ap, f"{stream.line}:orders.access_points")
                if stream.shape is not None:
                    shape = dict(stream.shape)
                else:
                    pod = pods[int(self.rng.integers(len(pods)))]
                    units = thread_units(cpu).scaled(pod.cpu_milli / 1000)
                    model = int(pod.gpu_models[0]) if len(pod.gpu_models) == 1 else 0
                    if pod.num_gpu:
                        ref = (
                            self.catalog.by_code(model)
                            if model
                            else self.catalog.by_code(int(self.catalog.openb_code("V100M16")))
                        )
                        units = units + device_units(ref).scaled(pod.num_gpu * pod.gpu_milli / 1000)
                    shape = {
                        "logic_mcu": units.logic,
                        "parallel_mcu": units.parallel,
                        "neural_mcu": units.neural,
                        "memory_mib": pod.memory_mib,
                        "gpu_model": model,
                        "gpu_count": pod.num_gpu,
                        "min_tier": 0,
                    }
                lo, hi = stream.duration
                duration = int(round(math.exp(self.rng.uniform(math.log(lo), math.log(hi))) / 60) * 60) or lo
                latency = int(self.rng.integers(stream.max_latency_ms[0], stream.max_latency_ms[1] + 1))
                mcu = shape["logic_mcu"] + shape["parallel_mcu"] + shape["neural_mcu"]
                budget = -(-stream.max_price_per_cu_hour * mcu * duration // 3_600_000) * 12 // 10
                order = {
                    "buyer": "",  # filled once addresses are known
                    "matcher": ZERO_ADDRESS,
                    "logicMcu": shape["logic_mcu"],
                    "parallelMcu": shape["parallel_mcu"],
                    "neuralMcu": shape["neural_mcu"],
                    "memoryMib": shape["memory_mib"],
                    "gpuModel": shape["gpu_model"],
                    "gpuCount": shape["gpu_count"],
                    "gpuMilli": 0,
                    "minTier": shape["min_tier"],
                    "duration": duration,
                    "minRunSeconds": 0,
                    "maxPricePerCuHour": stream.max_price_per_cu_hour,
                    "maxTotal": budget + stream.transit_allowance,
                    "maxTransit": stream.transit_allowance,
                    "maxLatencyMs": latency,
                    "minBandwidthMbps": stream.min_bandwidth_mbps,
                    "autoAccept": True,
                    "expiry": 0,
                    "nonce": len(plans) + j,
                    "epoch": 0,  # the epoch at its match round
                    "specDigest": REPLAY_SPEC_DIGEST,
                    "serviceId": ZERO_BYTES32,
                    "apnId": 0,
                    "apnSlaClass": 0,
                }
                plans.append(Plan(0, stream.buyer, int(at), ap, order))
        plans.sort(key=lambda p: (p.at, p.order["nonce"]))
        for i, plan in enumerate(plans):
            plan.index = i
        return plans

    # ------------------------------------------------------------------ helpers
    def tx(self, party: str, step: str, call: Any, gas: int = 1_500_000) -> Any:
        receipt = self.parties[party].sender.send(call, gas)
        self.gas[step].append(int(receipt["gasUsed"]))
        return receipt

    def _policy(self) -> StagePolicy:
        seller_roles = CLOUD | PROVIDER | OPERATOR if getattr(self, "stage", 1) >= 3 else CLOUD
        sellers = frozenset(p.address for p in self.parties.values() if p.member and p.roles & seller_roles)
        return StagePolicy(stage=3, operator=self.founder.address, admitted=sellers)

    def _refresh_engine(self) -> None:
        self.engine.stage = self._policy()
        self.engine.network_changed()

    def note(self, text: str) -> None:
        self.log.append(f"t={self.now // 60:>4} min: {text}")

    def holdings(self) -> dict[str, int]:
        """Wallet tokens + escrow balance + stake of every party (token base units)."""
        token, market = self.c["SettlementToken"], self.market
        out = {}
        for name, p in self.parties.items():
            out[name] = (
                int(token.functions.balanceOf(p.address).call())
                + int(market.functions.balanceOf(p.address).call())
                + int(market.functions.stakeOf(p.address).call())
            )
        return out

    def token_balances(self) -> dict[str, int]:
        token = self.c["SettlementToken"]
        holders = {
            **{n: p.address for n, p in self.parties.items()},
            **self.extra_accounts,
            "Market (escrow)": self.market.address,
        }
        return {name: int(token.functions.balanceOf(addr).call()) for name, addr in holders.items()}

    # ------------------------------------------------------------------ membership and nodes
    def _admit(self, name: str, register: bool = True) -> None:
        party = self.parties[name]
        fed = self.c["Federation"]
        if party is self.founder:
            if party.roles != OPERATOR:
                self.tx(self.founder.name, "setRoles", fed.functions.setRoles(party.address, party.roles))
        else:
            self.tx(self.founder.name, "admit", fed.functions.admit(party.address, party.roles, name))
        party.member = True
        party.internal = self.stage == 1
        self.note(f"{name} admitted ({self._role_names(party.roles)})")
        if register:
            self._register_nodes(name)
        self._refresh_engine()

    @staticmethod
    def _role_names(mask: int) -> str:
        return ", ".join(r for r, bit in ROLE_BITS.items() if mask & bit)

    def _vote(self, candidate: str, proposer: str, voters: list[str]) -> None:
        fed = self.c["Federation"]
        party = self.parties[candidate]
        proposal = int(fed.functions.proposalCount().call())
        self.tx(proposer, "proposeOperator", fed.functions.proposeOperator(party.address, candidate))
        needed = int(fed.functions.getProposal(proposal).call()[4])
        yes = 1
        for voter in voters:
            if int(fed.functions.rolesOf(party.address).call()):
                break
            self.tx(voter, "vote", fed.functions.vote(proposal))
            yes += 1
        if not int(fed.functions.rolesOf(party.address).call()):
            raise ReplayError(f"the vote on {candidate} got {yes} of {needed} votes needed; name more voters")
        if party.roles != OPERATOR:  # a vote grants OPERATOR alone; the founder grants the party's other roles
            self.tx(self.founder.name, "setRoles", fed.functions.setRoles(party.address, party.roles))
        party.member = True
        party.admitted_by_vote = True
        self.counts["admitted_by_vote"] += 1
        self.note(f"{candidate} admitted by the operators' vote ({yes} of {needed} needed; proposed by {proposer})")
        self._register_nodes(candidate)
        self._refresh_engine()

    def _register_nodes(self, owner: str) -> None:
        mine = [n for n in self.nodes if n.owner == owner and not n.registered]
        if not mine:
            return
        party = self.parties[owner]
        registry, market, token = self.c["NodeRegistry"], self.market, self.c["SettlementToken"]
        spec_party = self.s.party(owner)
        if spec_party.stake == "auto":
            # What its nodes require, and as much again to back its open deals: from stage 2 each deal
            # locks its compute fee of the seller's stake above the requirement until it is final.
            need = sum(int(registry.functions.minStake(n.spec["tier"]).call()) for n in mine)
            stake = max(0, STAKE_HEADROOM * need - int(market.functions.stakeOf(party.address).call()))
        else:
            stake = int(spec_party.stake)
        if stake:
            escrow = int(market.functions.balanceOf(party.address).call())
            if escrow < stake:
                self.tx(owner, "approve", token.functions.approve(market.address, stake - escrow))
                self.tx(owner, "deposit", market.functions.deposit(stake - escrow))
            self.tx(owner, "stake", market.functions.stake(stake))
        for node in mine:
            operator = self.parties[node.operator_party]
            if not operator.member:
                raise ReplayError(
                    f"node {node.label} attaches to {node.router}, whose operator "
                    f"{node.operator_party} is not a member yet; admit it first"
                )
            r = self.network.routers[node.router_index]
            spec = (
                node.spec["logic_mcu"],
                node.spec["parallel_mcu"],
                node.spec["neural_mcu"],
                node.spec["memory_mib"],
                node.spec["gpu_model"],
                node.spec["gpu_count"],
                node.spec["tier"],
                node.price,
                operator.address,
                r.router_id,
                r.locator.prefix,
                r.locator.length,
                bytes(32),  # no encryption key
            )
            receipt = self.tx(owner, "registerNode", registry.functions.registerNode(spec), 800_000)
            events = registry.events.NodeRegistered().process_receipt(receipt, errors=DISCARD)
            node.node_id = int(events[0]["args"]["nodeId"])
            node.registered = True
            self.engine.add_node(self._market_node(node))
        self.note(f"{owner} registered {len(mine)} node(s)" + (f", staked {stake / TOKEN:g} tokens" if stake else ""))

    def _market_node(self, node: NodeState) -> MarketNode:
        return MarketNode(
            node_id=node.node_id,
            owner=self.parties[node.owner].address,
            operator=self.parties[node.operator_party].address,
            router=node.router_index,
            logic_mcu=node.spec["logic_mcu"],
            parallel_mcu=node.spec["parallel_mcu"],
            neural_mcu=node.spec["neural_mcu"],
            memory_mib=node.spec["memory_mib"],
            gpu_model=node.spec["gpu_model"],
            gpu_count=node.spec["gpu_count"],
            tier=node.spec["tier"],
            price_per_cu_hour=node.price,
        )

    # ------------------------------------------------------------------ routing and bills
    def _gbps(self, order: dict[str, Any]) -> float:
        return int(order["minBandwidthMbps"]) / 1000 or self.s.lease_bandwidth_gbps

    def _publish_tariffs(self) -> None:
        """Every operator party that is a member and is paid for some topology's transit publishes its tariff
        (once): the highest transit price of the topologies it is paid for."""
        fed = self.c["Federation"]
        for name, party in self.parties.items():
            prices = [op.transit_price_per_gbps_hour for op in self.s.operators if op.paid_to == name]
            if name in self.tariffs or not prices or not party.member:
                continue
            if not int(fed.functions.rolesOf(party.address).call()) & OPERATOR:
                continue
            self.tx(name, "setTransitTariff", self.market.functions.setTransitTariff(max(prices)))
            self.tariffs[name] = max(prices)
            self.note(f"{name} published its transit tariff, {max(prices) / TOKEN:g} tokens per Gbps-hour")

    def _route(self, access_point: int, router: int, order: dict[str, Any], node_operator: str) -> tuple[int, Any]:
        """(transit fee total, (path, fee lines)) of serving `order` from `access_point` at `router` on a
        node whose network operator is the party `node_operator`, or (UNROUTABLE, reason) when no path
        meets the SLA or it crosses an operator that is not a member. A fee line for each operator party
        paid on the path and for the node's operator, each at its published tariff for the order's
        bandwidth and whole duration (as the market checks)."""
        key = (
            access_point,
            router,
            int(order["minBandwidthMbps"]),
            int(order["duration"]),
            int(order["maxLatencyMs"]),
            node_operator,
        )
        cached = self._transit_cache.get(key)
        if cached is not None:
            return cached
        gbps = self._gbps(order)
        try:
            path = self.network.path(
                access_point,
                router,
                max_latency_ms=float(order["maxLatencyMs"]) or None,
                min_bandwidth_gbps=gbps,
                srv6=False,
            )
        except InfeasibleError as exc:
            answer: tuple[int, Any] = (UNROUTABLE, exc.message)
        else:
            payees: list[str] = []
            for operator in path.operators:
                name = self.paid_to[operator]
                if not self.parties[name].member:
                    answer = (UNROUTABLE, f"the path crosses {operator}, whose operator is not a member")
                    break
                if name not in payees:
                    payees.append(name)
            else:
                if node_operator not in payees:
                    payees.append(node_operator)
                mbps, duration = int(order["minBandwidthMbps"]), int(order["duration"])
                lines = [(self.parties[n].address, transit_fee(self.tariffs.get(n, 0), mbps, duration)) for n in payees]
                answer = (sum(f for _, f in lines), (path, lines))
        self._transit_cache[key] = answer
        return answer

    def _transit_estimate(self, order: MarketOrder, node: MarketNode) -> int:
        plan = self._plan_by_id[order.order_id]
        node_operator = self.by_address[node.operator]
        return self._route(order.access_point, node.router, plan.order, node_operator)[0]

    # ------------------------------------------------------------------ the lifecycle
    def _match_round(self, arrivals: list[Plan], chain_now: int) -> None:
        if not arrivals:
            return
        self._transit_cache.clear()
        market_addr = self.market.address
        ready: list[tuple[Plan, Bill, NodeState, Any]] = []
        for plan in arrivals:
            buyer = self.parties[plan.buyer]
            plan.order["buyer"] = buyer.address
            plan.order["expiry"] = chain_now + 2 * self.s.step + 600
            plan.order["epoch"] = self.epoch
            plan.id = digest_of(plan.order, self.chain_id, market_addr)
            self._plan_by_id[plan.id] = plan
            self.counts["submitted"] += 1
            if not buyer.member:
                plan.outcome, plan.reason = "unmatched", f"{plan.buyer} is not a member yet"
                continue
            ap = self.network.router_index(plan.access_point)
            mo = MarketOrder(
                order_id=plan.id,
                buyer=buyer.address,
                logic_mcu=plan.order["logicMcu"],
                parallel_mcu=plan.order["parallelMcu"],
                neural_mcu=plan.order["neuralMcu"],
                memory_mib=plan.order["memoryMib"],
                gpu_model=plan.order["gpuModel"],
                gpu_count=plan.order["gpuCount"],
                min_tier=plan.order["minTier"],
                duration_s=plan.order["duration"],
                max_price_per_cu_hour=plan.order["maxPricePerCuHour"],
                max_total=plan.order["maxTotal"],
                access_point=ap,
                max_latency_ms=float(plan.order["maxLatencyMs"]),
                min_bandwidth_gbps=plan.order["minBandwidthMbps"] / 1000,
            )
            placed = self.engine.place(mo)
            if isinstance(placed, Unplaced):
                plan.outcome, plan.reason = "unmatched", placed.explanation.text or "no node is offered yet"
                continue
            node = self._node_by_id[placed.node_id]
            _fee, route = self._route(ap, node.router_index, plan.order, node.operator_party)
            bill = make_bill(plan.order, node.node_id, node.price, self.fee_bps, route[1])
            if sum(bill.transit_fees) > plan.order["maxTransit"]:
                self.engine.release(plan.id)
                plan.outcome = "unmatched"
                plan.reason = f"transit {sum(bill.transit_fees)} over the limit {plan.order['maxTransit']}"
                continue
            if bill.total > plan.order["maxTotal"]:
                self.engine.release(plan.id)
                plan.outcome, plan.reason = "unmatched", f"bill {bill.total} over the limit {plan.order['maxTotal']}"
                continue
            ready.append((plan, bill, node, route[0]))
        seats = Seats.of(self.market.functions.transitOperators().call())
        for start in range(0, len(ready), self.s.batch_size):
            chunk = ready[start : start + self.s.batch_size]
            entries = b"".join(
                pack_entry(
                    plan.order,
                    sign_order(plan.order, self.parties[plan.buyer].key, self.chain_id, market_addr),
                    bill.packed(seats),
                )
                for plan, bill, _node, _path in chunk
            )
            receipt = self.parties[self.founder.name].sender.send(
                self.market.functions.matchSignedBatch(entries), 400_000 + 250_000 * len(chunk)
            )
            failed = {
                "0x" + bytes(e["args"]["id"]).hex(): bytes(e["args"]["reason"])
                for e in self.market.events.MatchFailed().process_receipt(receipt, errors=DISCARD)
            }
            matched = {
                "0x" + bytes(e["args"]["id"]).hex(): matched_fields(e["args"], seats)
                for e in self.market.events.Matched().process_receipt(receipt, errors=DISCARD)
            }
            if matched:
                self.gas["match (per order, batched)"].extend([int(receipt["gasUsed"]) // len(chunk)] * len(chunk))
            for plan, bill, node, path in chunk:
                if plan.id in failed or plan.id not in matched:
                    self.engine.release(plan.id)
                    reason = failed.get(plan.id)
                    plan.outcome = "unmatched"
                    plan.reason = (
                        ("the market refused: " + self.errors.decode(reason).message) if reason else "no event"
                    )
                    continue
                self._record_deal(plan, bill, node, path, matched[plan.id])

    def _record_deal(self, plan: Plan, bill: Bill, node: NodeState, path: Any, args: Any) -> None:
        plan.outcome = "matched"
        self.counts["matched"] += 1
        valueless = bool(args["valueless"]) if "valueless" in args else self.stage == 1
        known = {
            "id": bytes.fromhex(plan.id[2:]),
            "buyer": plan.order["buyer"],
            "seller": self.parties[node.owner].address,
            "nodeId": node.node_id,
            "logicMcu": plan.order["logicMcu"],
            "parallelMcu": plan.order["parallelMcu"],
            "neuralMcu": plan.order["neuralMcu"],
            "duration": plan.order["duration"],
            "valueless": valueless,
            "computeFee": bill.compute_fee,
            "platformFee": bill.platform_fee,
            "transitOperators": list(bill.transit_operators),
            "transitFees": list(bill.transit_fees),
        }
        deal = {}
        for name in DEAL_FIELDS:
            value = args[name] if name in args else known[name]
            deal[name] = list(value) if isinstance(value, tuple | list) else value
        status, deadline = (
            (int(args["status"]), int(args["deadline"]))
            if "status" in args
            else tuple(int(x) for x in self.market.functions.statusOf(known["id"]).call())
        )
        gbps = self._gbps(plan.order)
        d = DealState(
            plan.id,
            plan,
            node,
            deal,
            bytes(args["packed"]),
            STATUS[status],
            deadline,
            valueless,
            bill.total,
            dict(zip(bill.transit_operators, bill.transit_fees, strict=True)),
            float(path.latency_ms),
            list(path.router_indices),
            gbps,
        )
        bound = float(plan.order["maxLatencyMs"])
        d.sla_met = None if not bound else d.latency_ms <= bound
        try:
            d.reservation = self.network.reserve(path, gbps)
        except InfeasibleError:
            d.reservation = None
            self.counts["lease_unreserved"] += 1
        self.deals[d.id] = d
        self.counts["valueless" if valueless else "valued"] += 1

    def _transition(self, party: str, function: str, d: DealState, *args: Any) -> Any:
        call = getattr(self.market.functions, function)(bytes.fromhex(d.id[2:]), d.packed, *args)
        receipt = self.tx(party, function, call)
        changed = False
        for e in self.market.events.DealStatusChanged().process_receipt(receipt, errors=DISCARD):
            if "0x" + bytes(e["args"]["id"]).hex() == d.id:
                d.status, d.deadline = STATUS[int(e["args"]["status"])], int(e["args"]["deadline"])
                changed = True
        # Completed and Settled announce their status themselves (no DealStatusChanged for them); a payout
        # after a ruling for the buyer comes with a DealStatusChanged to Refunded, which stands.
        for e in self.market.events.Completed().process_receipt(receipt, errors=DISCARD):
            if "0x" + bytes(e["args"]["id"]).hex() == d.id:
                d.status, d.deadline = "completed", int(e["args"]["deadline"])
        for e in self.market.events.Disputed().process_receipt(receipt, errors=DISCARD):
            if "0x" + bytes(e["args"]["id"]).hex() == d.id:
                d.bond = int(e["args"]["bond"])
        for e in self.market.events.Settled().process_receipt(receipt, errors=DISCARD):
            if "0x" + bytes(e["args"]["id"]).hex() == d.id:
                if not changed:
                    d.status, d.deadline = "settled", 0
                d.compute_paid, d.platform_paid = int(e["args"]["computeFee"]), int(e["args"]["platformFee"])
                d.transit_paid, d.bond = int(e["args"]["transitTotal"]) > 0, 0
        if function in ("timeout", "resolve") and self.market.events.Slashed().process_receipt(receipt, errors=DISCARD):
            d.slashed = True
            self._top_up(d.node.owner)
        return receipt

    def _top_up(self, owner: str) -> None:
        """A slashed seller restores the stake its nodes require (otherwise the market refuses every
        further match on its nodes with InsufficientStake)."""
        party = self.parties[owner]
        market, token = self.market, self.c["SettlementToken"]
        short = STAKE_HEADROOM * int(market.functions.requiredStakeOf(party.address).call()) - int(
            market.functions.stakeOf(party.address).call()
        )
        if short <= 0 or self.stage < 2:
            return
        escrow = int(market.functions.balanceOf(party.address).call())
        if escrow < short:
            self.tx(owner, "approve", token.functions.approve(market.address, short - escrow))
            self.tx(owner, "deposit", market.functions.deposit(short - escrow))
        self.tx(owner, "stake", market.functions.stake(short))
        self.counts["stake_top_ups"] += 1
        self.note(f"{owner} topped its stake up by {short / TOKEN:g} tokens after a slash")

    def _end(self, d: DealState) -> None:
        """The deal no longer holds capacity or bandwidth (completed or final)."""
        if d.id in self.engine.reservations:
            self.engine.release(d.id)
        if d.reservation is not None:
            self.network.release(d.reservation)
            d.reservation = None

    def _lifecycle(self, chain_now: int) -> None:
        open_deals = [d for d in self.deals.values() if d.status not in FINAL]
        # timeouts (the matcher calls them; anyone may)
        for d in open_deals:
            if d.status in ("proposed", "accepted", "started", "disputed") and chain_now > d.deadline:
                before = d.status
                self._transition(self.founder.name, "timeout", d)
                self.counts["timed_out"] += 1
                self._end(d)
                self.note(
                    f"deal {d.id[:10]} on {d.node.label} timed out from {before}"
                    + (" (seller slashed)" if d.slashed else "")
                )
        # arbitration: by the arbiter the chain drew for the deal (none yet until a block after the dispute;
        # none at all when no ARBITER member is eligible, and then the dispute times out split in half)
        for d in open_deals:
            if d.status == "disputed" and d.dispute is not None:
                _named, seller_wins = d.dispute
                drawn = str(self.market.functions.arbiterOf(bytes.fromhex(d.id[2:]), d.packed).call())
                arbiter = self.by_address.get(drawn)
                if arbiter is None:
                    continue
                self._transition(arbiter, "resolve", d, seller_wins)
                self.counts["resolved"] += 1
                self.note(
                    f"{arbiter} (drawn) resolved the dispute on {d.id[:10]}: "
                    + ("seller wins, paid, and the buyer's bond" if seller_wins else "buyer wins, compute refunded")
                )
        # settlement or disputes
        for d in open_deals:
            if d.status != "completed":
                continue
            queue = self.pending_disputes.get(d.plan.buyer)
            if (
                queue
                and not d.valueless
                and self.parties[queue[0][0]].address not in (d.deal["buyer"], d.deal["seller"])
            ):
                arbiter, seller_wins, _ = queue.pop(0)
                d.dispute = (arbiter, seller_wins)
                self._transition(d.plan.buyer, "dispute", d)
                self.counts["disputes"] += 1
                self.note(f"{d.plan.buyer} disputed deal {d.id[:10]} on {d.node.label}")
            else:
                self._transition(d.plan.buyer, "settle", d)
        # completion
        for d in open_deals:
            if (
                d.status == "started"
                and not d.node.failed
                and d.started_at is not None
                and chain_now >= d.started_at + int(d.deal["duration"])
            ):
                self._transition(d.node.owner, "complete", d, result_cid(d.id))
                self._end(d)

    def _start_accepted(self, chain_now: int) -> None:
        for d in self.deals.values():
            if d.status == "accepted" and not d.node.failed:
                self._transition(d.node.owner, "start", d)
                d.started_at = chain_now

    # ------------------------------------------------------------------ events
    def _apply(self, kind: str, args: dict[str, Any]) -> None:
        fed = self.c["Federation"]
        if kind == "stage":
            self.tx(self.founder.name, "advanceStage", fed.functions.advanceStage(args["stage"]))
            self.stage = args["stage"]
            self.epoch = int(fed.functions.epoch().call())  # orders signed from now on name the new epoch
            self.note(f"the federation moved to stage {self.stage}")
            self._refresh_engine()
        elif kind == "admit":
            self._admit(args["party"])
            self._publish_tariffs()
        elif kind == "vote":
            self._vote(args["candidate"], args["proposer"], args["voters"])
            self._publish_tariffs()
        elif kind == "node_failure":
            mine = [n for n in self.nodes if n.owner == args["owner"] and n.registered and not n.failed]
            if not mine:
                raise ReplayError(f"node_failure: {args['owner']} has no registered working node")
            busy = Counter(d.node.label for d in self.deals.values() if d.status not in FINAL)
            node = (
                mine[args["index"]]
                if args["index"] < len(mine) and args["index"]
                else max(mine, key=lambda n: (busy[n.label], -n.node_id))
            )
            node.failed = True
            self.engine.remove_node(node.node_id)
            self.counts["failed_nodes"] += 1
            self.note(
                f"node {node.label} (id {node.node_id}) of {node.owner} failed with {busy[node.label]} open "
                "deal(s); they will time out and the seller is slashed"
            )
        elif kind == "link_failure":
            self._fail_link(args["a"], args["b"])
        elif kind == "dispute":
            for _ in range(args["count"]):
                self.pending_disputes[args["buyer"]].append((args["arbiter"], args["seller_wins"], self.now))

    def _fail_link(self, a: str, b: str) -> None:
        ia, ib = self.network.router_index(a), self.network.router_index(b)
        names = (self.network.routers[ia].name, self.network.routers[ib].name)
        if not any({ln.a, ln.b} == {ia, ib} for ln in self.network.links):
            raise ReplayError(f"link_failure: no link between {names[0]} and {names[1]}")
        live = [d for d in self.deals.values() if d.reservation is not None]
        for d in live:
            self.network.release(d.reservation)  # type: ignore[arg-type]
            d.reservation = None
        self.failed_links.append(names)
        self.network = self._build_network()
        self.engine.network = RoutedCost(self.network)
        self.engine.network_changed()
        self._transit_cache.clear()
        rerouted = 0
        for d in live:
            crosses = any({d.path[i], d.path[i + 1]} == {ia, ib} for i in range(len(d.path) - 1))
            if crosses:
                try:
                    path = self.network.path(d.path[0], d.path[-1], min_bandwidth_gbps=d.gbps, srv6=False)
                except InfeasibleError:
                    self.counts["lease_lost"] += 1
                    continue
                before = d.latency_ms
                d.path, d.latency_ms, d.rerouted = list(path.router_indices), float(path.latency_ms), True
                bound = float(d.plan.order["maxLatencyMs"])
                d.sla_met = None if not bound else d.latency_ms <= bound
                rerouted += 1
                if rerouted <= 3:
                    self.note(
                        f"lease of {d.id[:10]} re-routed: {before:.1f} -> {d.latency_ms:.1f} ms over "
                        f"{' > '.join(self.network.routers[i].name for i in d.path)}"
                    )
            else:
                path = self.network.make_path(d.path, srv6=False)
            try:
                d.reservation = self.network.reserve(path, d.gbps)
            except InfeasibleError:
                self.counts["lease_lost"] += 1
        self.counts["rerouted"] += rerouted
        self.note(
            f"link {names[0]} - {names[1]} failed; {rerouted} lease(s) re-routed, "
            f"{len(live) - rerouted} kept their path"
        )

    # ------------------------------------------------------------------ the run
    def setup(self) -> None:
        """Mints, funds, admits the start members and registers their nodes (before the 'before' snapshot)."""
        token, market = self.c["SettlementToken"], self.market
        for p in self.parties.values():
            fund_gas(self.w3, p.address)
            spec = self.s.party(p.name)
            if spec.tokens:
                self.tx(self.founder.name, "mint", token.functions.mint(p.address, spec.tokens))
        fed = self.c["Federation"]
        for name, address in self.extra_accounts.items():
            if int(fed.functions.rolesOf(address).call()):
                # The deployment's demo members are not in the scenario: they leave, so that the
                # federation (and every operators' vote) has only the scenario's parties.
                self.tx(self.founder.name, "remove", fed.functions.remove(address))
                self.note(f"{name} removed from the federation (not in the scenario)")
        start = [spec.name for spec in self.s.parties if spec.admitted == "start"]
        for name in start:
            self._admit(name, register=False)
        self._publish_tariffs()
        for name in start:
            self._register_nodes(name)
        for spec in self.s.parties:
            if spec.deposit:
                self.tx(spec.name, "approve", token.functions.approve(market.address, spec.deposit))
                self.tx(spec.name, "deposit", market.functions.deposit(spec.deposit))

    def sample(self) -> None:
        cap = self.engine.state.capacity.sum()
        util = float(self.engine.state.reserved.sum() / cap) if cap else 0.0
        reserved = sum(d.gbps * max(1, len(d.path) - 1) for d in self.deals.values() if d.reservation is not None)
        self.samples.append(
            Sample(
                self.now,
                self.holdings(),
                self.counts["submitted"],
                self.counts["matched"],
                util,
                reserved,
                sum(1 for d in self.deals.values() if d.status not in FINAL),
            )
        )

    def run(self) -> ReplayResult:
        started = time.perf_counter()
        self._plan_by_id: dict[str, Plan] = {}
        latest = int(self.w3.eth.get_block("latest")["timestamp"])
        epoch = self.s.epoch if self.s.epoch > latest else (latest // 86400 + 2) * 86400
        if epoch != self.s.epoch:
            self.log.append(f"chain time is past the scenario's epoch; starting at {epoch} instead (order ids differ)")
        # Each block one second after the last, whatever the wall clock does: fees are prorated by the
        # seconds a deal ran, so a replay is deterministic only if block times are.
        rpc(self.w3, "anvil_setBlockTimestampInterval", [1])
        set_time(self.w3, epoch)
        self.setup()
        self._node_by_id = {n.node_id: n for n in self.nodes if n.registered}
        start_block = int(self.w3.eth.block_number)
        before_tokens = self.token_balances()
        supply_before = int(self.c["SettlementToken"].functions.totalSupply().call())
        self.sample()
        events = list(self.s.events)
        next_plan = 0
        last_arrival = max((p.at for p in self.plans), default=0)
        last_event = max((e.at for e in events), default=0)
        rounds = math.ceil((max(last_arrival, last_event) + 4 * 3600) / self.s.step) + 1
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(self.plans), desc=f"replay {self.s.name}", unit="order", leave=False)
        t = 0
        while True:
            self.now = t
            chain_now = set_time(self.w3, epoch + t)
            while events and events[0].at <= t:
                e = events.pop(0)
                self._apply(e.kind, e.args)
                self._node_by_id = {n.node_id: n for n in self.nodes if n.registered}
            self._lifecycle(chain_now)
            arrivals = []
            while next_plan < len(self.plans) and self.plans[next_plan].at < t + self.s.step:
                arrivals.append(self.plans[next_plan])
                next_plan += 1
            self._match_round(arrivals, chain_now)
            self._start_accepted(chain_now)
            if bar is not None:
                bar.update(len(arrivals))
            self.sample()
            open_deals = any(d.status not in FINAL for d in self.deals.values())
            if next_plan >= len(self.plans) and not events and not open_deals:
                break
            if t > max(self.s.max_time, rounds * self.s.step):
                self.log.append(f"stopped at t={t} s with deals still open (max_time)")
                break
            t += self.s.step
        if bar is not None:
            bar.close()
        end_block = int(self.w3.eth.block_number)
        rpc(self.w3, "anvil_removeBlockTimestampInterval", [])
        after_tokens = self.token_balances()
        supply_after = int(self.c["SettlementToken"].functions.totalSupply().call())
        conservation = self._conservation(before_tokens, after_tokens, supply_before, supply_after)
        result = ReplayResult(
            scenario=self.s,
            figures={},
            samples=self.samples,
            gas=dict(self.gas),
            deals=list(self.deals.values()),
            plans=self.plans,
            log=self.log,
            conservation=conservation,
            before=self.samples[0].holdings,
            after=self.samples[-1].holdings,
            start_block=start_block,
            end_block=end_block,
            addresses={n: p.address for n, p in self.parties.items()},
            contracts=dict(self.addresses),
            seconds=time.perf_counter() - started,
        )
        result.figures = self.figures(result)
        result.outcomes = [
            (e.text(), f"{self.s.path}:{e.line}", result.figures.get(e.key), e.holds(result.figures.get(e.key, 0)))
            for e in self.s.expect
        ]
        return result

    # ------------------------------------------------------------------ checks and figures
    def _conservation(
        self, before: dict[str, int], after: dict[str, int], supply_before: int, supply_after: int
    ) -> dict[str, Any]:
        market = self.market
        holders = [p.address for p in self.parties.values()] + list(self.extra_accounts.values())
        credits = sum(int(market.functions.balanceOf(a).call()) for a in holders)
        stakes = sum(int(market.functions.stakeOf(a).call()) for a in holders)
        fees = int(market.functions.platformFees().call())
        # Open valued deals hold the buyer's bill and bond and the seller's stake lock (its compute fee).
        open_valued = [d for d in self.deals.values() if d.status not in FINAL and not d.valueless]
        locked = sum(d.total + d.bond + int(d.deal["computeFee"]) for d in open_valued)
        escrow_tokens = after["Market (escrow)"]
        checks = {
            "sum of balances before == after": (sum(before.values()), sum(after.values())),
            "total supply before == after": (supply_before, supply_after),
            "sum of balances == total supply": (sum(after.values()), supply_after),
            "escrow: credits + unlocked stakes + fees + locked (bills, bonds, stake locks) == market's token balance": (
                credits + stakes + fees + locked,
                escrow_tokens,
            ),
        }
        return {
            "checks": {k: {"left": str(a), "right": str(b), "ok": a == b} for k, (a, b) in checks.items()},
            "ok": all(a == b for a, b in checks.values()),
            "credits": str(credits),
            "stakes": str(stakes),
            "platform_fees": str(fees),
            "locked": str(locked),
            "before": {k: str(v) for k, v in before.items()},
            "after": {k: str(v) for k, v in after.items()},
        }

    def figures(self, r: ReplayResult) -> dict[str, Any]:
        deals = r.deals
        fed = self.c["Federation"]
        settled = [d for d in deals if d.status == "settled"]
        transit: dict[str, int] = defaultdict(int)
        for d in deals:  # paid out (settled, or refunded by a ruling for the buyer: transit is paid then too)
            if not d.valueless and d.transit_paid:
                for addr, fee in d.transit.items():
                    transit[self.by_address.get(addr, addr)] += fee
        internal = [
            d
            for d in settled
            if not d.valueless and self.parties[d.plan.buyer].internal and self.parties[d.node.owner].internal
        ]
        bounded = [d for d in deals if d.sla_met is not None]
        operators = sum(1 for p in self.parties.values() if int(fed.functions.rolesOf(p.address).call()) & OPERATOR)
        submitted = self.counts["submitted"]
        moved = sum(abs(r.after[n] - r.before[n]) for n in r.before)
        return {
            "stage": int(fed.functions.stage().call()),
            "operators": operators,
            "members_admitted_by_vote": self.counts["admitted_by_vote"],
            "orders": submitted,
            "matched": self.counts["matched"],
            "match_rate": round(self.counts["matched"] / submitted, 4) if submitted else 0.0,
            "settled": len(settled),
            "refunded": sum(1 for d in deals if d.status == "refunded"),
            "slashed": sum(1 for d in deals if d.slashed),
            "disputes": self.counts["disputes"],
            "rerouted": self.counts["rerouted"],
            "sla_compliance": round(sum(1 for d in bounded if d.sla_met) / len(bounded), 4) if bounded else 1.0,
            "valueless_deals": self.counts["valueless"],
            "valued_deals": self.counts["valued"],
            "value_moved": moved / TOKEN,
            "transit_operators_paid": sum(1 for v in transit.values() if v),
            "transit_revenue": {k: str(v) for k, v in sorted(transit.items())},
            "internal_settled": len(internal),
            "open_deals": sum(1 for d in deals if d.status not in FINAL),
            "conservation": bool(r.conservation["ok"]),
            "platform_fees_accrued": str(sum(d.platform_paid for d in deals if not d.valueless)),
            "compute_paid": str(sum(d.compute_paid for d in deals if not d.valueless)),
            "timed_out": self.counts["timed_out"],
            "failed_nodes": self.counts["failed_nodes"],
            "nodes": sum(1 for n in self.nodes if n.registered),
            "final_holdings": {k: str(v) for k, v in r.after.items()},
            "unmatched_reasons": dict(
                Counter(_first_sentence(p.reason) for p in r.plans if p.outcome == "unmatched").most_common(6)
            ),
        }


def _first_sentence(text: str) -> str:
    return (text.split(";")[0].split(". ")[0])[:120]
