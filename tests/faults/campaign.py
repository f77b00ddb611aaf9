"""Issue 9's randomized fault campaign: one run per seed, each a real market under a storm of faults.

A run: a fresh stage-3 chain (real Anvil, the deployed contracts), a staked provider whose chain node
runs its jobs on the real one-host Slurm cluster, a funded buyer, and the market as separate processes
(tests/faults/stack.py), each with its own key: the matcher service (`suanwang serve` holding only the
matcher's key), the provider's agent (which runs the jobs on Slurm), the buyer's agent (which settles each
delivered result at once) and the agent of the transit operator the bills pay. They reach the chain
through a TCP proxy and their content through a Kubo RPC server behind another proxy. While faults
strike, blocks come from the harness's producer every 0.25 s (Anvil's automine off), which a reorg or
rollback never races (Stack.block_lock: Anvil loses blocks when they do). The buyer posts 20 to 24 signed
orders at once; some jobs are planned to fail. While they are in flight the plan's
faults strike at their planned times:

  reorg / rollback   `anvil_reorg` (blocks replaced) or `anvil_rollback` (blocks dropped), shallower or
                     deeper than the indexer's confirmation depth; the dropped transactions are either
                     sent again (as a real node's mempool would) or lost for good
  rpc_outage         the chain's RPC proxy cut, then restored
  ipfs_outage        the Kubo proxy cut, then restored
  service_kill       SIGKILL, then a restart on the same database, executor state and content
  provider_agent_kill / operator_agent_kill
                     SIGKILL of the provider's (the operator's) agent, then a restart on the same store
                     and executor state after the hold
  slurm_job_kill     `scancel` of one pending or running job (the executor sees it cancelled)
  slurm_node_down    a Slurm node set DOWN (its running jobs fail), then resumed

Then everything is healed and the run drains: when nothing moves, chain time is moved past the open
deals' deadlines so the timeouts the contract provides can end them. The checks, against the chain:
the database's event index equals the chain's logs up to head minus the confirmation depth, and its
deals and settlements equal the chain's; no (tx, log index) stored twice; no deal settled or refunded
twice or not at all, and the buyer's, provider's and transit operator's balances (withdrawals included)
moved by exactly what those settlements say; every order final (unmatched and never matched on chain,
or its deal settled or refunded); every job ran at most once, and the job of each settled deal exactly
once (each job writes a line to a ledger when it runs). tests/faults/checks.py has the checks.

The plan (orders, job outcomes, faults and their times) is a pure function of the seed, so a failing
seed replays the same storm; how it interleaves with the service's own timing is up to the machine.
"""

from __future__ import annotations

import shlex
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from suanwang.chain.projections import FINAL_DEAL_STATUSES
from suanwang.devstack import rpc
from suanwang.roles import Role
from tests.backend.lifecycle.conftest import prepare_market
from tests.backend.lifecycle.test_restarts import signed_order
from tests.faults.checks import Balances, Parties, RunReport, check_run
from tests.faults.injector import Injector
from tests.faults.plan import Plan, plan_run
from tests.faults.stack import MINE_EVERY_S, Stack
from tests.support.slurm import SlurmCluster
from tests.support.stack import Chain, Deployments

STALL_S = 3.0  # nothing moved this long while draining: move chain time past the open deadlines
DRAIN_TIMEOUT_S = 150.0
SETUP_BLOCKS = 5  # blocks mined over the market's set-up, so no reorg reaches it
# The orders' bills (from Cernet/Shanghai to the node at Cernet/Beijing) pay transit to two accounts:
# CERNET's network team, and the account paid for Abilene and Cogentco, which is also the matcher's. The
# service holds the matcher's key, so that account runs no agent (two processes would race for its nonces).
PAID_TRANSIT = ("CERNET network team", "CERNET operator")


# -- the run ----------------------------------------------------------------------------------------------
def run_one(seed: int, deployments: Deployments, cluster: SlurmCluster, folder: Path) -> RunReport:
    plan = plan_run(seed)
    report = RunReport(seed, orders=plan.orders, planned_job_failures=sum(1 for code in plan.job_exit if code))
    began = lap = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    with deployments.chain(3) as chain:
        provider, buyer, _transit, _node, marketplace = prepare_market(chain, folder)
        accounts = {a.name: a for a in chain.deployment.accounts}
        transit = [accounts[name] for name in PAID_TRANSIT]
        keys = {"provider": provider.key.hex(), "buyer": buyer.key.hex()}
        keys |= {f"operator-{a.address[2:10].lower()}": a.private_key for a in transit if not a.roles & Role.MATCHER}
        stack = Stack(chain, cluster, folder, marketplace, plan.confirmations, keys)
        parties = Parties(
            provider.address,
            buyer.address,
            tuple(a.address for a in transit),
            stack.store_of("provider"),
            folder / "job-runs.txt",
        )
        try:
            rpc(chain.anvil.url, "anvil_mine", [hex(SETUP_BLOCKS)])
            floor = chain.w3.eth.block_number
            before = Balances.read(chain, parties)
            lap = report.lap("setup", began)
            stack.start_service()
            stack.start_agents()
            stack.start_mining()
            lap = report.lap("service_start", lap)
            order_ids = submit_orders(stack, chain, buyer, plan, parties.job_ledger)
            Injector(stack, plan, floor, report).run(time.monotonic())
            if stack.service is None:
                stack.start_service()
            lap = report.lap("chaos", lap)
            report.warps = drain(stack, chain, order_ids, report)
            lap = report.lap("drain", lap)
            stack.stop_agents()  # before the last blocks: a later withdrawal would move the head past them
            head = settle_index(stack, chain, plan.confirmations, report)
            stack.stop_service()
            lap = report.lap("index", lap)
            check_run(chain, folder, head - plan.confirmations, order_ids, before, parties, report)
            lap = report.lap("checks", lap)
        finally:
            stack.close()
            report.lap("teardown", lap)
    report.seconds = round(time.monotonic() - began, 1)
    return report


def submit_orders(stack: Stack, chain: Chain, buyer: Any, plan: Plan, ledger: Path) -> list[str]:
    bodies = []
    for index, (seconds, exit_code) in enumerate(zip(plan.job_seconds, plan.job_exit, strict=True)):
        # Each job, when it runs, appends its executor key and Slurm job id to the ledger (checks.job_runs).
        record = f'echo "$SLURM_JOB_NAME $SLURM_JOB_ID" >> {shlex.quote(str(ledger))}'
        command = ["sh", "-c", f"{record}; sleep {seconds}; echo order {index}; exit {exit_code}"]
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
    """Waits until every order is final; when nothing moves for STALL_S, no job is in Slurm and every
    agent has looked at the chain since the last move (an agent restarting after a kill has work left),
    moves chain time past the deadlines of the open deals (the contract's timeouts end what no one will
    finish). Returns the number of such moves."""
    warps = 0
    began = time.monotonic()
    deadline = began + DRAIN_TIMEOUT_S
    last: list[str] = []
    last_change = time.monotonic()
    head_at_change = chain.w3.eth.block_number
    wanted = set(order_ids)
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        while True:
            # One request for all the orders: polling each would run into the API's rate limit.
            page = client.get("/api/orders", params={"limit": 500})
            page.raise_for_status()
            orders = [o for o in page.json()["items"] if o["id"] in wanted]
            if all(is_final(o) for o in orders):
                return warps
            exited = stack.exited_agents()
            if exited:
                report.failures += exited
                return warps
            stages = [stage_of(o) for o in orders]
            if stages != last:
                last, last_change = stages, time.monotonic()
                head_at_change = chain.w3.eth.block_number
                report.trace.append(f"{time.monotonic() - began:5.1f} s {dict(Counter(stages))}")
            elif time.monotonic() - last_change > STALL_S and stack.idle(head_at_change):
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
