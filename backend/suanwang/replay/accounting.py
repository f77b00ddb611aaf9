"""A replay's accounting: every party's holdings, the samples taken each round, the conservation
checks (no token created or lost, the escrow owing exactly what it holds) and the report's figures."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from suanwang.replay.records import FINAL, OPERATOR, ReplayResult, Sample
from suanwang.replay.scenario import TOKEN

if TYPE_CHECKING:
    from suanwang.replay.runner import Replay


def holdings(r: Replay) -> dict[str, int]:
    """Wallet tokens + escrow balance + stake of every party (token base units)."""
    token, market = r.chain.token, r.market
    return {
        name: token.balance_of(p.address) + market.balance_of(p.address) + market.stake_of(p.address)
        for name, p in r.parties.items()
    }


def token_balances(r: Replay) -> dict[str, int]:
    holders = {
        **{n: p.address for n, p in r.parties.items()},
        **r.extra_accounts,
        "Market (escrow)": r.market.address,
    }
    return {name: r.chain.token.balance_of(addr) for name, addr in holders.items()}


def sample(r: Replay) -> None:
    cap = r.engine.state.capacity.sum()
    util = float(r.engine.state.reserved.sum() / cap) if cap else 0.0
    reserved = sum(d.gbps * max(1, len(d.path) - 1) for d in r.deals.values() if d.reservation is not None)
    r.samples.append(
        Sample(
            r.now,
            holdings(r),
            r.counts["submitted"],
            r.counts["matched"],
            util,
            reserved,
            sum(1 for d in r.deals.values() if d.status not in FINAL),
        )
    )


def conservation_checks(
    r: Replay, before: dict[str, int], after: dict[str, int], supply_before: int, supply_after: int
) -> dict[str, Any]:
    market = r.market
    holders = [p.address for p in r.parties.values()] + list(r.extra_accounts.values())
    credits = sum(market.balance_of(a) for a in holders)
    stakes = sum(market.stake_of(a) for a in holders)
    fees = market.platform_fees()
    # Open valued deals hold the buyer's bill and bond and the seller's stake lock (its compute fee).
    open_valued = [d for d in r.deals.values() if d.status not in FINAL and not d.valueless]
    locked = sum(d.total + d.bond + int(d.deal["computeFee"]) for d in open_valued)
    escrow_tokens = after["Market (escrow)"]
    checks = {
        "sum of balances before == after": (sum(before.values()), sum(after.values())),
        "total supply before == after": (supply_before, supply_after),
        "sum of balances == total supply": (sum(after.values()), supply_after),
        "escrow: credits + unlocked stakes + fees + locked (bills, bonds, stake locks) == market's token balance": (
            credits + stakes + fees + locked,
            escrow_tokens,
        ),
    }
    return {
        "checks": {k: {"left": str(a), "right": str(b), "ok": a == b} for k, (a, b) in checks.items()},
        "ok": all(a == b for a, b in checks.values()),
        "credits": str(credits),
        "stakes": str(stakes),
        "platform_fees": str(fees),
        "locked": str(locked),
        "before": {k: str(v) for k, v in before.items()},
        "after": {k: str(v) for k, v in after.items()},
    }


def figures(r: Replay, result: ReplayResult) -> dict[str, Any]:
    deals = result.deals
    fed = r.chain.federation
    settled = [d for d in deals if d.status == "settled"]
    transit: dict[str, int] = defaultdict(int)
    for d in deals:  # paid out (settled, or refunded by a ruling for the buyer: transit is paid then too)
        if not d.valueless and d.transit_paid:
            for addr, fee in d.transit.items():
                transit[r.by_address.get(addr, addr)] += fee
    internal = [
        d for d in settled if not d.valueless and r.parties[d.plan.buyer].internal and r.parties[d.node.owner].internal
    ]
    bounded = [d for d in deals if d.sla_met is not None]
    operators = sum(1 for p in r.parties.values() if fed.roles_of(p.address) & OPERATOR)
    submitted = r.counts["submitted"]
    moved = sum(abs(result.after[n] - result.before[n]) for n in result.before)
    return {
        "stage": fed.stage(),
        "operators": operators,
        "members_admitted_by_vote": r.counts["admitted_by_vote"],
        "orders": submitted,
        "matched": r.counts["matched"],
        "match_rate": round(r.counts["matched"] / submitted, 4) if submitted else 0.0,
        "settled": len(settled),
        "refunded": sum(1 for d in deals if d.status == "refunded"),
        "slashed": sum(1 for d in deals if d.slashed),
        "disputes": r.counts["disputes"],
        "rerouted": r.counts["rerouted"],
        "sla_compliance": round(sum(1 for d in bounded if d.sla_met) / len(bounded), 4) if bounded else 1.0,
        "valueless_deals": r.counts["valueless"],
        "valued_deals": r.counts["valued"],
        "value_moved": moved / TOKEN,
        "transit_operators_paid": sum(1 for v in transit.values() if v),
        "transit_revenue": {k: str(v) for k, v in sorted(transit.items())},
        "internal_settled": len(internal),
        "open_deals": sum(1 for d in deals if d.status not in FINAL),
        "conservation": bool(result.conservation["ok"]),
        "platform_fees_accrued": str(sum(d.platform_paid for d in deals if not d.valueless)),
        "compute_paid": str(sum(d.compute_paid for d in deals if not d.valueless)),
        "timed_out": r.counts["timed_out"],
        "failed_nodes": r.counts["failed_nodes"],
        "nodes": sum(1 for n in r.nodes if n.registered),
        "final_holdings": {k: str(v) for k, v in result.after.items()},
        "unmatched_reasons": dict(
            Counter(_first_sentence(p.reason) for p in result.plans if p.outcome == "unmatched").most_common(6)
        ),
    }


def _first_sentence(text: str) -> str:
    return (text.split(";")[0].split(". ")[0])[:120]
