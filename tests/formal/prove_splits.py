"""Proofs of the fee-split arithmetic for every input (issue 9), run by `make fuzz`.

Two provers, each where it can finish:
- halmos on the compiled bytecode (tests/formal/SplitsProofs.t.sol): the slash split and the remainder rule,
  and that nothing bills nothing. Every path of the real code, every 256-bit input.
- z3 on an integer model of the rules in contracts/libraries/Splits.sol and Market.sol (the bill checks,
  the payout, the refund and slash): the properties whose bytecode queries multiply and divide by a
  constant, which no available solver decides bit-precisely (z3, yices and bitwuzla all time out on
  `q = x / 3600000 implies q * 3600000 <= x`, even at 64 bits). The model is the Solidity expressions
  over unbounded integers with each input's range as the contracts enforce it; proving that no
  intermediate leaves the 256-bit range is what makes the model's arithmetic the EVM's.

Each property is stated as a claim and proved by showing its negation unsatisfiable. The figures go to
bench/results/reliability.json (section "formal"); the exit status is non-zero unless all are proved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import z3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.support.report import record  # noqa: E402

WORD = 2**256
BPS = 10_000
MS_PER_HOUR_MCU = 1000 * 3600  # Splits.MS_PER_HOUR_MCU
MAX_FEE_BPS = 2000  # Federation.MAX_FEE_BPS
MAX_PRICE = 2**96 - 1  # NodeRegistry: the price field is 96 bits (PriceTooHigh above)
MAX_CLASS_MCU = 2**48 - 1  # NodeRegistry.MAX_CAPACITY_MCU; a match asks at most the free capacity
MAX_DURATION = 2**32 - 1  # Order.duration is uint32
U128 = 2**128  # bill fees, Order.maxTotal and escrow balances are uint128
MAX_TRANSIT = 8  # Market.MAX_TRANSIT
SOLVER_TIMEOUT_MS = 120_000


def floor_div(a, b):
    """Solidity's `/` on unsigned integers (z3's Int division is floor division for a >= 0, b > 0)."""
    return a / b


def in_range(x, hi: int):
    return z3.And(x >= 0, x <= hi)


@dataclass
class Proof:
    name: str
    claim: str
    build: Callable[[], tuple[list, object]]  # (assumptions, conclusion)


def compute_fee_inputs():
    price, logic, parallel, neural, duration = z3.Ints("price logic parallel neural duration")
    ranges = [in_range(price, MAX_PRICE), in_range(duration, MAX_DURATION)]
    ranges += [in_range(c, MAX_CLASS_MCU) for c in (logic, parallel, neural)]
    return price, logic + parallel + neural, duration, ranges


def _compute_fee_no_overflow():
    price, mcu, duration, ranges = compute_fee_inputs()
    # Splits.computeFee evaluates (price * mcu) * duration with checked multiplication.
    return ranges, z3.And(price * mcu < WORD, price * mcu * duration < WORD)


def _compute_fee_rounds_down():
    price, mcu, duration, ranges = compute_fee_inputs()
    exact = price * mcu * duration
    fee = floor_div(exact, MS_PER_HOUR_MCU)
    return ranges, z3.And(fee * MS_PER_HOUR_MCU <= exact, exact < (fee + 1) * MS_PER_HOUR_MCU)


def _platform_fee_bounded():
    amount, bps = z3.Ints("amount bps")
    fee = floor_div(amount * bps, BPS)
    # A billed compute fee is a uint128 (Bill.computeFee); the rate is capped by the Federation.
    ranges = [in_range(amount, U128 - 1), in_range(bps, MAX_FEE_BPS)]
    return ranges, z3.And(amount * bps < WORD, fee >= 0, fee * BPS <= amount * MAX_FEE_BPS, fee <= amount)


def _fees(n: int, prefix: str):
    return [z3.Int(f"{prefix}{i}") for i in range(n)]


def _bill_total_fits():
    compute, platform = z3.Ints("compute platform")
    transit = _fees(MAX_TRANSIT, "transit")
    ranges = [in_range(f, U128 - 1) for f in (compute, platform, *transit)]
    total = compute + platform + sum(transit)
    # Market._checkBill adds the transit fees in unchecked assembly: the sum must stay below 2**256.
    return ranges, total < 2**132


def _settlement_conserves():
    """A matched deal debits the bill's total from the buyer; its payout (MarketBase._payout) pays the seller
    and the platform their fees prorated to the seconds used (halved when no arbiter ruled, nothing when the
    buyer won its dispute), each transit operator its fee (unless an SLA breach was reported) and refunds the
    rest: every part is non-negative, none exceeds what was billed for it, and they sum to the total
    exactly, for any n <= 8 transit fees, any seconds used within the duration and every outcome."""
    claims, ranges = [], []
    compute, platform, used, duration = z3.Ints("compute platform used duration")
    halved, buyer_won, breached = z3.Bools("halved buyer_won breached")
    ranges += [in_range(compute, U128 - 1), in_range(platform, U128 - 1), in_range(duration, MAX_DURATION),
               duration >= 1, in_range(used, MAX_DURATION), used <= duration]
    prorated_compute = floor_div(compute * used, duration)
    prorated_platform = floor_div(platform * used, duration)
    compute_paid = z3.If(buyer_won, 0, z3.If(halved, prorated_compute / 2, prorated_compute))
    platform_paid = z3.If(buyer_won, 0, z3.If(halved, prorated_platform / 2, prorated_platform))
    for n in range(MAX_TRANSIT + 1):
        transit = _fees(n, f"t{n}_")
        ranges += [in_range(f, U128 - 1) for f in transit]
        transit_total = sum(transit)
        transit_paid = z3.If(breached, 0, transit_total)
        debited = compute + platform + transit_total  # Market.dealTotal
        refunded = compute - compute_paid + platform - platform_paid + transit_total - transit_paid
        claims.append(z3.And(
            compute_paid + platform_paid + transit_paid + refunded == debited,
            refunded >= 0, compute_paid <= compute, platform_paid <= platform,
            # No intermediate product leaves 256 bits: fee < 2**128 times seconds < 2**32.
            compute * used < WORD, platform * used < WORD,
        ))
    return ranges, z3.And(*claims)


def _posted_lock_returns_the_excess():
    locked, total, max_total = z3.Ints("locked total max_total")
    # A posted order locks maxTotal (stage >= 2); a match passes only with total <= maxTotal.
    ranges = [in_range(max_total, U128 - 1), locked == max_total, in_range(total, max_total)]
    refund = locked - total  # Market._fund credits prepaid - total
    return ranges, z3.And(refund >= 0, refund + total == locked)


def _refund_and_slash():
    """A seller that misses its start or delivery deadline: the buyer gets the deal's total back and half of
    the deal's stake lock, the platform the rest; the lock (the compute fee, taken out of the seller's
    unlocked stake at the match, so always there) is split exactly, and the seller's unlocked stake is
    untouched by the slash."""
    compute, spare = z3.Ints("compute spare")
    ranges = [in_range(compute, U128 - 1), spare >= compute, spare < 2**95]  # Market._fund: spare >= lock
    lock = compute
    spare_after_match = spare - lock
    to_buyer = floor_div(lock, 2)  # Splits.slashShares
    to_platform = lock - to_buyer
    return ranges, z3.And(
        to_buyer + to_platform == lock,
        to_buyer <= to_platform,
        to_platform - to_buyer <= 1,
        spare_after_match >= 0,
    )


PROOFS = [
    Proof("compute fee: no multiplication overflows in the contracts' domain",
          "price < 2**96, each class < 2**48, duration < 2**32: price*mcu and price*mcu*duration < 2**256",
          _compute_fee_no_overflow),
    Proof("compute fee: rounded down, by less than one token unit",
          "fee*3600000 <= price*mcu*duration < (fee+1)*3600000", _compute_fee_rounds_down),
    Proof("platform fee: at most the rate cap, no overflow",
          "compute fee < 2**128, bps <= 2000: fee*10000 <= compute*2000 and compute*bps < 2**256",
          _platform_fee_bounded),
    Proof("bill total: the unchecked sum of up to 8 transit fees cannot overflow",
          "compute, platform and 8 fees < 2**128: total < 2**132", _bill_total_fits),
    Proof("settlement conserves the bill", "for n = 0..8 transit fees, any seconds used <= duration, every "
          "outcome (settled, halved, buyer won, SLA breached): seller + platform + operators + refund == total",
          _settlement_conserves),
    Proof("posted order: the excess lock is returned exactly", "total <= maxTotal == locked: refund >= 0, "
          "refund + total == locked", _posted_lock_returns_the_excess),
    Proof("refund and slash split", "the deal's lock (its compute fee) is split: buyer half rounded down, "
          "platform the rest; the match left the unlocked stake non-negative", _refund_and_slash),
]


def prove(proof: Proof) -> dict:
    assumptions, conclusion = proof.build()
    solver = z3.Solver()
    solver.set("timeout", SOLVER_TIMEOUT_MS)
    solver.add(*assumptions)
    solver.add(z3.Not(conclusion))
    started = time.monotonic()
    verdict = solver.check()
    seconds = round(time.monotonic() - started, 3)
    status = "proved" if verdict == z3.unsat else "refuted" if verdict == z3.sat else "unknown"
    result = {"property": proof.name, "claim": proof.claim, "status": status, "seconds": seconds}
    if verdict == z3.sat:
        result["counterexample"] = str(solver.model())
    return result


def run_halmos() -> dict:
    """halmos over tests/formal/SplitsProofs.t.sol (its own build folder, so the invariant build is untouched)."""
    build = ROOT / "cache" / "formal"
    env = dict(os.environ, FOUNDRY_TEST="tests/formal", FOUNDRY_OUT=str(build / "out"),
               FOUNDRY_CACHE_PATH=str(build / "cache"))
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "halmos.json"
        started = time.monotonic()
        command = [str(ROOT / ".venv" / "bin" / "halmos"), "--root", str(ROOT), "--forge-build-out",
                   str(build / "out"), "--contract", "SplitsProofs", "--solver", "z3",
                   "--solver-timeout-assertion", f"{SOLVER_TIMEOUT_MS // 1000}s", "--json-output", str(report)]
        done = subprocess.run(command, env=env, cwd=ROOT, text=True, capture_output=True)
        seconds = round(time.monotonic() - started, 3)
        print(done.stdout[-4000:], end="")
        if not report.exists():
            print(done.stderr[-4000:], file=sys.stderr)
            return {"exit_code": done.returncode, "seconds": seconds, "properties": []}
        data = json.loads(report.read_text())
    properties = []
    for tests in data["test_results"].values():
        for test in tests:
            properties.append({"property": test["name"], "status": "proved" if test["exitcode"] == 0 else "failed",
                               "paths": test["num_paths"][0], "seconds": round(test["time"][0], 3)})
    return {"exit_code": data["exitcode"], "seconds": seconds, "properties": properties}


def main() -> int:
    halmos = run_halmos()
    model = [prove(p) for p in PROOFS]
    for result in model:
        print(f"[{result['status'].upper()}] {result['property']} ({result['seconds']} s)")
    proved_halmos = sum(p["status"] == "proved" for p in halmos["properties"])
    proved_model = sum(r["status"] == "proved" for r in model)
    figures = {
        "command": "make fuzz",
        "halmos_bytecode": {"version": _halmos_version(), "solver": "z3", **halmos,
                            "proved": proved_halmos},
        "z3_integer_model": {"z3_version": z3.get_version_string(), "properties": model, "proved": proved_model},
        "not_proved_bit_precisely": "the compute and platform fee divisions (by 3,600,000 and 10,000): every "
                                    "available solver times out; proved on the integer model instead",
    }
    if "--no-record" not in sys.argv:  # make test checks the proofs; recording the figures is make fuzz's job
        record("reliability", "formal", figures)
    all_proved = (halmos["exit_code"] == 0 and halmos["properties"]
                  and proved_halmos == len(halmos["properties"]) and proved_model == len(model))
    print(f"formal: {proved_halmos} bytecode properties (halmos), {proved_model}/{len(model)} model properties (z3)")
    return 0 if all_proved else 1


def _halmos_version() -> str:
    from importlib.metadata import version

    return version("halmos")


if __name__ == "__main__":
    sys.exit(main())
