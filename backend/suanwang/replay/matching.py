"""A replay's match round: the engine places each arriving order, the route to its node prices the
transit lines, the exact bill is built, and the signed orders go to ``matchSignedBatch`` in batches;
every order the market matches becomes a tracked deal with its lease reserved on the network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from suanwang.chain.bill import DEAL_FIELDS, Bill, Seats, make_bill, pack_entry, transit_fee, unpack_deal
from suanwang.chain.market import order_id as digest_of
from suanwang.chain.market import sign_order
from suanwang.errors import InfeasibleError
from suanwang.matching.market import MarketNode, MarketOrder, Unplaced
from suanwang.replay.records import STATUS, DealState, NodeState, Plan

if TYPE_CHECKING:
    from suanwang.replay.runner import Replay

UNROUTABLE = 2**120  # a transit estimate no order can afford: the engine's bill filter turns the node away


def lease_gbps(r: Replay, order: dict[str, Any]) -> float:
    return int(order["minBandwidthMbps"]) / 1000 or r.s.lease_bandwidth_gbps


def priced_route(
    r: Replay, access_point: int, router: int, order: dict[str, Any], node_operator: str
) -> tuple[int, Any]:
    """(transit fee total, (path, fee lines)) of serving `order` from `access_point` at `router` on a
    node whose network operator is the party `node_operator`, or (UNROUTABLE, reason) when no path
    meets the SLA or it crosses an operator that is not a member. A fee line for each operator party
    paid on the path and for the node's operator, each at its published tariff for the order's
    bandwidth and whole duration (as the market checks)."""
    key = (
        access_point,
        router,
        int(order["minBandwidthMbps"]),
        int(order["duration"]),
        int(order["maxLatencyMs"]),
        node_operator,
    )
    cached = r.transit_cache.get(key)
    if cached is not None:
        return cached
    gbps = lease_gbps(r, order)
    try:
        path = r.network.path(
            access_point,
            router,
            max_latency_ms=float(order["maxLatencyMs"]) or None,
            min_bandwidth_gbps=gbps,
            srv6=False,
        )
    except InfeasibleError as exc:
        answer: tuple[int, Any] = (UNROUTABLE, exc.message)
    else:
        payees: list[str] = []
        for operator in path.operators:
            name = r.paid_to[operator]
            if not r.parties[name].member:
                answer = (UNROUTABLE, f"the path crosses {operator}, whose operator is not a member")
                break
            if name not in payees:
                payees.append(name)
        else:
            if node_operator not in payees:
                payees.append(node_operator)
            mbps, duration = int(order["minBandwidthMbps"]), int(order["duration"])
            lines = [(r.parties[n].address, transit_fee(r.tariffs.get(n, 0), mbps, duration)) for n in payees]
            answer = (sum(f for _, f in lines), (path, lines))
    r.transit_cache[key] = answer
    return answer


def transit_estimate(r: Replay, order: MarketOrder, node: MarketNode) -> int:
    plan = r.plan_by_id[order.order_id]
    node_operator = r.by_address[node.operator]
    return priced_route(r, order.access_point, node.router, plan.order, node_operator)[0]


def match_round(r: Replay, arrivals: list[Plan], chain_now: int) -> None:
    if not arrivals:
        return
    r.transit_cache.clear()
    market_addr = r.market.address
    ready: list[tuple[Plan, Bill, NodeState, Any]] = []
    for plan in arrivals:
        buyer = r.parties[plan.buyer]
        plan.order["buyer"] = buyer.address
        plan.order["expiry"] = chain_now + 2 * r.s.step + 600
        plan.order["epoch"] = r.epoch
        plan.id = digest_of(plan.order, r.chain_id, market_addr)
        r.plan_by_id[plan.id] = plan
        r.counts["submitted"] += 1
        if not buyer.member:
            plan.outcome, plan.reason = "unmatched", f"{plan.buyer} is not a member yet"
            continue
        ap = r.network.router_index(plan.access_point)
        mo = MarketOrder(
            order_id=plan.id,
            buyer=buyer.address,
            logic_mcu=plan.order["logicMcu"],
            parallel_mcu=plan.order["parallelMcu"],
            neural_mcu=plan.order["neuralMcu"],
            memory_mib=plan.order["memoryMib"],
            gpu_model=plan.order["gpuModel"],
            gpu_count=plan.order["gpuCount"],
            min_tier=plan.order["minTier"],
            duration_s=plan.order["duration"],
            max_price_per_cu_hour=plan.order["maxPricePerCuHour"],
            max_total=plan.order["maxTotal"],
            access_point=ap,
            max_latency_ms=float(plan.order["maxLatencyMs"]),
            min_bandwidth_gbps=plan.order["minBandwidthMbps"] / 1000,
        )
        placed = r.engine.place(mo)
        if isinstance(placed, Unplaced):
            plan.outcome, plan.reason = "unmatched", placed.explanation.text or "no node is offered yet"
            continue
        node = r.node_by_id[placed.node_id]
        _fee, route = priced_route(r, ap, node.router_index, plan.order, node.operator_party)
        bill = make_bill(plan.order, node.node_id, node.price, r.fee_bps, route[1])
        if sum(bill.transit_fees) > plan.order["maxTransit"]:
            r.engine.release(plan.id)
            plan.outcome = "unmatched"
            plan.reason = f"transit {sum(bill.transit_fees)} over the limit {plan.order['maxTransit']}"
            continue
        if bill.total > plan.order["maxTotal"]:
            r.engine.release(plan.id)
            plan.outcome, plan.reason = "unmatched", f"bill {bill.total} over the limit {plan.order['maxTotal']}"
            continue
        ready.append((plan, bill, node, route[0]))
    seats = Seats.of(r.market.transit_operators())
    for start in range(0, len(ready), r.s.batch_size):
        chunk = ready[start : start + r.s.batch_size]
        entries = b"".join(
            pack_entry(
                plan.order,
                sign_order(plan.order, r.parties[plan.buyer].key, r.chain_id, market_addr),
                bill.packed(seats),
            )
            for plan, bill, _node, _path in chunk
        )
        # A batch's gas limit given, not estimated: a failed entry is a MatchFailed event, never a revert.
        receipt = r.tx(
            r.founder.name,
            None,
            r.market.match_signed_batch(entries),
            gas=400_000 + 250_000 * len(chunk),
        )
        failed = r.market.match_failures(receipt)
        matched = {
            deal_id: unpack_deal(deal_id, packed, seats) | {"packed": packed}
            for deal_id, packed in r.market.matched_deals(receipt, [plan.id for plan, *_ in chunk])
        }
        if matched:
            r.gas["match (per order, batched)"].extend([int(receipt["gasUsed"]) // len(chunk)] * len(chunk))
        for plan, bill, node, path in chunk:
            if plan.id in failed or plan.id not in matched:
                r.engine.release(plan.id)
                reason = failed.get(plan.id)
                plan.outcome = "unmatched"
                plan.reason = ("the market refused: " + r.errors.decode(reason).message) if reason else "no event"
                continue
            record_deal(r, plan, bill, node, path, matched[plan.id])


def record_deal(r: Replay, plan: Plan, bill: Bill, node: NodeState, path: Any, fields: dict[str, Any]) -> None:
    """Tracks the deal a Matched event announced (`fields`: its packed deal unpacked, and `packed`)."""
    plan.outcome = "matched"
    r.counts["matched"] += 1
    valueless = bool(fields["valueless"])
    deal = {name: fields[name] for name in DEAL_FIELDS}
    status, deadline = int(fields["status"]), int(fields["deadline"])
    gbps = lease_gbps(r, plan.order)
    d = DealState(
        plan.id,
        plan,
        node,
        deal,
        bytes(fields["packed"]),
        STATUS[status],
        deadline,
        valueless,
        bill.total,
        dict(zip(bill.transit_operators, bill.transit_fees, strict=True)),
        float(path.latency_ms),
        list(path.router_indices),
        gbps,
    )
    bound = float(plan.order["maxLatencyMs"])
    d.sla_met = None if not bound else d.latency_ms <= bound
    try:
        d.reservation = r.network.reserve(path, gbps)
    except InfeasibleError:
        d.reservation = None
        r.counts["lease_unreserved"] += 1
    r.deals[d.id] = d
    r.counts["valueless" if valueless else "valued"] += 1
