"""A replay's match round: the engine places each arriving order, the lifecycle's Biller prices its path
and bills it exactly at the tariffs on chain, and the signed orders go to ``matchSignedBatch`` in batches;
every order the market matches becomes a tracked deal with its lease reserved on the network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from suanwang.chain.bill import DEAL_FIELDS, Bill, Seats, pack_entry, unpack_deal
from suanwang.chain.market import order_id as digest_of
from suanwang.chain.market import sign_order
from suanwang.errors import InfeasibleError, SuanwangError
from suanwang.lifecycle.marketplace import Marketplace
from suanwang.matching.market import MarketNode, MarketOrder, Unplaced
from suanwang.replay.chain import ReplayError
from suanwang.replay.records import STATUS, DealState, NodeState, Plan
from suanwang.storage.models import Node
from suanwang.storage.repositories import Repositories

if TYPE_CHECKING:
    from suanwang.replay.runner import Replay


def billing(r: Replay) -> Marketplace:
    """What the lifecycle's Biller prices on: the network as it stands (rebuilt when a link fails), and the
    account paid for each topology's transit, only once its operator party is a member (the Biller refuses
    a path across a topology with no account: no operator outside the federation carries a lease)."""
    accounts = {op.name: r.parties[op.paid_to].address for op in r.s.operators if r.parties[op.paid_to].member}
    routers = {"0x" + router.router_id.hex(): router.index for router in r.network.routers}
    return Marketplace(r.network, accounts, r.s.lease_bandwidth_gbps, routers)


def transit_estimate(r: Replay, order: MarketOrder, node: MarketNode) -> int:
    """The engine's transit fee of `order` on `node`: the Biller's, kept for the match round (the engine
    asks for every candidate node, and many orders share an access point, a node and a shape)."""
    key = (
        order.access_point,
        node.router,
        node.operator,
        order.min_bandwidth_gbps,
        order.duration_s,
        order.max_latency_ms,
    )
    fee = r.transit_cache.get(key)
    if fee is None:
        fee = r.transit_cache[key] = r.biller.transit_of(order, node)
    return fee


def indexed_node(r: Replay, node_id: int) -> Node:
    """The node as the chain registered it (from the replay's index), which the Biller bills."""
    with r.deal_steps.ctx.sessions() as session:
        node = Repositories(session).nodes.get(node_id)
    if node is None:
        raise ReplayError(f"node {node_id} is not in the index")
    return node


def match_round(r: Replay, arrivals: list[Plan], chain_now: int) -> None:
    if not arrivals:
        return
    r.transit_cache.clear()
    r.biller.forget_tariffs()  # tariffs published since the last round
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
        try:
            bill, route = r.biller.bill_for(indexed_node(r, node.node_id), plan.order, plan.access_point, r.fee_bps)
        except SuanwangError as exc:  # over the order's transit or total limit
            r.engine.release(plan.id)
            plan.outcome, plan.reason = "unmatched", exc.message
            continue
        path = r.network.make_path([r.network.router_index(name) for name in route["path"]], srv6=False)
        ready.append((plan, bill, node, path))
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
    gbps = int(plan.order["minBandwidthMbps"]) / 1000 or r.s.lease_bandwidth_gbps
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
