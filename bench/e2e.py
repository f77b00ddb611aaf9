"""End-to-end benchmark of the market: API -> engine -> chain -> provider agent -> executor.

Run: `make bench-e2e` (root: the latency part starts a one-host Slurm cluster). Writes bench/results/e2e.json.

The market runs as its separate processes (docs/architecture.md): the matcher service holds the matcher's
key alone (SUANWANG_SERVICE_KEYS=matcher), and the provider's own agent (`suanwang agent provider`, a
child process with the provider's key and its own store) starts its deals and runs their jobs. The
figures measured before the agents existed (the service held every key) stay in the results under
"before_agents", for comparison.

(a) Saturation: signed orders posted to the API (POST /api/orders/batch, 100 per request, 4 clients at
    once) as fast as it takes them, matched by the
    orchestrator and sent in batch transactions (matchSignedBatch); Anvil automines (one block per
    transaction). Figure: orders per second from the first POST until every order is on chain (the
    service has read the receipt of the batch that matched it; the index confirms it a moment later).
    Meanwhile the provider's agent (local executor, the job `true`) starts the deals and runs their jobs
    on the same cores and the same chain: the figure is matching's throughput beside a working provider.
(b) Latency at a moderate load: 10 orders/s for 30 s, Anvil mining a block every second, the indexer one
    confirmation behind, jobs (`sleep 0.5`, one CPU each) on the real one-host Slurm cluster: 8
    emulated nodes of 2 CPUs, serving the provider's one node on chain (no node map: Slurm places each
    job; see SLURM_NODES for why 16 CPUs), submitted by the provider's agent (`--executor slurm`).
    Figures: p50/p99 from the moment the bench sends the POST to the match mined on chain (the order's
    `matched_at`: the service read the block's receipt), stamped by the service, and to the job running
    on Slurm (the job's `running_at` in the agent's store: the agent saw Slurm run it), stamped by the
    agent, both on this host's clock; and to the deal in the index one confirmation later (seen by
    polling the API every 500 ms, so rounded up to the poll: a faster poll loads the service it measures).
The bench client, Anvil, the service, the agent and Slurm share the machine's cores: the figures depend
on what else runs (note the load average with them).
Goals (issue 6): at least 200 orders/s matched on chain; p50 order-to-running at most 2 s.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from suanwang.chain.deployment import Deployment, load_abi
from suanwang.chain.gateway import connect
from suanwang.chain.market import sign_order
from suanwang.content import spec_digest
from suanwang.devstack import AgentProcess, Anvil, ApiServer, deploy_contracts, free_port
from suanwang.network.config import load_peering_file
from suanwang.paths import REPO_ROOT
from suanwang.privacy import node_key_pair, result_key_pair
from suanwang.privacy.documents import seal_spec
from suanwang.roles import Role
from suanwang.storage.db import make_engine, make_sessionmaker
from suanwang.storage.models import Job

RESULTS = REPO_ROOT / "bench" / "results" / "e2e.json"
BUILD = REPO_ROOT / "build" / "contracts"
NETWORK = REPO_ROOT / "backend" / "suanwang" / "lifecycle" / "networks" / "cernet.yaml"
TOKEN = 10**18
SATURATION_ORDERS = 2000
BATCH = 100  # orders per POST /api/orders/batch
ACCESS = "Cernet/Shanghai"  # the buyers' access router
LOAD_RATE, LOAD_SECONDS = 10, 30
# The latency part's Slurm cluster: emulated nodes of 2 CPUs (the host has 2 cores; a node configured
# with more goes INVAL), each job takes one CPU. At 10 jobs/s Slurm keeps one job in a CPU for about
# 1.3 s here (a 0.5 s sleep plus launch and teardown), so by Little's law about 13 CPUs are busy: 8
# nodes give 16. Measured with sbatch alone on this host: 4 such nodes (8 CPUs) queue (p50 submit ->
# running 4.4 s), 8 nodes keep up (0.8 s); every job pinned to one 2-CPU node runs 0.8 jobs/s.
# Per order, the processes' own stamps (Unix time): "matched" (the service read the match's receipt),
# "running" (the provider's agent saw Slurm run the job).
Stamps = dict[str, dict[str, float | None]]
SLURM_NODES = [f"b{i}:cpus=2,mem=2000" for i in range(1, 9)]


class Chain:
    def __init__(self, anvil: Anvil, deployment: Deployment) -> None:
        self.anvil, self.deployment, self.w3 = anvil, deployment, connect(anvil.url)
        self.c = {
            n: self.w3.eth.contract(address=a, abi=load_abi(BUILD, n))
            for n, a in deployment.contracts.items()
            if (BUILD / f"{n}.json").exists()
        }

    def send(self, account: Any, call: Any) -> None:
        tx = call.build_transaction(
            {"from": account.address, "nonce": self.w3.eth.get_transaction_count(account.address, "pending")}
        )
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=120
        )
        assert receipt["status"] == 1, receipt

    def account(self, role: Role) -> Any:
        entry = next(a for a in self.deployment.accounts if a.roles & role and a.private_key)
        return Account.from_key(entry.private_key)


def setup_market(chain: Chain, provider: Any, buyer: Any, nodes: int) -> None:
    """A staked provider with `nodes` large CPU nodes at the buyers' access router (so no link's bandwidth
    limits the market: the benchmark measures matching, the chain and the executor), and a funded buyer."""
    token, market, registry = chain.c["SettlementToken"], chain.c["Market"], chain.c["NodeRegistry"]
    founder = chain.account(Role.OPERATOR)
    for who in (provider, buyer):
        chain.send(founder, token.functions.transfer(who.address, 200_000 * TOKEN))
        if chain.w3.eth.get_balance(who.address) == 0:
            chain.w3.provider.make_request("anvil_setBalance", [who.address, hex(10**21)])  # type: ignore[arg-type]
    chain.send(provider, token.functions.approve(market.address, 50_000 * TOKEN))
    chain.send(provider, market.functions.deposit(50_000 * TOKEN))
    chain.send(provider, market.functions.stake(50_000 * TOKEN))
    r = next(r for r in load_peering_file(NETWORK).routers if r.name == ACCESS)
    for i in range(nodes):
        spec = (
            10**12,
            0,
            0,
            1_048_576,
            0,
            0,
            0,
            10**15 + i * 10**12,
            founder.address,
            r.router_id,
            r.locator.prefix,
            r.locator.length,
            node_key_pair(provider.key, chain.deployment.chain_id).public_key,  # what its agent derives
        )
        chain.send(provider, registry.functions.registerNode(spec))
    chain.send(buyer, token.functions.approve(market.address, 100_000 * TOKEN))
    chain.send(buyer, market.functions.deposit(100_000 * TOKEN))


def orders(chain: Chain, buyer: Any, count: int, access: str, command: list[str]) -> list[dict[str, Any]]:
    chain_time = int(chain.w3.eth.get_block("latest")["timestamp"])
    market = chain.deployment.contracts["Market"]
    epoch = int(chain.c["Federation"].functions.epoch().call())
    # The job's specification sealed to every node (as a buyer seals to its quote's candidates) and to the
    # buyer; its digest is signed with the order.
    registry = chain.c["NodeRegistry"]
    node_ids = range(1, int(registry.functions.nodeCount().call()) + 1)
    keys = [(i, bytes(registry.functions.getNode(i).call()[0][-1])) for i in node_ids]
    envelope = seal_spec(command, result_key_pair(buyer.key, chain.deployment.chain_id), [k for k in keys if any(k[1])])
    digest = spec_digest(envelope)
    job = {"envelope": base64.b64encode(envelope).decode()}
    out = []
    for nonce in range(count):
        order = {
            "buyer": buyer.address,
            "matcher": "0x" + "00" * 20,
            "logicMcu": 1_000,
            "parallelMcu": 0,
            "neuralMcu": 0,
            "memoryMib": 64,
            "gpuModel": 0,
            "gpuCount": 0,
            "gpuMilli": 0,
            "minTier": 0,
            "duration": 600,
            "minRunSeconds": 0,
            "maxPricePerCuHour": TOKEN,
            "maxTotal": 10 * TOKEN,
            "maxTransit": TOKEN,
            "maxLatencyMs": 0,
            "minBandwidthMbps": 1,
            "autoAccept": True,
            "expiry": chain_time + 7200,
            "nonce": nonce,
            "epoch": epoch,
            "specDigest": digest,
            "serviceId": "0x" + "00" * 32,
            "apnId": 0,
            "apnSlaClass": 0,
        }
        signature = sign_order(order, buyer.key.hex(), chain.deployment.chain_id, market)
        amounts = ("maxPricePerCuHour", "maxTotal", "maxTransit")
        body = {**order, **{name: str(order[name]) for name in amounts}}
        out.append({"order": body, "signature": signature, "access_point": access, "job": job})
    return out


def service_env(chain: Chain, folder: Path, **extra: str) -> dict[str, str]:
    return {
        "SUANWANG_RPC_URL": chain.anvil.url,
        "SUANWANG_DATABASE_URL": f"sqlite:///{folder / 'service.db'}",
        "SUANWANG_DEPLOYMENT_FILE": str(folder / "deployment.json"),
        "SUANWANG_BUILD_DIR": str(BUILD),
        "SUANWANG_EXECUTOR_DIR": str(folder / "executor"),
        "SUANWANG_CONTENT_DIR": str(folder / "content"),
        "SUANWANG_RATE_LIMIT_PER_S": "100000",
        "SUANWANG_RATE_LIMIT_BURST": "100000",
        "SUANWANG_POLL_INTERVAL_S": "0.05",
        "SUANWANG_ORCHESTRATOR_INTERVAL_S": "0.05",
        "SUANWANG_MATCH_BATCH_SIZE": "200",
        "SUANWANG_SERVICE_KEYS": "matcher",  # the provider acts through its own agent
        **extra,
    }


def provider_agent(chain: Chain, provider: Any, folder: Path, *args: str, **env: str) -> AgentProcess:
    """The provider's own agent: its key, its store, its executor; the service's content store (where
    the buyers' job specifications are)."""
    return AgentProcess(
        "provider",
        provider.key.hex(),
        ["--store", str(folder / "provider.db"), "--executor-dir", str(folder / "provider-executor"), *args],
        {
            "SUANWANG_RPC_URL": chain.anvil.url,
            "SUANWANG_DEPLOYMENT_FILE": str(folder / "deployment.json"),
            "SUANWANG_BUILD_DIR": str(BUILD),
            "SUANWANG_CONTENT_DIR": str(folder / "content"),
            **env,
        },
        folder / "provider.log",
    )


def until_ready(agent: AgentProcess, timeout_s: float = 60) -> AgentProcess:
    """Waits for the agent's first heartbeat (its first pass over the chain): a provider's agent runs
    before orders come, so its start-up is not part of an order's latency."""
    beat = Path(agent.args[agent.args.index("--store") + 1]).with_suffix(".heartbeat.json")
    deadline = time.monotonic() + timeout_s
    while not beat.exists():
        if not agent.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the provider agent did not start: {agent.log_file.read_text()[-2000:]}")
        time.sleep(0.1)
    return agent


async def post_all(url: str, bodies: list[dict[str, Any]], concurrency: int) -> list[tuple[str, float]]:
    """POSTs every body in batches of BATCH to /api/orders/batch; returns (order id, time sent) per order."""
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for start in range(0, len(bodies), BATCH):
        queue.put_nowait(bodies[start : start + BATCH])
    done: list[tuple[str, float]] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            sent = time.monotonic()
            response = await client.post(url + "/api/orders/batch", json={"orders": chunk})
            assert response.status_code == 200, response.text
            results = response.json()["results"]
            assert all(r["error"] is None for r in results), results
            done.extend((r["id"], sent) for r in results)

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return done


def count_on_chain(url: str) -> int:
    """Orders whose match transaction was mined (state on_chain), counted by the API."""
    page = httpx.get(url + "/api/orders", params={"state": "on_chain", "limit": 1}, timeout=60).json()
    return int(page["total"])


def saturation(folder: Path) -> dict[str, Any]:
    with Anvil(free_port()) as anvil:
        deployment = deploy_contracts(anvil.url, anvil.port, folder / "deployment.json", {"SUANWANG_STAGE": "3"})
        chain = Chain(anvil, deployment)
        # A provider of its own: its agent, not the service, starts the deals and runs their jobs.
        provider, buyer = Account.create(), chain.account(Role.BUYER)
        chain.w3.provider.make_request("anvil_setBalance", [provider.address, hex(10**21)])  # type: ignore[arg-type]
        chain.send(
            chain.account(Role.OPERATOR),
            chain.c["Federation"].functions.admit(provider.address, int(Role.PROVIDER), "bench provider"),
        )
        setup_market(chain, provider, buyer, nodes=20)
        bodies = orders(chain, buyer, SATURATION_ORDERS, ACCESS, ["true"])
        api = ApiServer(free_port(), service_env(chain, folder)).start()
        agent = provider_agent(chain, provider, folder, "--executor", "local")
        try:
            until_ready(agent.start())
            started = time.monotonic()
            posted = asyncio.run(post_all(api.url, bodies, concurrency=4))
            posted_s = time.monotonic() - started
            while count_on_chain(api.url) < SATURATION_ORDERS:
                if time.monotonic() - started > 600:
                    raise RuntimeError("orders not matched within 10 minutes")
                time.sleep(0.25)
            elapsed = time.monotonic() - started
            blocks = chain.w3.eth.block_number
            # The figure is the chain's: as many Matched events as orders, whatever the API says.
            matched_logs = chain.c["Market"].events.Matched().get_logs(from_block=0, to_block=blocks)
            if len(matched_logs) != SATURATION_ORDERS:
                raise RuntimeError(f"{len(matched_logs)} Matched events on chain for {SATURATION_ORDERS} orders")
            if not agent.alive():
                raise RuntimeError(f"the provider agent exited: {agent.log_file.read_text()[-2000:]}")
            started_deals = _started_deals(chain, blocks)
        finally:
            agent.stop()
            api.stop()
    return {
        "orders": len(posted),
        "seconds": elapsed,
        "orders_per_s": len(posted) / elapsed,
        "api_accept_per_s": len(posted) / posted_s,
        "mining": "automine (a block per transaction)",
        "blocks_at_end": blocks,
        "match_batch_size": 200,
        "provider": "agent process, local executor",
        "deals_started_by_the_agent_meanwhile": started_deals,
    }


def _started_deals(chain: Chain, to_block: int) -> int:
    """Deals the provider's agent had started on chain by `to_block`."""
    changes = chain.c["Market"].events.DealStatusChanged().get_logs(from_block=0, to_block=to_block)
    return sum(1 for e in changes if e["args"]["status"] == 4)  # DealStatus.STARTED


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(folder: Path) -> dict[str, Any]:
    if os.geteuid() != 0:
        return {"skipped": "needs root to start the Slurm cluster"}
    harness = [sys.executable, str(REPO_ROOT / "tools" / "slurm" / "cluster.py")]
    slurm_dir = folder / "slurm"
    started = subprocess.run(
        [
            *harness,
            "start",
            "--dir",
            str(slurm_dir),
            "--base-port",
            str(free_port() % 20000 + 21000),
            "--nodes",
            *SLURM_NODES,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if started.returncode != 0:
        subprocess.run([*harness, "stop", "--dir", str(slurm_dir)], capture_output=True, timeout=120)
        return {"skipped": f"the Slurm cluster did not start: {started.stderr.strip()[-500:]}"}
    slurm_conf = json.loads(started.stdout)["slurm_conf"]
    try:
        with Anvil(free_port(), block_time_s=1) as anvil:
            deployment = deploy_contracts(anvil.url, anvil.port, folder / "deployment.json", {"SUANWANG_STAGE": "3"})
            chain = Chain(anvil, deployment)
            provider, buyer = chain.account(Role.CLOUD), chain.account(Role.BUYER)
            # One node on chain served by the provider's whole Slurm partition: no node map, so Slurm
            # places each job (the engine puts every order on the cheapest node: a node map would pin
            # them all to one Slurm node's 2 CPUs).
            setup_market(chain, provider, buyer, nodes=1)
            bodies = orders(chain, buyer, LOAD_RATE * LOAD_SECONDS, ACCESS, ["sleep", "0.5"])
            api = ApiServer(free_port(), service_env(chain, folder, SUANWANG_CONFIRMATIONS="1")).start()
            agent = provider_agent(chain, provider, folder, "--executor", "slurm", SUANWANG_SLURM_CONF=slurm_conf)
            sent: dict[str, float] = {}  # order id -> when its POST was sent (Unix time)
            indexed: dict[str, float] = {}
            stamps: Stamps = {}
            try:
                until_ready(agent.start())
                jobs = make_sessionmaker(make_engine(f"sqlite:///{folder / 'provider.db'}"))  # the agent's store
                with httpx.Client(timeout=60) as client:
                    begin = time.monotonic()
                    for i, body in enumerate(bodies):
                        while time.monotonic() < begin + i / LOAD_RATE:
                            _poll(client, api.url, jobs, indexed, stamps)
                            time.sleep(0.01)
                        posted_at = time.time()
                        sent[client.post(api.url + "/api/orders", json=body).json()["id"]] = posted_at
                    deadline = time.monotonic() + 120
                    # Jobs run before the index confirms their deals: wait for both.
                    while not _all_seen(sent, indexed, stamps) and time.monotonic() < deadline:
                        _poll(client, api.url, jobs, indexed, stamps)
                        time.sleep(0.1)
                if not agent.alive():
                    raise RuntimeError(f"the provider agent exited: {agent.log_file.read_text()[-2000:]}")
            finally:
                agent.stop()
                api.stop()
    finally:
        subprocess.run([*harness, "stop", "--dir", str(slurm_dir)], capture_output=True, timeout=120)
    to_matched = [m - sent[i] for i in sent if (m := stamps.get(i, {}).get("matched")) is not None]
    to_running = [r - sent[i] for i in sent if (r := stamps.get(i, {}).get("running")) is not None]
    to_indexed = [indexed[i] - sent[i] for i in sent if i in indexed]
    return {
        "provider": "agent process, Slurm executor",
        "rate_per_s": LOAD_RATE,
        "seconds": LOAD_SECONDS,
        "block_time_s": 1,
        "confirmations": 1,
        "orders": len(sent),
        "matched": len(to_matched),
        "running": len(to_running),
        "indexed": len(to_indexed),
        "p50_order_to_matched_s": statistics.median(to_matched),
        "p99_order_to_matched_s": percentile(to_matched, 0.99),
        "p50_order_to_running_s": statistics.median(to_running),
        "p99_order_to_running_s": percentile(to_running, 0.99),
        "p50_order_to_indexed_s": statistics.median(to_indexed),
        "p99_order_to_indexed_s": percentile(to_indexed, 0.99),
    }


def _all_seen(sent: dict[str, float], indexed: dict[str, float], stamps: Stamps) -> bool:
    return all(i in indexed and stamps.get(i, {}).get("running") for i in sent)


def _poll(
    client: httpx.Client, url: str, jobs: sessionmaker[Session], indexed: dict[str, float], stamps: Stamps
) -> None:
    """Every 500 ms: which deals the index holds (time of this poll), the service's match stamps, and
    the provider agent's running stamps (from its store: the service does not run the jobs)."""
    last = getattr(_poll, "last", 0.0)
    if time.monotonic() - last < 0.5:
        return
    _poll.last = time.monotonic()  # type: ignore[attr-defined]
    now = time.time()
    with jobs() as session:
        running = {job.deal_id: job.running_at for job in session.scalars(select(Job))}
    for order in client.get(url + "/api/orders", params={"limit": 500}).json()["items"]:
        if order["deal"] is not None:
            indexed.setdefault(order["id"], now)
        at = running.get(order["id"])
        stamps[order["id"]] = {
            "matched": _unix(order["matched_at"]),
            "running": _unix(at.isoformat() if at is not None else None),
        }


def _unix(stamp: str | None) -> float | None:
    """An API time as Unix time (the service keeps UTC; a time without its zone is read as UTC)."""
    if not stamp:
        return None
    moment = datetime.fromisoformat(stamp)
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def before_agents() -> dict[str, Any] | None:
    """The figures measured when the service held every key and ran the jobs itself (kept from the
    results file of that time, so every later run shows the comparison)."""
    try:
        previous = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return None
    if previous.get("agents_as_processes"):
        return previous.get("before_agents")
    return previous


def main() -> None:
    load_at_start = os.getloadavg()[0]  # the figures depend on what else runs on the machine
    with tempfile.TemporaryDirectory(prefix="suanwang-bench-e2e-") as tmp:
        folder = Path(tmp)
        (folder / "a").mkdir()
        (folder / "b").mkdir()
        sat = saturation(folder / "a")
        lat = latency(folder / "b")
    result = {
        "orders_per_s_matched_on_chain": sat["orders_per_s"],
        "p50_order_to_running_s": lat.get("p50_order_to_running_s"),
        "p99_order_to_running_s": lat.get("p99_order_to_running_s"),
        "p50_order_to_matched_s": lat.get("p50_order_to_matched_s"),
        "p99_order_to_matched_s": lat.get("p99_order_to_matched_s"),
        "p50_order_to_indexed_s": lat.get("p50_order_to_indexed_s"),
        "goal_orders_per_s": 200,
        "goal_p50_order_to_running_s": 2.0,
        "ratio_orders_per_s_to_goal": sat["orders_per_s"] / 200,
        "saturation": sat,
        "latency": lat,
        "load_average_at_start": load_at_start,
        "cpus": os.cpu_count(),
        "agents_as_processes": True,
        "before_agents": before_agents(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"saturation: {sat['orders_per_s']:.1f} orders/s matched on chain ({sat['orders']} orders, "
        f"{sat['mining']}); {result['ratio_orders_per_s_to_goal']:.2f}x the goal of 200/s"
    )
    if "p50_order_to_running_s" in lat:
        print(
            f"latency at {LOAD_RATE} orders/s, 1 s blocks, 1 confirmation: order->matched on chain p50 "
            f"{lat['p50_order_to_matched_s']:.2f} s p99 {lat['p99_order_to_matched_s']:.2f} s; order->indexed "
            f"p50 {lat['p50_order_to_indexed_s']:.2f} s; order->running on "
            f"Slurm p50 {lat['p50_order_to_running_s']:.2f} s p99 {lat['p99_order_to_running_s']:.2f} s "
            f"(goal p50 <= 2 s: {lat['p50_order_to_running_s'] / 2.0:.2f}x of it)"
        )
    else:
        print(f"latency: not measured ({lat['skipped']})")
    before = result["before_agents"]
    if before:
        print(
            f"before the agents (the service held every key): {before['orders_per_s_matched_on_chain']:.1f} "
            f"orders/s; order->running p50 {before['p50_order_to_running_s']:.2f} s "
            f"p99 {before['p99_order_to_running_s']:.2f} s"
        )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
