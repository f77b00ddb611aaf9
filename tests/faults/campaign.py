"""Issue 9's randomized fault campaign: one run per seed, each a real market under a storm of faults.

A run: a fresh stage-3 chain (real Anvil, the deployed contracts), a staked provider whose chain node
runs its jobs on the real one-host Slurm cluster, a funded buyer, and the service (`suanwang serve`, a
child process) reaching the chain through a TCP proxy and its content through a Kubo RPC server behind
another proxy. While faults strike, blocks come from the harness's producer every 0.25 s (Anvil's automine
off), which a reorg or rollback never races (Stack.block_lock: Anvil loses blocks when they do). The buyer
posts 20 to 24 signed orders at once; some jobs are planned to fail. While they are in flight the plan's
faults strike at their planned times:

  reorg / rollback   `anvil_reorg` (blocks replaced) or `anvil_rollback` (blocks dropped), shallower or
                     deeper than the indexer's confirmation depth; the dropped transactions are either
                     sent again (as a real node's mempool would) or lost for good
  rpc_outage         the chain's RPC proxy cut, then restored
  ipfs_outage        the Kubo proxy cut, then restored
  service_kill       SIGKILL, then a restart on the same database, executor state and content
  slurm_job_kill     `scancel` of one pending or running job (the executor sees it cancelled)
  slurm_node_down    a Slurm node set DOWN (its running jobs fail), then resumed

Then everything is healed and the run drains: when nothing moves, chain time is moved past the open
deals' deadlines so the timeouts the contract provides can end them. The checks, against the chain:
the database's event index equals the chain's logs up to head minus the confirmation depth, and its
deals and settlements equal the chain's; no (tx, log index) stored twice; no deal settled or refunded
twice or not at all, and the buyer's and provider's balances moved by exactly what those settlements
say; every order final (unmatched and never matched on chain, or its deal settled or refunded).

The plan (orders, job outcomes, faults and their times) is a pure function of the seed, so a failing
seed replays the same storm; how it interleaves with the service's own timing is up to the machine.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hexbytes import HexBytes
from sqlalchemy import func, select

from suanwang.devstack import ApiServer, StackError, free_port, rpc
from suanwang.storage.db import make_engine, make_sessionmaker
from suanwang.storage.models import ChainCursor, Deal, Event, Job, OrderRecord, Settlement
from suanwang.storage.projections import DEAL_STATUS_NAMES, FINAL_DEAL_STATUSES
from tests.backend.content.fake_kubo import FakeKubo, serve
from tests.backend.lifecycle.conftest import prepare_market
from tests.backend.lifecycle.test_restarts import server, signed_order
from tests.faults.proxy import TcpProxy
from tests.support.slurm import NODES, SlurmCluster
from tests.support.stack import Chain, Deployments

CHAIN_FAULTS = ("reorg", "rollback")
OTHER_FAULTS = ("rpc_outage", "ipfs_outage", "service_kill", "slurm_job_kill", "slurm_node_down")
KINDS = CHAIN_FAULTS + OTHER_FAULTS
# The provider's chain node is backed by the whole cluster (no node map): Slurm places each job.
SLURM_NODES = tuple(spec.split(":")[0] for spec in NODES)
CHAOS_S = 6.0  # faults strike within this many seconds of the orders' submission
MINE_EVERY_S = 0.25  # a block producer: confirmations need blocks after the last transaction
STALL_S = 3.0  # nothing moved this long while draining: move chain time past the open deadlines
DRAIN_TIMEOUT_S = 150.0
START_ATTEMPTS = 3  # `suanwang serve` may take more than ApiServer's 30 s to answer on a loaded machine
SETUP_BLOCKS = 5  # blocks mined over the market's set-up, so no reorg reaches it


@dataclass(frozen=True)
class Fault:
    at_s: float
    kind: str
    hold_s: float = 0.0  # how long an outage lasts / a killed service stays down
    depth: int = 0  # reorgs and rollbacks
    resend: bool = False  # reorgs and rollbacks: the dropped transactions are sent again
    pick: float = 0.0  # which running job a job kill hits (a fraction of the list)


@dataclass(frozen=True)
class Plan:
    seed: int
    confirmations: int
    job_seconds: tuple[float, ...]  # one job per order: how long it runs
    job_exit: tuple[int, ...]  # and its exit code (non-zero: a Slurm job failure)
    faults: tuple[Fault, ...]

    @property
    def orders(self) -> int:
        return len(self.job_seconds)


def plan_run(seed: int) -> Plan:
    """Everything random about a run, from its seed alone."""
    rng = random.Random(seed)
    confirmations = rng.randint(1, 3)
    orders = rng.randint(20, 24)
    job_seconds = tuple(round(rng.uniform(0.05, 0.4), 2) for _ in range(orders))
    job_exit = tuple(3 if rng.random() < 0.12 else 0 for _ in range(orders))
    faults = []
    for number in range(rng.randint(4, 7)):
        kind = rng.choice(CHAIN_FAULTS) if number == 0 else rng.choice(KINDS)  # a chain fault in every run
        deep = rng.random() < 0.5
        faults.append(
            Fault(
                at_s=round(rng.uniform(0.2, CHAOS_S), 2),
                kind=kind,
                hold_s=round(rng.uniform(0.3, 2.5), 2),
                depth=rng.randint(confirmations + 1, confirmations + 3) if deep else rng.randint(1, confirmations),
                resend=rng.random() < 0.5,
                pick=rng.random(),
            )
        )
    return Plan(seed, confirmations, job_seconds, job_exit, tuple(sorted(faults, key=lambda f: f.at_s)))


def fault_label(fault: Fault, confirmations: int) -> str:
    """The kind as counted: chain faults split by depth against the confirmation depth."""
    if fault.kind in CHAIN_FAULTS:
        return f"{fault.kind}_{'deep' if fault.depth > confirmations else 'shallow'}"
    return fault.kind


@dataclass
class RunReport:
    seed: int
    orders: int = 0
    planned_job_failures: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    checks: dict[str, bool] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    refund_causes: Counter[str] = field(default_factory=Counter)
    warps: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)  # how the drain went: stages over time

    def lap(self, phase: str, since: float) -> float:
        now = time.monotonic()
        self.phases[phase] = round(now - since, 1)
        return now

    def check(self, name: str, problems: list[str]) -> None:
        self.checks[name] = not problems
        self.failures += [f"{name}: {p}" for p in problems[:5]]

    @property
    def passed(self) -> bool:
        return all(self.checks.values()) and not self.failures


class Stack:
    """The service and the parts it depends on, each of which the campaign can break and mend."""

    def __init__(self, chain: Chain, cluster: SlurmCluster, folder: Path, marketplace: Path, confirmations: int):
        self.chain, self.cluster, self.folder = chain, cluster, folder
        self.rpc_proxy = TcpProxy(chain.anvil.port).start()
        self._kubo_cm = contextlib.contextmanager(serve)(FakeKubo())
        kubo = self._kubo_cm.__enter__()
        self.kubo_proxy = TcpProxy(int(kubo.url.rsplit(":", 1)[1])).start()
        self._template = server(chain, folder, marketplace)
        self._template.env.update(
            SUANWANG_RPC_URL=self.rpc_proxy.url,
            SUANWANG_IPFS_API_URL=self.kubo_proxy.url,
            SUANWANG_CONFIRMATIONS=str(confirmations),
            SUANWANG_EXECUTOR="slurm",
            SUANWANG_SLURM_CONF=str(cluster.slurm_conf),
        )
        self.service: ApiServer | None = None
        self._mining = threading.Event()
        self._miner = threading.Thread(target=self._mine, name="fault-miner", daemon=True)
        # Anvil (1.7.1) loses blocks for good when anvil_reorg or anvil_rollback runs while it mines one
        # (eth_getBlockByNumber then returns null for a number below the head: measured, a hole in a few
        # hundred rollbacks raced with evm_mine, none when they take turns). A real node's reorg is atomic,
        # so while faults are injected the blocks come only from this producer, under this lock, which a
        # reorg or rollback holds too: the service's transactions wait in the mempool for the next block.
        self.block_lock = threading.Lock()

    # -- the service ----------------------------------------------------------------------------------
    def start_service(self) -> None:
        # Each start takes a fresh port: a killed process's port may linger.
        for attempt in range(START_ATTEMPTS):
            service = ApiServer(free_port(), dict(self._template.env))
            try:
                self.service = service.start()
                return
            except StackError:
                service.stop()  # a start that did not answer in time is never left running
                if attempt == START_ATTEMPTS - 1:
                    raise

    def kill_service(self) -> None:
        assert self.service is not None and self.service.process is not None
        self.service.process.send_signal(signal.SIGKILL)
        self.service.process.wait()
        self.service = None

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    @property
    def url(self) -> str:
        assert self.service is not None
        return self.service.url

    # -- blocks ---------------------------------------------------------------------------------------
    def start_mining(self) -> None:
        rpc(self.chain.anvil.url, "evm_setAutomine", [False])
        self._mining.set()
        if not self._miner.is_alive():
            self._miner.start()

    def stop_mining(self) -> None:
        self._mining.clear()
        with self.block_lock:  # the producer's last block is done: a transaction mines itself again
            rpc(self.chain.anvil.url, "evm_setAutomine", [True])

    def _mine(self) -> None:
        while True:
            self._mining.wait()
            with self.block_lock, contextlib.suppress(Exception):
                if self._mining.is_set():
                    rpc(self.chain.anvil.url, "evm_mine")
            time.sleep(MINE_EVERY_S)

    # -- Slurm ----------------------------------------------------------------------------------------
    def slurm(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            env={**os.environ, "SLURM_CONF": str(self.cluster.slurm_conf)},
            capture_output=True,
            text=True,
            timeout=30,
        )

    def live_jobs(self) -> list[str]:
        """The cluster's pending and running jobs."""
        return sorted(self.slurm("squeue", "-h", "-t", "PD,R", "-o", "%i").stdout.split(), key=int)

    def close(self) -> None:
        self.stop_mining()
        self.stop_service()
        self.slurm("scancel", "--full", "--user=root")
        for node in SLURM_NODES:
            self.slurm("scontrol", "update", f"nodename={node}", "state=resume")
        self.rpc_proxy.stop()
        self.kubo_proxy.stop()
        self._kubo_cm.__exit__(None, None, None)


class Injector:
    """Applies a plan's faults to a stack and heals them; counts what it actually did."""

    def __init__(self, stack: Stack, plan: Plan, floor_block: int, report: RunReport) -> None:
        self.stack, self.plan, self.floor, self.report = stack, plan, floor_block, report
        self.broken: set[str] = set()  # resources now down: a second fault on them is skipped
        self._restart: threading.Thread | None = None
        self._restart_error: Exception | None = None

    def run(self, started: float) -> None:
        """Faults at their planned times, each healed after its hold; returns with everything healed."""
        events: list[tuple[float, int, str, Fault]] = []
        for index, fault in enumerate(self.plan.faults):
            events.append((fault.at_s, index, "apply", fault))
        events.sort(key=lambda e: (e[0], e[1]))
        heals: list[tuple[float, int, Fault]] = []
        while events or heals:
            next_apply = events[0][0] if events else float("inf")
            next_heal = min(heals, key=lambda h: h[0])[0] if heals else float("inf")
            at = min(next_apply, next_heal)
            delay = started + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if next_heal <= next_apply:
                heal = min(heals, key=lambda h: h[0])
                heals.remove(heal)
                self.heal(heal[2])
                continue
            _, index, _, fault = events.pop(0)
            if self.apply(fault):
                self.report.faults[fault_label(fault, self.plan.confirmations)] += 1
                if fault.kind in ("rpc_outage", "ipfs_outage", "service_kill", "slurm_node_down"):
                    heals.append((fault.at_s + fault.hold_s, index, fault))
        self.wait_for_restart()

    def apply(self, fault: Fault) -> bool:
        stack = self.stack
        if fault.kind in CHAIN_FAULTS:
            return self._reorg(fault)
        if fault.kind in self.broken:
            return False
        if fault.kind == "rpc_outage":
            stack.rpc_proxy.cut()
        elif fault.kind == "ipfs_outage":
            stack.kubo_proxy.cut()
        elif fault.kind == "service_kill":
            stack.kill_service()
        elif fault.kind == "slurm_node_down":
            node = self.node_of(fault)
            down = stack.slurm("scontrol", "update", f"nodename={node}", "state=down", "reason=fault-campaign")
            if down.returncode != 0:
                raise RuntimeError(f"could not set {node} down: {down.stderr}")
        elif fault.kind == "slurm_job_kill":
            live = stack.live_jobs()
            if not live:
                return False
            stack.slurm("scancel", live[int(fault.pick * len(live))])
            return True
        self.broken.add(fault.kind)
        return True

    def heal(self, fault: Fault) -> None:
        stack = self.stack
        if fault.kind == "rpc_outage":
            stack.rpc_proxy.restore()
        elif fault.kind == "ipfs_outage":
            stack.kubo_proxy.restore()
        elif fault.kind == "service_kill":
            # In the background: the service may not answer until the chain is back, and the heal of an
            # RPC outage planned meanwhile must not wait behind the restart.
            self._restart = threading.Thread(target=self._restart_service, name="fault-restart", daemon=True)
            self._restart.start()
            return  # still broken until the restart is done
        elif fault.kind == "slurm_node_down":
            stack.slurm("scontrol", "update", f"nodename={self.node_of(fault)}", "state=resume")
        self.broken.discard(fault.kind)

    def _restart_service(self) -> None:
        try:
            self.stack.start_service()
        except Exception as exc:
            self._restart_error = exc
        finally:
            self.broken.discard("service_kill")

    def wait_for_restart(self) -> None:
        if self._restart is not None:
            self._restart.join()
        if self._restart_error is not None:
            raise self._restart_error

    @staticmethod
    def node_of(fault: Fault) -> str:
        return SLURM_NODES[int(fault.pick * len(SLURM_NODES))]

    def _reorg(self, fault: Fault) -> bool:
        with self.stack.block_lock:  # never while a block is mined (Stack.block_lock)
            return self._reorg_now(fault)

    def _reorg_now(self, fault: Fault) -> bool:
        url = self.stack.chain.anvil.url
        w3 = self.stack.chain.w3
        head = w3.eth.block_number
        depth = min(fault.depth, head - self.floor)
        if depth < 1 or (fault.depth > self.plan.confirmations) != (depth > self.plan.confirmations):
            return False  # too close to the set-up blocks for this depth
        dropped: list[str] = []
        if fault.resend:
            for number in range(head - depth + 1, head + 1):
                for tx_hash in w3.eth.get_block(number)["transactions"]:
                    raw = rpc(url, "eth_getRawTransactionByHash", [HexBytes(tx_hash).to_0x_hex()])
                    dropped.append(str(raw))
        if fault.kind == "reorg":
            rpc(url, "anvil_reorg", [depth, []])
        else:
            rpc(url, "anvil_rollback", [depth])
        for raw in dropped:  # as a node returns the transactions of dropped blocks to its mempool
            with contextlib.suppress(Exception):
                rpc(url, "eth_sendRawTransaction", [raw])
        return True


# -- the run ----------------------------------------------------------------------------------------------
def run_one(seed: int, deployments: Deployments, cluster: SlurmCluster, folder: Path) -> RunReport:
    plan = plan_run(seed)
    report = RunReport(seed, orders=plan.orders, planned_job_failures=sum(1 for code in plan.job_exit if code))
    began = lap = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    with deployments.chain(3) as chain:
        provider, buyer, _transit, _node, marketplace = prepare_market(chain, folder)
        stack = Stack(chain, cluster, folder, marketplace, plan.confirmations)
        try:
            rpc(chain.anvil.url, "anvil_mine", [hex(SETUP_BLOCKS)])
            floor = chain.w3.eth.block_number
            before = Balances.read(chain, provider.address, buyer.address)
            lap = report.lap("setup", began)
            stack.start_service()
            stack.start_mining()
            lap = report.lap("service_start", lap)
            order_ids = submit_orders(stack, chain, buyer, plan)
            Injector(stack, plan, floor, report).run(time.monotonic())
            if stack.service is None:
                stack.start_service()
            lap = report.lap("chaos", lap)
            report.warps = drain(stack, chain, order_ids, report)
            lap = report.lap("drain", lap)
            head = settle_index(stack, chain, plan.confirmations, report)
            stack.stop_service()
            lap = report.lap("index", lap)
            check_run(chain, folder, head - plan.confirmations, order_ids, before, provider, buyer, report)
            lap = report.lap("checks", lap)
        finally:
            stack.close()
            report.lap("teardown", lap)
    report.seconds = round(time.monotonic() - began, 1)
    return report


def submit_orders(stack: Stack, chain: Chain, buyer: Any, plan: Plan) -> list[str]:
    bodies = []
    for index, (seconds, exit_code) in enumerate(zip(plan.job_seconds, plan.job_exit, strict=True)):
        command = ["sh", "-c", f"sleep {seconds}; echo order {index}; exit {exit_code}"]
        body = signed_order(chain, buyer, nonce=plan.seed * 1000 + index, command=command)  # the job is signed
        bodies.append(body)
    response = httpx.post(stack.url + "/api/orders/batch", json={"orders": bodies}, timeout=60)
    response.raise_for_status()
    results = response.json()["results"]
    errors = [r["error"] for r in results if r["error"]]
    if errors:
        raise RuntimeError(f"orders refused: {errors[:3]}")
    return [r["id"] for r in results]


def stage_of(order: dict[str, Any]) -> str:
    return (order.get("deal") or {}).get("status") or order["state"]


def is_final(order: dict[str, Any]) -> bool:
    return order["state"] == "unmatched" or stage_of(order) in FINAL_DEAL_STATUSES


def drain(stack: Stack, chain: Chain, order_ids: list[str], report: RunReport) -> int:
    """Waits until every order is final; when nothing moves for STALL_S, moves chain time past the
    deadlines of the open deals (the contract's timeouts end what no one will finish). Returns the
    number of such moves."""
    warps = 0
    began = time.monotonic()
    deadline = began + DRAIN_TIMEOUT_S
    last: list[str] = []
    last_change = time.monotonic()
    wanted = set(order_ids)
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        while True:
            # One request for all the orders: polling each would run into the API's rate limit.
            page = client.get("/api/orders", params={"limit": 500})
            page.raise_for_status()
            orders = [o for o in page.json()["items"] if o["id"] in wanted]
            if all(is_final(o) for o in orders):
                return warps
            stages = [stage_of(o) for o in orders]
            if stages != last:
                last, last_change = stages, time.monotonic()
                report.trace.append(f"{time.monotonic() - began:5.1f} s {dict(Counter(stages))}")
            elif time.monotonic() - last_change > STALL_S:
                open_deadlines = [int(o["deal"]["deadline"]) for o in orders if o.get("deal") and not is_final(o)]
                chain_time = int(chain.w3.eth.get_block("latest")["timestamp"])
                if open_deadlines and max(open_deadlines) >= chain_time:
                    rpc(chain.anvil.url, "evm_increaseTime", [max(open_deadlines) + 10 - chain_time])
                    rpc(chain.anvil.url, "evm_mine")
                    warps += 1
                    report.trace.append(f"{time.monotonic() - began:5.1f} s chain time moved past the deadlines")
                last_change = time.monotonic()
            if time.monotonic() > deadline:
                stuck = Counter(stage_of(o) for o in orders if not is_final(o))
                report.failures.append(f"drain: orders still open after {DRAIN_TIMEOUT_S:.0f} s: {dict(stuck)}")
                return warps
            time.sleep(0.3)


def settle_index(stack: Stack, chain: Chain, confirmations: int, report: RunReport) -> int:
    """Stops block production, confirms every block, and waits for the index to reach head minus the
    confirmation depth. Returns the head."""
    stack.stop_mining()
    time.sleep(MINE_EVERY_S * 2)
    rpc(chain.anvil.url, "anvil_mine", [hex(confirmations + 1)])
    head = chain.w3.eth.block_number
    deadline = time.monotonic() + 60
    indexed = None
    while time.monotonic() < deadline:
        indexed = httpx.get(stack.url + "/health", timeout=30).json().get("indexed_block")
        if indexed == head - confirmations:
            return head
        time.sleep(0.2)
    report.failures.append(f"index: cursor at {indexed}, never reached head {head} - {confirmations}")
    return head


# -- the checks -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Balances:
    buyer_escrow: int
    provider_escrow: int
    provider_stake: int
    platform_fees: int

    @classmethod
    def read(cls, chain: Chain, provider: str, buyer: str, block: int | str = "latest") -> Balances:
        market = chain.contract("Market").functions
        return cls(
            int(market.balanceOf(buyer).call(block_identifier=block)),
            int(market.balanceOf(provider).call(block_identifier=block)),
            int(market.stakeOf(provider).call(block_identifier=block)),
            int(market.platformFees().call(block_identifier=block)),
        )


def chain_events(chain: Chain, to_block: int) -> list[Any]:
    addresses = list(chain.deployment.contracts.values())
    return list(
        chain.w3.eth.get_logs({"fromBlock": chain.deployment.deployed_block, "toBlock": to_block, "address": addresses})
    )


def check_run(
    chain: Chain,
    folder: Path,
    confirmed: int,
    order_ids: list[str],
    before: Balances,
    provider: Any,
    buyer: Any,
    report: RunReport,
) -> None:
    sessions = make_sessionmaker(make_engine(f"sqlite:///{folder / 'service.db'}"))
    market = chain.contract("Market")
    with sessions() as session:
        cursor = session.get(ChainCursor, 1)
        events = list(session.scalars(select(Event)))
        deals = {d.id: d for d in session.scalars(select(Deal))}
        settlements = {s.deal_id: s for s in session.scalars(select(Settlement))}
        orders = {o.id: o for o in session.scalars(select(OrderRecord))}
        jobs = {j.deal_id: j for j in session.scalars(select(Job))}
        rows = session.scalar(select(func.count()).select_from(Event)) or 0
    logs = chain_events(chain, confirmed)
    by_name: dict[str, list[Any]] = {}
    for entry in logs:
        topic = HexBytes(entry["topics"][0]).to_0x_hex()
        by_name.setdefault(topic, []).append(entry)

    # 1. The index is the chain's logs up to head - confirmations, block hashes included.
    problems = []
    if cursor is None or cursor.block_number != confirmed:
        problems.append(f"cursor at {cursor and cursor.block_number}, chain confirmed to {confirmed}")
    elif cursor.block_hash != HexBytes(chain.w3.eth.get_block(confirmed)["hash"]).to_0x_hex():
        problems.append(f"cursor block {confirmed} hash {cursor.block_hash} is not the chain's")
    indexed = {(e.tx_hash, e.log_index, e.block_number, e.block_hash) for e in events}
    on_chain = {
        (
            HexBytes(e["transactionHash"]).to_0x_hex(),
            int(e["logIndex"]),
            int(e["blockNumber"]),
            HexBytes(e["blockHash"]).to_0x_hex(),
        )
        for e in logs
    }
    problems += [f"indexed but not on chain: {x}" for x in sorted(indexed - on_chain)]
    problems += [f"on chain but not indexed: {x}" for x in sorted(on_chain - indexed)]
    report.check("index_equals_chain", problems)

    # 2. No event stored twice.
    distinct = len({(e.tx_hash, e.log_index) for e in events})
    report.check("no_duplicate_events", [f"{rows} event rows, {distinct} distinct"] if rows != distinct else [])

    # 3. Deals and settlements equal the chain's at the confirmed block; each deal ended exactly once.
    topic = {
        name: HexBytes(market.events[name]().topic).to_0x_hex()
        for name in ("Matched", "Settled", "Refunded", "Slashed")
    }
    ids_of = {
        name: Counter(HexBytes(e["topics"][1]).to_0x_hex() for e in by_name.get(t, [])) for name, t in topic.items()
    }
    problems = []
    for deal_id in set(ids_of["Matched"]) | set(deals):
        status, _ = market.functions.statusOf(deal_id).call(block_identifier=confirmed)
        name = DEAL_STATUS_NAMES[int(status)]
        row = deals.get(deal_id)
        if row is None or row.status != name:
            problems.append(f"deal {deal_id[:10]}: database {row and row.status}, chain {name}")
        endings = ids_of["Settled"][deal_id] + ids_of["Refunded"][deal_id]
        if ids_of["Matched"][deal_id] != 1 or endings != (1 if name in FINAL_DEAL_STATUSES else 0):
            problems.append(f"deal {deal_id[:10]} ({name}): matched {ids_of['Matched'][deal_id]}x, ended {endings}x")
    ended = set(ids_of["Settled"]) | set(ids_of["Refunded"])
    if set(settlements) != ended:
        problems.append(f"settlement rows {len(settlements)}, settled or refunded on chain {len(ended)}")
    report.check("deals_and_settlements_equal_chain", problems)

    # 4. Money: the buyer paid, the provider earned and lost exactly what the settlements say.
    after = Balances.read(chain, provider.address, buyer.address, confirmed)
    paid = earned = slashed = to_buyer = fees = 0
    for entry in by_name.get(topic["Settled"], []):
        args = market.events.Settled().process_log(entry)["args"]
        if not args["valueless"]:
            paid += args["computeFee"] + args["transitTotal"] + args["platformFee"]
            earned += args["computeFee"]
            fees += args["platformFee"]
    for entry in by_name.get(topic["Slashed"], []):
        args = market.events.Slashed().process_log(entry)["args"]
        slashed += args["toBuyer"] + args["toPlatform"]
        to_buyer += args["toBuyer"]
        fees += args["toPlatform"]
    problems = []
    if before.buyer_escrow - after.buyer_escrow != paid - to_buyer:
        problems.append(f"buyer paid {before.buyer_escrow - after.buyer_escrow}, settlements say {paid - to_buyer}")
    if after.provider_escrow - before.provider_escrow != earned:
        problems.append(f"provider earned {after.provider_escrow - before.provider_escrow}, settlements say {earned}")
    if before.provider_stake - after.provider_stake != slashed:
        problems.append(f"provider lost {before.provider_stake - after.provider_stake} stake, slashes say {slashed}")
    if after.platform_fees - before.platform_fees != fees:
        problems.append(f"platform fees grew {after.platform_fees - before.platform_fees}, events say {fees}")
    report.check("money_moved_exactly_once", problems)

    # 5. Every order final: unmatched and never matched on chain, or matched with its deal ended.
    problems = []
    for order_id in order_ids:
        record = orders.get(order_id)
        deal = deals.get(order_id)
        if record is None:
            problems.append(f"order {order_id[:10]} lost from the database")
            continue
        matched = ids_of["Matched"][order_id] > 0
        if record.state == "unmatched" and not matched:
            report.outcomes["unmatched"] += 1
        elif record.state == "on_chain" and deal is not None and deal.status in FINAL_DEAL_STATUSES and matched:
            report.outcomes[deal.status] += 1
            if deal.status == "refunded":
                job = jobs.get(order_id)
                report.refund_causes[f"job {job.state}" if job else "no job"] += 1
        else:
            problems.append(
                f"order {order_id[:10]}: state {record.state}, deal {deal and deal.status}, matched on chain {matched}"
            )
    report.check("orders_final", problems)
