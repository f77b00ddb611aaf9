"""The market as separate processes, each with its own key: the matcher service (the matcher's key
only), a provider agent (the seller's), and two operator agents (each transit operator's). The buyer
signs its order and its settlement here, with its own key. Settlement pays the provider and each
transit operator exactly the bill."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from suanwang.devstack import AgentProcess, rpc
from suanwang.roles import Role
from tests.backend.lifecycle.conftest import prepare_market
from tests.support.agents import chain_env, matcher_service, provider_agent
from tests.support.orders import chain_submission
from tests.support.slurm import SlurmCluster
from tests.support.stack import Chain, Deployments


def wait(what: str, done: Callable[[], Any], timeout_s: float = 90, processes: tuple[Any, ...] = ()) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = done()
        if value:
            return value
        for p in processes:
            assert p.alive(), f"{p.role} agent exited: {p.log_file.read_text()[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def holdings(chain: Chain, address: str) -> int:
    """Tokens in the wallet and in the market's escrow: what a payout raises, wherever the agent keeps it."""
    token, market = chain.contract("SettlementToken"), chain.contract("Market")
    return int(token.functions.balanceOf(address).call()) + int(market.functions.balanceOf(address).call())


@pytest.mark.parametrize("executor", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_service_and_agents_each_hold_only_their_own_key(
    deployments: Deployments, tmp_path: Path, executor: str, request: pytest.FixtureRequest
) -> None:
    """On the provider's local executor, and on the real Slurm cluster (the chain's node 1 is Slurm's n1)."""
    executor_args: tuple[str, ...] = ()
    executor_env: dict[str, str] = {}
    if executor == "slurm":
        cluster: SlurmCluster = request.getfixturevalue("slurm_cluster")
        executor_args = ("--executor", "slurm", "--slurm-node-map", "1=n1")
        executor_env = {"SUANWANG_SLURM_CONF": str(cluster.slurm_conf)}
    with deployments.chain(3) as chain:
        provider, buyer, transit, _node_id, marketplace = prepare_market(chain, tmp_path)
        matcher = next(a for a in chain.deployment.accounts if a.roles & Role.MATCHER and a.private_key)
        service = matcher_service(chain, tmp_path, marketplace)
        env = chain_env(chain, tmp_path)
        agents = [
            provider_agent(chain, tmp_path, provider, "--service-url", service.url, *executor_args, env=executor_env),
            *(
                AgentProcess(
                    "operator",
                    account.key.hex(),
                    ["--store", str(tmp_path / f"{name}.db"), "--service-url", service.url],
                    env,
                    tmp_path / f"{name}.log",
                )
                for name, account in transit.items()
            ),
        ]
        service.start()
        try:
            for agent in agents:
                agent.start()
            before = {a.address: holdings(chain, a.address) for a in (provider, buyer, *transit.values())}
            submission = chain_submission(chain, buyer, 11, command=("sh", "-c", "echo delivered"))
            submission["access_point"] = "Geant2012/FR"  # in China Mobile's network: the path crosses both
            response = httpx.post(service.url + "/api/orders", json=submission, timeout=30)
            assert response.status_code == 201, response.text
            order_id = response.json()["id"]

            def order() -> dict[str, Any]:
                return httpx.get(f"{service.url}/api/orders/{order_id}", timeout=30).json()  # type: ignore[no-any-return]

            completed = wait(
                "the provider agent to complete the deal",
                lambda: (o := order()).get("deal") and o["deal"]["status"] == "completed" and o,
                processes=tuple(agents),
            )
            # The buyer settles at once with its own key (the service could only after the dispute window).
            market = chain.contract("Market")
            assert completed["job"] is None  # the job ran at the provider's agent, not in the service
            with sqlite3.connect(tmp_path / "provider.db") as store:  # the agent's own record of it
                ((kind, node),) = store.execute("SELECT executor, executor_node FROM jobs").fetchall()
            assert (kind, node) == (("SlurmExecutor", "n1") if executor == "slurm" else ("LocalExecutor", None))
            chain.transact(buyer, market.functions.settle(order_id, matched_deal_bytes(chain, order_id)))
            settled = wait("settlement to be indexed", lambda: (o := order())["deal"]["status"] == "settled" and o)
            bill, paid = settled["bill"], settled["settlement"]
            # Each transit operator's agent withdraws what it earned: wait until the escrow is empty.
            for account in transit.values():
                escrow = market.functions.balanceOf(account.address)
                wait(f"{account.address} to withdraw", lambda e=escrow: int(e.call()) == 0)
            after = {a: holdings(chain, a) for a in before}
            fees = {line["operator"].lower(): int(line["fee"]) for line in bill["transit"]}
            for name, account in transit.items():
                assert after[account.address] - before[account.address] == fees[account.address.lower()], name
            assert after[provider.address] - before[provider.address] == int(paid["compute_fee"])
            assert before[buyer.address] - after[buyer.address] == int(bill["total"]) - int(paid["refunded"])

            # Which keys each process loaded: the service the matcher's alone, each agent its own.
            service_log = (tmp_path / "service.log").read_text()
            held = re.search(r"acts with the keys of: (.*)", service_log)
            assert held is not None, service_log[-2000:]
            assert [a.strip() for a in held.group(1).split(",")] == [matcher.address]
            for agent in agents:
                store = Path(agent.args[agent.args.index("--store") + 1])
                beat = json.loads(store.with_suffix(".heartbeat.json").read_text())
                assert beat["address"] == Account.from_key(agent.key).address
                assert beat["role"] == agent.role
            # And the service knows them by their signed heartbeats.
            listed = {(a["address"], a["role"]) for a in httpx.get(service.url + "/api/agents", timeout=30).json()}
            assert listed == {(Account.from_key(a.key).address, a.role) for a in agents}
        finally:
            for agent in agents:
                agent.stop()
            service.stop()


def matched_deal_bytes(chain: Chain, order_id: str) -> bytes:
    """The deal's bytes as its Matched event carries them (every later call passes them back)."""
    market = chain.contract("Market")
    (log,) = market.events.Matched().get_logs(from_block=0, argument_filters={"id": order_id})
    return bytes(log["args"]["deal"])


@pytest.mark.parametrize("kill_after_s", (0.3, 1.5, 3.5))
def test_a_killed_provider_agent_resumes_without_losing_or_doubling(
    deployments: Deployments, tmp_path: Path, kill_after_s: float
) -> None:
    """SIGKILL the provider agent before, while and after its job runs, restart it on the same store:
    the deal is started once, its job runs once, it is completed once."""
    with deployments.chain(3) as chain:
        provider, buyer, _transit, _node_id, marketplace = prepare_market(chain, tmp_path)
        service = matcher_service(chain, tmp_path, marketplace)
        agent = provider_agent(chain, tmp_path, provider)
        service.start()
        try:
            agent.start()
            submission = chain_submission(chain, buyer, 12, command=("sh", "-c", "sleep 2; echo done"))
            response = httpx.post(service.url + "/api/orders", json=submission, timeout=30)
            assert response.status_code == 201, response.text
            order_id = response.json()["id"]
            wait("the match", lambda: httpx.get(f"{service.url}/api/orders/{order_id}", timeout=30).json()["deal"])
            time.sleep(kill_after_s)
            agent.kill()
            agent.start()
            wait(
                "the restarted agent to complete the deal",
                lambda: (
                    httpx.get(f"{service.url}/api/orders/{order_id}", timeout=30).json()["deal"]["status"]
                    == "completed"
                ),
                processes=(agent,),
            )
            market = chain.contract("Market")
            logs = {
                name: market.events[name]().get_logs(from_block=0, argument_filters={"id": order_id})
                for name in ("Matched", "Completed")
            }
            assert {name: len(found) for name, found in logs.items()} == {"Matched": 1, "Completed": 1}
            started = [
                e
                for e in market.events.DealStatusChanged().get_logs(from_block=0, argument_filters={"id": order_id})
                if e["args"]["status"] == 4  # DealStatus.STARTED
            ]
            assert len(started) == 1
            assert len(list((tmp_path / "provider-executor").rglob("*.exit"))) == 1  # the job ran once
        finally:
            agent.stop()
            service.stop()


def test_a_provider_agent_cancels_a_job_whose_match_a_reorg_undid(deployments: Deployments, tmp_path: Path) -> None:
    """The agent acts on a match at depth 0. A reorganisation then takes the match back: the agent cancels
    the job it started, and the job of the order's next match runs under a key of its own."""
    with deployments.chain(3) as chain:
        provider, buyer, _transit, _node_id, marketplace = prepare_market(chain, tmp_path)
        service = matcher_service(chain, tmp_path, marketplace)
        agent = provider_agent(chain, tmp_path, provider)
        executor = tmp_path / "provider-executor"
        service.start()
        try:
            agent.start()
            submission = chain_submission(chain, buyer, 13, command=("sleep", "30"))
            response = httpx.post(service.url + "/api/orders", json=submission, timeout=30)
            assert response.status_code == 201, response.text
            order_id = response.json()["id"]
            (first,) = wait("the agent's job", lambda: list(executor.glob("deal-*.sh")), processes=(agent,))
            market = chain.contract("Market")
            (match,) = market.events.Matched().get_logs(from_block=0, argument_filters={"id": order_id})
            depth = chain.w3.eth.block_number - match["blockNumber"] + 1
            rpc(chain.anvil.url, "anvil_reorg", [depth, []])  # the match's block and those after it replaced
            assert market.functions.statusOf(order_id).call()[0] == 0
            rpc(chain.anvil.url, "anvil_mine", ["0x3"])
            cancelled = first.with_suffix(".cancelled")
            wait("the undone match's job to be cancelled", cancelled.exists, processes=(agent,))
            second = wait(
                "the next match's job",
                lambda: [p for p in executor.glob("deal-*.sh") if p != first],
                processes=(agent,),
            )
            assert len(second) == 1 and second[0].stem != first.stem
            matched = (
                chain.contract("Market").events.Matched().get_logs(from_block=0, argument_filters={"id": order_id})
            )
            assert len(matched) == 1  # the undone match is gone; the new one stands
        finally:
            agent.stop()
            service.stop()
