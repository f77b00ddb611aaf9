"""A replay's deals after the match: every lifecycle call (start, complete, settle, dispute, resolve,
timeout) with the status, payout and slash its events report, in the order a round takes them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from web3.logs import DISCARD

from suanwang.chain.states import DealCall
from suanwang.content import compute_cid
from suanwang.replay.members import top_up
from suanwang.replay.records import FINAL, STATUS, DealState

if TYPE_CHECKING:
    from suanwang.replay.runner import Replay


def transition(r: Replay, party: str, function: str, d: DealState, *args: Any) -> Any:
    if function == "resolve":  # the arbiter's ruling: not a DealCall, its own typed method
        call = r.market.resolve(d.id, d.packed, *args)
    else:
        call = r.market.deal_call(DealCall(function), d.id, d.packed, *args)
    receipt = r.tx(party, function, call, reuse_estimate=True)
    changed = False
    for e in r.market.contract.events.DealStatusChanged().process_receipt(receipt, errors=DISCARD):
        if "0x" + bytes(e["args"]["id"]).hex() == d.id:
            d.status, d.deadline = STATUS[int(e["args"]["status"])], int(e["args"]["deadline"])
            changed = True
    # Completed and Settled announce their status themselves (no DealStatusChanged for them); a payout
    # after a ruling for the buyer comes with a DealStatusChanged to Refunded, which stands.
    for e in r.market.contract.events.Completed().process_receipt(receipt, errors=DISCARD):
        if "0x" + bytes(e["args"]["id"]).hex() == d.id:
            d.status, d.deadline = "completed", int(e["args"]["deadline"])
    for e in r.market.contract.events.Disputed().process_receipt(receipt, errors=DISCARD):
        if "0x" + bytes(e["args"]["id"]).hex() == d.id:
            d.bond = int(e["args"]["bond"])
    for e in r.market.contract.events.Settled().process_receipt(receipt, errors=DISCARD):
        if "0x" + bytes(e["args"]["id"]).hex() == d.id:
            if not changed:
                d.status, d.deadline = "settled", 0
            d.compute_paid, d.platform_paid = int(e["args"]["computeFee"]), int(e["args"]["platformFee"])
            d.transit_paid, d.bond = int(e["args"]["transitTotal"]) > 0, 0
    if function in ("timeout", "resolve") and r.market.contract.events.Slashed().process_receipt(
        receipt, errors=DISCARD
    ):
        d.slashed = True
        top_up(r, d.node.owner)
    return receipt


def result_cid(deal_id: str) -> str:
    """The CID of the result document the lifecycle's FollowJobs writes for a job that ran to its end with
    exit code 0 and no output (the replay runs no command)."""
    document = {
        "deal": deal_id,
        "exit_code": 0,
        "reason": None,
        "output": compute_cid(b""),
        "output_bytes": 0,
        "output_truncated": False,
    }
    return compute_cid(json.dumps(document, sort_keys=True).encode())


def end_deal(r: Replay, d: DealState) -> None:
    """The deal no longer holds capacity or bandwidth (completed or final)."""
    if d.id in r.engine.reservations:
        r.engine.release(d.id)
    if d.reservation is not None:
        r.network.release(d.reservation)
        d.reservation = None


def lifecycle(r: Replay, chain_now: int) -> None:
    open_deals = [d for d in r.deals.values() if d.status not in FINAL]
    # timeouts (the matcher calls them; anyone may)
    for d in open_deals:
        if d.status in ("proposed", "accepted", "started", "disputed") and chain_now > d.deadline:
            before = d.status
            transition(r, r.founder.name, "timeout", d)
            r.counts["timed_out"] += 1
            end_deal(r, d)
            r.note(
                f"deal {d.id[:10]} on {d.node.label} timed out from {before}"
                + (" (seller slashed)" if d.slashed else "")
            )
    # arbitration: by the arbiter the chain drew for the deal (none yet until a block after the dispute;
    # none at all when no ARBITER member is eligible, and then the dispute times out split in half)
    for d in open_deals:
        if d.status == "disputed" and d.dispute is not None:
            _named, seller_wins = d.dispute
            drawn = r.market.arbiter_of(d.id, d.packed)
            arbiter = r.by_address.get(drawn)
            if arbiter is None:
                continue
            transition(r, arbiter, "resolve", d, seller_wins)
            r.counts["resolved"] += 1
            r.note(
                f"{arbiter} (drawn) resolved the dispute on {d.id[:10]}: "
                + ("seller wins, paid, and the buyer's bond" if seller_wins else "buyer wins, compute refunded")
            )
    # settlement or disputes
    for d in open_deals:
        if d.status != "completed":
            continue
        queue = r.pending_disputes.get(d.plan.buyer)
        if queue and not d.valueless and r.parties[queue[0][0]].address not in (d.deal["buyer"], d.deal["seller"]):
            arbiter, seller_wins, _ = queue.pop(0)
            d.dispute = (arbiter, seller_wins)
            transition(r, d.plan.buyer, "dispute", d)
            r.counts["disputes"] += 1
            r.note(f"{d.plan.buyer} disputed deal {d.id[:10]} on {d.node.label}")
        else:
            transition(r, d.plan.buyer, "settle", d)
    # completion
    for d in open_deals:
        if (
            d.status == "started"
            and not d.node.failed
            and d.started_at is not None
            and chain_now >= d.started_at + int(d.deal["duration"])
        ):
            transition(r, d.node.owner, "complete", d, result_cid(d.id))
            end_deal(r, d)


def start_accepted(r: Replay, chain_now: int) -> None:
    for d in r.deals.values():
        if d.status == "accepted" and not d.node.failed:
            transition(r, d.node.owner, "start", d)
            d.started_at = chain_now
