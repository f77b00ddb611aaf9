"""A match buys what runs (issue 16): four sealed orders placed by the buyer on Anvil, matched by the matcher
service, run by the provider's own agent on the real Slurm cluster with slurmdbd. Slurm's own accounting
record of each job shows exactly the CPUs, memory and GPU GRES the order bought; the result the buyer opens
holds those figures; the job that exits 3 is completed as delivered, paid for the time used, not slashed.

With SUANWANG_RECORD_DELIVERY=<file> the test writes what it measured there (bench/delivery.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from suanwang.compute.catalog import default_catalog
from suanwang.network.config import load_peering_file
from suanwang.privacy import open_envelope, result_key_pair
from suanwang.privacy.documents import content_request_headers
from suanwang.scheduling.accounting import parse_tres
from tests.backend.agents.test_agents_e2e import matched_deal_bytes, wait
from tests.backend.lifecycle.conftest import GLOBAL_NETWORK, prepare_market
from tests.support.agents import matcher_service, provider_agent
from tests.support.orders import chain_submission, node_public_key
from tests.support.slurm import SlurmCluster
from tests.support.stack import Chain, Deployments

pytestmark = pytest.mark.slurm

TOKEN = 10**18
A100 = default_catalog().by_name("nvidia-a100-sxm4-80gb").code  # the chain's model of Slurm's gpu:a100
CPU_NODE_MCU = 64_000  # chain node 1 (prepare_market) runs on Slurm's n1: 2 CPUs, so 32,000 mCU per CPU
ACCESS = "Cernet/Beijing"
GPU_NODE_MCU = 8_000  # chain node 2 runs on n2: 2 CPUs, 2 A100s, 8 shards (4 per GPU); 4,000 mCU per CPU
SMALL_NODE_MCU = 32_000  # chain node 3 runs on n3: 1 CPU
# Each order buys whole CPUs' worth of its node, so the nodes hold what the engine thinks they hold and no
# job queues behind another: the match-to-running figures measure dispatch, not a full node.


@dataclass(frozen=True)
class Bought:
    """One of the four orders: what it buys and runs, and the allocation Slurm must record for it."""

    name: str
    fields: dict[str, Any]
    command: tuple[str, ...]
    tres: dict[str, int]  # AllocTRES as parse_tres reads it (memory in bytes)


ORDERS = (
    Bought(
        "cpu",
        {"logicMcu": CPU_NODE_MCU, "memoryMib": 2048},  # the whole of node 1: its 2 CPUs
        ("sh", "-c", "echo cpu job on $(nproc) cpus; sleep 4"),
        {"cpu": 2, "mem": 2048 * 1024**2, "node": 1},
    ),
    Bought(
        "whole-gpu",
        {"logicMcu": 4_000, "memoryMib": 512, "gpuModel": A100, "gpuCount": 1},
        ("sh", "-c", "echo gpus $CUDA_VISIBLE_DEVICES; sleep 4"),
        {"cpu": 1, "mem": 512 * 1024**2, "node": 1, "gres/gpu": 1},
    ),
    Bought(
        "half-gpu",
        {"logicMcu": 4_000, "memoryMib": 512, "gpuModel": A100, "gpuMilli": 500},
        ("sh", "-c", "echo shards $SLURM_SHARDS_ON_NODE; sleep 4"),
        {"cpu": 1, "mem": 512 * 1024**2, "node": 1, "gres/shard": 2},
    ),
    Bought(
        "exits-3",
        {"logicMcu": SMALL_NODE_MCU, "memoryMib": 256},
        ("sh", "-c", "echo about to fail >&2; sleep 4; exit 3"),
        {"cpu": 1, "mem": 256 * 1024**2, "node": 1},  # on n3
    ),
)


def register_node(chain: Chain, provider: Any, logic_mcu: int, memory_mib: int, gpu_model: int, gpus: int) -> int:
    """Another of the provider's nodes at the same router as node 1, its stake raised to back its deals."""
    registry, market, token = (chain.contract(n) for n in ("NodeRegistry", "Market", "SettlementToken"))
    chain.transact(provider, token.functions.approve(market.address, 1_000 * TOKEN))
    chain.transact(provider, market.functions.deposit(1_000 * TOKEN))
    chain.transact(provider, market.functions.stake(1_000 * TOKEN))
    operator = next(a.address for a in chain.deployment.accounts if a.name == "CERNET operator")
    beijing = next(r for r in load_peering_file(GLOBAL_NETWORK).routers if r.name == "Cernet/Beijing")
    key = node_public_key(provider, chain.deployment.chain_id)
    spec = (logic_mcu, 20_000, 0, memory_mib, gpu_model, gpus, 1, 15 * 10**17, operator, beijing.router_id,
            beijing.locator.prefix, beijing.locator.length, key)  # fmt: skip
    chain.transact(provider, registry.functions.registerNode(spec))
    return int(registry.functions.nodeCount().call())


def all_in_status(status: str, orders: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    return orders if all((o.get("deal") or {}).get("status") == status for o in orders.values()) else None


def sacct_tres(cluster: SlurmCluster, job_id: str) -> dict[str, int]:
    """AllocTRES of the job as slurmdbd recorded it: Slurm's own word on what the job was given."""
    out = subprocess.run(
        ["sacct", "-j", job_id, "-X", "-n", "-P", "--format=AllocTRES", "--noconvert"],
        env={**os.environ, "SLURM_CONF": str(cluster.slurm_conf)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    return parse_tres(out.splitlines()[0]) if out else {}


def test_each_job_gets_exactly_what_its_order_bought(
    deployments: Deployments, tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    with deployments.chain(3) as chain:
        provider, buyer, _transit, cpu_node, marketplace = prepare_market(chain, tmp_path)
        gpu_node = register_node(chain, provider, GPU_NODE_MCU, 4_000, A100, 2)
        small_node = register_node(chain, provider, SMALL_NODE_MCU, 1_000, 0, 0)
        service = matcher_service(chain, tmp_path, marketplace)
        agent = provider_agent(
            chain,
            tmp_path,
            provider,
            *("--service-url", service.url),  # it signs its heartbeats and node metrics to the service
            *("--executor", "slurm", "--slurm-node-map", f"{cpu_node}=n1,{gpu_node}=n2,{small_node}=n3"),
            env={
                "SUANWANG_SLURM_CONF": str(slurm_cluster.slurm_conf),
                # As bench/e2e.py runs it, so bench/delivery.py's match-to-running figures compare.
                "SUANWANG_POLL_INTERVAL_S": "0.05",
                "SUANWANG_ORCHESTRATOR_INTERVAL_S": "0.05",
            },
        )
        service.start()
        try:
            agent.start()
            # Orders are placed once the agent runs, so match-to-running times dispatch, not its start-up.
            wait("the agent's first pass", (tmp_path / "provider.heartbeat.json").exists, processes=(agent,))
            ids: dict[str, str] = {}
            for nonce, bought in enumerate(ORDERS, start=21):
                body = chain_submission(chain, buyer, nonce, bought.command, **bought.fields)
                body["access_point"] = ACCESS
                response = httpx.post(service.url + "/api/orders", json=body)
                assert response.status_code == 201, response.text
                ids[bought.name] = response.json()["id"]

            def orders() -> dict[str, dict[str, Any]]:
                return {n: httpx.get(f"{service.url}/api/orders/{i}", timeout=30).json() for n, i in ids.items()}

            done = wait(
                "the four deals to be completed",
                lambda: all_in_status("completed", orders()),
                timeout_s=180,
                processes=(agent,),
            )
            assert {n: o["node_id"] for n, o in done.items()} == {
                "cpu": cpu_node,
                "whole-gpu": gpu_node,
                "half-gpu": gpu_node,
                "exits-3": small_node,
            }
            with sqlite3.connect(tmp_path / "provider.db") as store:  # the agent's own record of its jobs
                jobs = dict(store.execute("SELECT deal_id, job_id FROM jobs").fetchall())
                running = dict(store.execute("SELECT deal_id, running_at FROM jobs").fetchall())

            key = result_key_pair(buyer.key, chain.deployment.chain_id)
            figures, documents = [], {}
            for bought in ORDERS:
                order = done[bought.name]
                cid = order["deal"]["result_cid"]
                sealed = httpx.get(f"{service.url}/api/content/{cid}", headers=content_request_headers(buyer.key, cid))
                assert sealed.status_code == 200, sealed.text
                documents[bought.name] = json.loads(open_envelope(sealed.content, key.public_key, key.private_key))
                matched = datetime.fromisoformat(order["matched_at"]).timestamp()
                started = datetime.fromisoformat(str(running[order["id"]])).replace(tzinfo=UTC).timestamp()
                recorded = sacct_tres(slurm_cluster, jobs[order["id"]])
                figures.append(
                    {
                        "order": bought.name,
                        "bought": bought.tres,
                        "slurm_alloc_tres": recorded,
                        "in_result": documents[bought.name]["accounting"]["alloc_tres"],
                        "match_to_running_s": round(started - matched, 3),
                    }
                )
            mismatches = sum(f["slurm_alloc_tres"] != f["bought"] or f["in_result"] != f["bought"] for f in figures)
            record(figures, mismatches)
            assert mismatches == 0, figures  # Slurm's record and the result: exactly what was bought
            for bought in ORDERS:
                document = documents[bought.name]
                assert document["accounting"]["elapsed_s"] >= 4 and document["accounting"]["max_rss_bytes"]
                assert document["given"]["cpus"] == bought.tres["cpu"], bought.name
                assert document["exit_code"] == (3 if bought.name == "exits-3" else 0), bought.name
            assert "about to fail" in documents["exits-3"]["stderr_tail"]

            # The buyer settles each deal with its own key: the failing job's provider is paid for the time
            # used, and nobody is slashed.
            market = chain.contract("Market")
            for order in done.values():
                chain.transact(buyer, market.functions.settle(order["id"], matched_deal_bytes(chain, order["id"])))
            settled = wait(
                "the settlements to be indexed",
                lambda: all_in_status("settled", orders()),
            )
            failing = settled["exits-3"]
            assert int(failing["settlement"]["compute_fee"]) > 0 and failing["deal"]["used_seconds"] > 0
            assert market.events.Slashed().get_logs(from_block=0) == []
        finally:
            agent.stop()
            service.stop()


def record(figures: list[dict[str, Any]], mismatches: int) -> None:
    """What bench/delivery.py reports, when it runs this test (SUANWANG_RECORD_DELIVERY names the file)."""
    target = os.environ.get("SUANWANG_RECORD_DELIVERY")
    if target:
        Path(target).write_text(
            json.dumps({"jobs": figures, "jobs_checked": len(figures), "mismatches": mismatches, "at": time.time()})
        )
