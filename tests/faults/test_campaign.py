"""`make faults RUNS=100 SEED=1`: runs seeds SEED .. SEED+RUNS-1 (one test each, named by its seed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.campaign import RunReport, plan_run, run_one
from tests.support.slurm import SlurmCluster
from tests.support.stack import Deployments

FIRST_SEED = int(os.environ.get("FAULT_SEED", "1"))
RUNS = int(os.environ.get("FAULT_RUNS", "3"))

pytestmark = pytest.mark.slurm


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + RUNS))
def test_fault_run(
    seed: int, deployments: Deployments, slurm_cluster: SlurmCluster, tmp_path: Path, campaign: list[RunReport]
) -> None:
    try:
        report = run_one(seed, deployments, slurm_cluster, tmp_path)
    except Exception as exc:
        report = RunReport(seed, orders=plan_run(seed).orders)
        report.check("harness", [f"{type(exc).__name__}: {exc}"])
        campaign.append(report)
        raise
    campaign.append(report)
    assert report.passed, f"seed {seed} (rerun: make faults RUNS=1 SEED={seed}): {report.failures}"
