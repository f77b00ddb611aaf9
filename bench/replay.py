"""Replay bench: the full stage-3 scenario (3 operators, 50 nodes, 1,000 orders) replayed on a fresh Anvil
through the lifecycle's shared steps, with its figures, whether every check passed (the scenario's
expectations, conservation, the independent check against balanceOf and eth_getLogs) and the machine's
load average. Writes the `stage3` section of bench/results/replay.json and prints the replay's time as a
ratio to the baseline: the replay's own copy of the lifecycle on the issue-14 contracts, 76.5 s of
replay and 87 s with Anvil and the deployment (docs/replay.md, "Measured", load average ~6).

Run: .venv/bin/python bench/replay.py [--scenario scripts/scenarios/stage3-federation.yaml] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from support.report import record  # bench/ is on sys.path when run as a script

from suanwang.replay.run import replay
from suanwang.replay.scenario import TOKEN, load_scenario

ROOT = Path(__file__).resolve().parent.parent

BASELINE_REPLAY_S = 76.5
BASELINE_WALL_S = 87.0
FIGURES = (
    "stage",
    "operators",
    "nodes",
    "orders",
    "matched",
    "match_rate",
    "settled",
    "refunded",
    "slashed",
    "timed_out",
    "disputes",
    "rerouted",
    "sla_compliance",
    "value_moved",
    "transit_operators_paid",
    "open_deals",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scripts" / "scenarios" / "stage3-federation.yaml")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: a temporary one)")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="suanwang-bench-replay-") as tmp:
        started = time.perf_counter()
        outcome = replay(scenario, args.out or Path(tmp), progress=False)
        wall = time.perf_counter() - started
    load_after = os.getloadavg()
    result = outcome.result
    figures = result.figures
    checks = {
        "expectations": {text: bool(ok) for text, _where, _actual, ok in result.outcomes},
        "conservation": bool(result.conservation["ok"]),
        "independent_check_figures": len(outcome.verification["rows"]),
        "independent_check_agree": sum(1 for row in outcome.verification["rows"] if row[3]),
        "independent_check": bool(outcome.verification["ok"]),
    }
    section = {
        "scenario": str(args.scenario.relative_to(ROOT) if args.scenario.is_relative_to(ROOT) else args.scenario),
        "replay_s": round(result.seconds, 1),
        "wall_s_with_anvil_and_deployment": round(wall, 1),
        "baseline_replay_s": BASELINE_REPLAY_S,
        "baseline_wall_s": BASELINE_WALL_S,
        "replay_ratio_to_baseline": round(result.seconds / BASELINE_REPLAY_S, 3),
        "wall_ratio_to_baseline": round(wall / BASELINE_WALL_S, 3),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cores": os.cpu_count(),
        "all_checks_passed": outcome.ok,
        "checks": checks,
        "figures": {name: figures[name] for name in FIGURES},
        "transit_revenue_tokens": {k: int(v) / TOKEN for k, v in figures["transit_revenue"].items()},
        "platform_fees_accrued_tokens": int(figures["platform_fees_accrued"]) / TOKEN,
        "mean_gas": {step: round(statistics.fmean(used)) for step, used in sorted(result.gas.items()) if used},
    }
    path = record("replay", "stage3", section)
    print(
        f"stage-3 replay: {result.seconds:.1f} s ({section['replay_ratio_to_baseline']}x the baseline's "
        f"{BASELINE_REPLAY_S} s); {wall:.1f} s with Anvil and deployment ({section['wall_ratio_to_baseline']}x "
        f"{BASELINE_WALL_S} s); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(
        f"matched {figures['matched']}/{figures['orders']}, settled {figures['settled']}, refunded "
        f"{figures['refunded']}, slashed {figures['slashed']}, disputes {figures['disputes']}, rerouted "
        f"{figures['rerouted']}, SLA {figures['sla_compliance']}; checks "
        f"{'all passed' if outcome.ok else 'FAILED'} ({checks['independent_check_agree']}/"
        f"{checks['independent_check_figures']} figures agree with the chain)"
    )
    print(f"wrote {path}")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
