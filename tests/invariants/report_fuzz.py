"""The long invariant campaign (`make fuzz`): every Foundry invariant at 1,000 runs x 100 calls, with its
figures (calls per invariant, calls and non-reverting calls per handler function) printed and recorded in
bench/results/reliability.json (section "invariants"), and the fuzz tests (the codec differentials among
them). The section's `handler_groups` sums issue 14's handler groups (posted orders, registry, stage
changes, fee changes, operator votes, the malicious matcher) in the market campaign named by
GROUPS_CAMPAIGN, per function and in all. Exits non-zero when a test fails, an invariant got fewer than
100,000 calls, or a handler group made no call that did not revert.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.support.report import record  # noqa: E402

RUNS, DEPTH = 1000, 100
MIN_CALLS = 100_000

# MarketHandler's functions by issue-14 handler group (tests/invariants/MarketHandler.sol).
HANDLER_GROUPS = {
    "posted_orders": ["postOrder", "cancelOrder", "expireOrder", "matchPosted"],
    "registry": ["registerNode", "updateNode", "pauseNode", "retireNode"],
    "stage_changes": ["advanceStage"],
    "fee_changes": ["setPlatformFee", "setTariff"],
    "operator_votes": ["proposeOperator", "proposeOperatorRemoval", "vote"],
    "malicious_matcher": ["maliciousMatch"],
}
# The campaign whose per-function figures the groups are read from (every market campaign runs the same
# handler; their figures differ only by chance).
GROUPS_CAMPAIGN = "invariant_eachPartyMovesByItsShare()"


def run_forge() -> dict:
    env = dict(os.environ, FOUNDRY_INVARIANT_RUNS=str(RUNS), FOUNDRY_INVARIANT_DEPTH=str(DEPTH))
    done = subprocess.run(["forge", "test", "--root", str(ROOT), "--json"], env=env, cwd=ROOT, text=True,
                          capture_output=True)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"forge test failed before reporting (exit {done.returncode})") from None


def summarize(results: dict) -> tuple[list[dict], list[dict], list[str]]:
    invariants, fuzz, failures = [], [], []
    for suite, data in results.items():
        for name, test in data["test_results"].items():
            if test["status"] != "Success":
                failures.append(f"{suite}:{name}: {test['reason']} {test.get('counterexample')}")
            kind = test["kind"]
            if "Invariant" in kind:
                figures = kind["Invariant"]
                handlers = {
                    target.rsplit(".", 1)[-1]: {"calls": m["calls"], "non_reverting": m["calls"] - m["reverts"]}
                    for target, m in sorted(figures.get("metrics", {}).items())
                }
                invariants.append({"invariant": name, "status": test["status"], "runs": figures["runs"],
                                   "calls": figures["calls"], "reverts": figures["reverts"], "handlers": handlers})
                if figures["calls"] < MIN_CALLS:
                    failures.append(f"{name}: {figures['calls']} calls, fewer than {MIN_CALLS}")
            elif "Fuzz" in kind:
                fuzz.append({"test": name, "status": test["status"], "runs": kind["Fuzz"]["runs"]})
    return invariants, fuzz, failures


def handler_groups(invariants: list[dict]) -> tuple[dict, list[str]]:
    campaign = next((inv for inv in invariants if inv["invariant"] == GROUPS_CAMPAIGN), None)
    if campaign is None:
        return {}, [f"{GROUPS_CAMPAIGN} did not run: no handler-group figures"]
    groups: dict[str, object] = {"campaign": GROUPS_CAMPAIGN}
    failures: list[str] = []
    for group, functions in HANDLER_GROUPS.items():
        per_function = {f: campaign["handlers"].get(f, {}).get("non_reverting", 0) for f in functions}
        total = sum(per_function.values())
        groups[group] = {"non_reverting": total, "functions": per_function}
        if total == 0:
            failures.append(f"handler group {group}: no call that did not revert")
    return groups, failures


def main() -> int:
    started = time.monotonic()
    invariants, fuzz, failures = summarize(run_forge())
    groups, group_failures = handler_groups(invariants)
    failures += group_failures
    seconds = round(time.monotonic() - started, 1)
    for inv in invariants:
        print(f"{inv['status']:8} {inv['invariant']}: {inv['calls']:,} calls in {inv['runs']:,} runs, "
              f"{inv['reverts']:,} reverted")
    for inv in invariants:
        if inv["invariant"] == GROUPS_CAMPAIGN:
            print(f"handler function          calls  non-reverting   ({GROUPS_CAMPAIGN})")
            for name, h in inv["handlers"].items():
                print(f"  {name:22} {h['calls']:8,} {h['non_reverting']:14,}")
    for group, figures in groups.items():
        if isinstance(figures, dict):
            print(f"handler group {group:18} {figures['non_reverting']:8,} non-reverting  {figures['functions']}")
    for test in fuzz:
        print(f"{test['status']:8} {test['test']}: {test['runs']} fuzz runs")
    record("reliability", "invariants", {
        "command": "make fuzz",
        "runs": RUNS, "depth": DEPTH, "seconds": seconds,
        "invariants": invariants, "handler_groups": groups, "fuzz_tests": fuzz,
        "failing": len(failures),
    })
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures or not invariants else 0


if __name__ == "__main__":
    sys.exit(main())
