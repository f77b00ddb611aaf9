"""The fault campaign's fixtures: the session's deployed chains and Slurm cluster (tests/support), and
the figures of every run, written to bench/results/reliability.json when the session ends."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from bench.support.report import record
from tests.faults.checks import RunReport
from tests.support.slurm import slurm_cluster
from tests.support.stack import deployments

__all__ = ["campaign", "deployments", "slurm_cluster"]


def summary(reports: list[RunReport], wall_s: float) -> dict[str, object]:
    checks: dict[str, Counter[str]] = {}
    for report in reports:
        for name, ok in report.checks.items():
            checks.setdefault(name, Counter())["passed" if ok else "failed"] += 1
    faults: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    refund_causes: Counter[str] = Counter()
    for report in reports:
        faults.update(report.faults)
        outcomes.update(report.outcomes)
        refund_causes.update(report.refund_causes)
    failed = [r for r in reports if not r.passed]
    seeds = sorted(r.seed for r in reports)
    return {
        "command": f"make faults RUNS={len(reports)} SEED={seeds[0] if seeds else 1}",
        "runs": len(reports),
        "runs_passed": len(reports) - len(failed),
        "runs_failed": len(failed),
        "seeds": f"{seeds[0]}..{seeds[-1]}" if seeds else "",
        "orders": sum(r.orders for r in reports),
        "min_orders_per_run": min((r.orders for r in reports), default=0),
        "order_outcomes": dict(sorted(outcomes.items())),
        "refunds_by_job_state": dict(sorted(refund_causes.items())),
        "faults_injected": dict(sorted(faults.items())),
        "slurm_job_failures_planned": sum(r.planned_job_failures for r in reports),
        "time_warps_to_deadlines": sum(r.warps for r in reports),
        "checks": {name: {"passed": c["passed"], "failed": c["failed"]} for name, c in sorted(checks.items())},
        "failures": [{"seed": r.seed, "problems": r.failures} for r in failed],
        "wall_s": round(wall_s, 1),
        "mean_run_s": round(sum(r.seconds for r in reports) / len(reports), 1) if reports else 0,
    }


@pytest.fixture(scope="session")
def campaign() -> Iterator[list[RunReport]]:
    reports: list[RunReport] = []
    began = time.monotonic()
    yield reports
    if not reports:
        return
    figures = summary(reports, time.monotonic() - began)
    print("\nfault campaign:", json.dumps(figures, indent=1))
    for report in reports:
        print(
            f"seed {report.seed}: {report.seconds} s, {report.orders} orders {dict(report.outcomes)} "
            f"refunds {dict(report.refund_causes)}, "
            f"faults {dict(report.faults)}, phases {report.phases}, warps {report.warps}, failures {report.failures}"
        )
        print("   ", "\n    ".join(report.trace))
    if os.environ.get("FAULT_RECORD", "1") == "1":
        print("recorded in", record("reliability", "faults", figures))
