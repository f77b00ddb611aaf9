"""Delivery bench (issue 16): does each job get what its order bought, how soon does it run, and what does
privacy cost per order.

Runs tests/backend/agents/test_delivery_e2e.py ``--runs`` times (Anvil, the matcher service, the provider's
own agent as a separate process, the real one-host Slurm cluster with slurmdbd; four sealed orders per run:
2 CPUs and 2 GiB, one whole A100, half an A100 as Slurm shards, a job that exits 3). Each run records, per
job, what the order bought, slurmdbd's AllocTRES for the job, and the allocation in the result the buyer
opened. Figures:

- ``jobs_checked``: jobs whose Slurm accounting was compared with what their order bought;
  ``mismatches``: those where Slurm's record or the result differs from it (goal 0);
- ``match_to_running_s`` p50/max: from the service reading the match's receipt to the provider's agent
  seeing Slurm run the job (both stamps on this host's clock), set against the same span in
  bench/results/e2e.json (p50 order-to-running minus p50 order-to-matched: 300 one-CPU jobs at 10/s, the
  agent and intervals configured alike), the baseline on this machine;
- ``sealing_per_order``: bench/privacy.py's spec figures (seal to 4 candidate nodes and the buyer, open at
  the node), with their ratio to plain AES-256-GCM of the same bytes, measured in this run.

Writes bench/results/delivery.json. Run: `make bench-delivery` (root: it starts the Slurm cluster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from privacy import measure as measure_sealing  # bench/ is on sys.path when run as a script
from support.report import record

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/backend/agents/test_delivery_e2e.py"


def run_once(target: Path) -> dict[str, Any]:
    env = {**os.environ, "SUANWANG_RECORD_DELIVERY": str(target)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", TEST, "-q", "-x", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if not target.exists():
        sys.exit(f"the delivery test recorded nothing:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(target.read_text())
    figures["test_passed"] = done.returncode == 0
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for n in range(args.runs):
            runs.append(run_once(Path(folder) / f"run-{n}.json"))
    jobs = [job for run in runs for job in run["jobs"]]
    spans = sorted(job["match_to_running_s"] for job in jobs)
    e2e = json.loads((REPO / "bench" / "results" / "e2e.json").read_text())
    baseline = e2e["p50_order_to_running_s"] - e2e["p50_order_to_matched_s"]
    sealing = measure_sealing(30)["spec_to_4_candidates"]
    figures = {
        "runs": len(runs),
        "runs_passed": sum(run["test_passed"] for run in runs),
        "jobs_checked": len(jobs),
        "mismatches": sum(run["mismatches"] for run in runs),
        "match_to_running_s": {"p50": statistics.median(spans), "max": spans[-1], "n": len(spans)},
        "baseline_match_to_running_p50_s": round(baseline, 3),
        "baseline": "bench/results/e2e.json: p50 order-to-running minus p50 order-to-matched (one-CPU jobs)",
        "ratio_match_to_running_p50_to_baseline": round(statistics.median(spans) / baseline, 2),
        "sealing_per_order": sealing,
        "jobs": jobs[: len(runs[0]["jobs"])] if runs else [],
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
    record("delivery", "delivery", figures)
    print(
        f"jobs checked {figures['jobs_checked']}, mismatches {figures['mismatches']}; match to running p50 "
        f"{figures['match_to_running_s']['p50']:.2f} s (x{figures['ratio_match_to_running_p50_to_baseline']} the "
        f"e2e baseline {baseline:.2f} s); sealing per order {sealing['seal_us']:.0f} us + open "
        f"{sealing['open_us']:.0f} us (x{sealing['seal_and_open_time_ratio_to_plain_aes_gcm']} plain AES-GCM)"
    )
    return 0 if figures["mismatches"] == 0 and figures["runs_passed"] == len(runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
