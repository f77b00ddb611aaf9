"""The lifecycle with the real Slurm cluster as the executor: the job runs on the Slurm node the chain
node maps to; a job that exits non-zero ran to its end and is delivered (paid for the time used, nobody
slashed); a job that never runs leaves the deal to its delivery deadline, where the timeout refunds the
buyer, with nothing lost."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from suanwang.devstack import rpc
from tests.backend.lifecycle.conftest import Market
from tests.backend.lifecycle.test_lifecycle import DURATION_S, MIN_RUN_S, delivered, settled_exactly
from tests.support.slurm import SlurmCluster

pytestmark = pytest.mark.slurm


def slurm_market(market_factory: Callable[..., Market], cluster: SlurmCluster) -> Market:
    return market_factory(executor="slurm", slurm_conf=cluster.slurm_conf, slurm_node_map="1=n1")


def test_the_job_runs_on_the_matched_slurm_node_and_settlement_pays_exactly_the_bill(
    market_factory: Callable[..., Market], slurm_cluster: SlurmCluster
) -> None:
    market = slurm_market(market_factory, slurm_cluster)
    founder = market.chain.deployment.deployer  # the node's network operator
    parties = [market.provider.address, market.buyer.address, founder, *(a.address for a in market.transit.values())]
    before = {p: market.escrow(p) for p in parties}
    order = market.order(duration=DURATION_S, minRunSeconds=MIN_RUN_S)
    submitted = market.submit(order, "Geant2012/FR", ["sh", "-c", "echo ran on $SLURMD_NODENAME"])
    delivered(market, submitted["id"])
    done = market.wait_for(submitted["id"], lambda o: (o["deal"] or {}).get("status") == "settled", timeout_s=120)
    assert done["job"]["executor"] == "SlurmExecutor"
    assert done["job"]["executor_node"] == "n1"
    document, output = market.opened_result(done["deal"]["result_cid"])  # sealed to the buyer
    assert document["exit_code"] == 0 and output == b"ran on n1\n"
    transit = settled_exactly(market, done, before)
    assert set(transit) == {founder, *(a.address for a in market.transit.values())}  # the path's and the node's
    after = {p: market.escrow(p) for p in parties}
    # The API's balances are the chain's.
    for party in parties:
        assert int(market.client.get(f"/api/views/balances/{party}").json()["escrow"]) == after[party]


def test_a_slurm_job_that_exits_non_zero_is_delivered_and_paid_not_slashed(
    market_factory: Callable[..., Market], slurm_cluster: SlurmCluster
) -> None:
    """Issue 14, attack 7, on Slurm: the buyer's job fails on purpose; it ran to its end, so the provider
    completes it with a result recording exit code 3 and is paid for the time used, its stake untouched."""
    market = slurm_market(market_factory, slurm_cluster)
    market_contract = market.chain.contract("Market")
    founder = market.chain.deployment.deployer
    parties = {market.provider.address, market.buyer.address, founder, *(a.address for a in market.transit.values())}
    before = {p: market.escrow(p) for p in parties}
    stake_before = int(market_contract.functions.stakeOf(market.provider.address).call())
    order = market.order(duration=DURATION_S, minRunSeconds=MIN_RUN_S)
    submitted = market.submit(order, "Cernet/Shanghai", ["sh", "-c", "echo tried; exit 3"])
    delivered(market, submitted["id"])
    done = market.wait_for(
        submitted["id"], lambda o: (o["deal"] or {}).get("status") in ("settled", "refunded"), timeout_s=120
    )
    assert done["deal"]["status"] == "settled"
    assert (done["job"]["state"], done["job"]["exit_code"]) == ("failed", 3)
    document, output = market.opened_result(done["deal"]["result_cid"])
    assert document["exit_code"] == 3 and output == b"tried\n"
    settled_exactly(market, done, before)
    assert int(market_contract.functions.stakeOf(market.provider.address).call()) == stake_before


def _chain_time(market: Market) -> int:
    return int(market.chain.w3.eth.get_block("latest")["timestamp"])


def test_a_job_the_executor_refuses_is_declined_and_the_buyer_refunded_without_a_slash(
    market_factory: Callable[..., Market], slurm_cluster: SlurmCluster
) -> None:
    market = market_factory(executor="slurm", slurm_conf=slurm_cluster.slurm_conf, slurm_node_map="1=no-such-node")
    buyer_before = market.escrow(market.buyer.address)
    stake = market.chain.contract("Market").functions.stakeOf(market.provider.address)
    stake_before = int(stake.call())
    submitted = market.submit(market.order(), "Cernet/Shanghai", ["true"])
    done = market.wait_for(submitted["id"], lambda o: (o["deal"] or {}).get("status") == "refunded")
    assert done["job"]["state"] == "failed" and "no-such-node" in done["job"]["reason"]
    assert market.escrow(market.buyer.address) == buyer_before
    assert int(stake.call()) == stake_before


def test_a_slurm_node_that_goes_down_leaves_no_funds_stuck(
    market_factory: Callable[..., Market], slurm_cluster: SlurmCluster
) -> None:
    market = market_factory(executor="slurm", slurm_conf=slurm_cluster.slurm_conf, slurm_node_map="1=n3")
    buyer_before = market.escrow(market.buyer.address)
    down = slurm_cluster.scontrol("update", "nodename=n3", "state=down", "reason=suanwang-test")
    assert down.returncode == 0, down.stderr
    try:
        submitted = market.submit(market.order(), "Cernet/Shanghai", ["true"])
        waiting = market.wait_for(submitted["id"], lambda o: o["job"] is not None, timeout_s=120)
        if waiting["deal"]["status"] == "started":
            # The job waits for a node that is down; the delivery deadline passes and the timeout ends it.
            assert waiting["job"]["state"] in ("pending", "failed", "lost"), waiting["job"]
            rpc(market.chain.anvil.url, "evm_increaseTime", [waiting["deal"]["deadline"] + 10 - _chain_time(market)])
            rpc(market.chain.anvil.url, "evm_mine")
        done = market.wait_for(submitted["id"], lambda o: (o["deal"] or {}).get("status") == "refunded")
        settlement = done["settlement"]
        # The buyer has back all it locked, plus its share of any slash; nothing is left locked.
        assert market.escrow(market.buyer.address) == buyer_before + int(settlement["slashed_to_buyer"])
    finally:
        slurm_cluster.scontrol("update", "nodename=n3", "state=resume")
