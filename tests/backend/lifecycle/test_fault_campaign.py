"""A smoke of issue 9's fault campaign (tests/faults; `make faults RUNS=100` runs the whole of it):
three seeds whose plans hold every kind of fault between them, each run ending with the index equal to
the chain, every settlement once, the balances moved by exactly the settlements, every order final."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.campaign import run_one
from tests.faults.plan import CHAIN_FAULTS, OTHER_FAULTS, fault_label, plan_run
from tests.support.slurm import SlurmCluster
from tests.support.stack import Deployments

pytestmark = pytest.mark.slurm
SMOKE_SEEDS = (1, 2, 8)  # between them, every kind of fault (agent kills too)


def test_a_seed_plans_the_same_storm_every_time() -> None:
    assert plan_run(42) == plan_run(42)
    assert plan_run(42) != plan_run(43)
    planned = {fault_label(f, plan.confirmations) for plan in map(plan_run, SMOKE_SEEDS) for f in plan.faults}
    every_kind = {f"{k}_{d}" for k in CHAIN_FAULTS for d in ("shallow", "deep")} | set(OTHER_FAULTS)
    assert planned == every_kind  # the smoke's seeds plan every kind of fault, reorgs on both sides of the depth


@pytest.mark.parametrize("seed", SMOKE_SEEDS)
def test_a_fault_run_ends_consistent(
    seed: int, deployments: Deployments, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    report = run_one(seed, deployments, slurm_cluster, tmp_path)
    assert sum(report.faults.values()) > 0
    assert report.orders >= 20
    assert report.passed, f"seed {seed}: {report.failures}"
