"""Chain-derived tables as projections of indexed events.

Every change to ``members`` and ``nodes`` passes through ``apply_event``, so rebuilding them after a
reorg is the same code replayed over the surviving events (``rebuild``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from suanwang.chain.bill import DEAL_FIELDS, DEAL_HEAD_BYTES, Seats, unpack_deal
from suanwang.states import FINAL_DEAL_STATUSES as _FINAL
from suanwang.states import DealStatus
from suanwang.storage.models import Deal, Event, Member, Node, OperatorSeat, Settlement, TransitTariff

NODE_STATUS_NAMES = ("none", "active", "paused", "retired")


def _node_fields(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "logic_mcu": int(spec["logicMcu"]),
        "parallel_mcu": int(spec["parallelMcu"]),
        "neural_mcu": int(spec["neuralMcu"]),
        "memory_mib": int(spec["memoryMib"]),
        "gpu_model": int(spec["gpuModel"]),
        "gpu_count": int(spec["gpuCount"]),
        "tier": int(spec["tier"]),
        "price_per_cu_hour": str(int(spec["pricePerCuHour"])),
        "operator": str(spec["operator"]),
        "router": str(spec["router"]),
        "locator": f"{spec['locator']}/{int(spec['locatorLength'])}",
        "encryption_key": str(spec.get("encryptionKey") or "") or None,
    }


def _member_admitted(session: Session, event: Event) -> None:
    args = event.args
    member = session.get(Member, args["member"])
    if member is None:
        session.add(
            Member(
                address=args["member"],
                name=args["name"],
                roles=int(args["roles"]),
                active=True,
                joined_block=event.block_number,
            )
        )
    else:  # re-admitted after removal
        member.name, member.roles, member.active = args["name"], int(args["roles"]), True


def _member_roles_changed(session: Session, event: Event) -> None:
    member = session.get(Member, event.args["member"])
    if member is not None:
        member.roles = int(event.args["roles"])


def _member_removed(session: Session, event: Event) -> None:
    member = session.get(Member, event.args["member"])
    if member is not None:
        member.active = False


def _operator_seated(session: Session, event: Event) -> None:
    session.merge(OperatorSeat(seat=int(event.args["seat"]), address=event.args["operator"]))


def indexed_seats(session: Session) -> Seats:
    """The transit operators by seat, as indexed (OperatorSeated): what unpacks a deal and packs a bill."""
    return Seats(tuple(session.scalars(select(OperatorSeat.address).order_by(OperatorSeat.seat))))


def _node_registered(session: Session, event: Event) -> None:
    session.merge(
        Node(
            node_id=int(event.args["nodeId"]),
            owner=event.args["owner"],
            status="active",
            registered_block=event.block_number,
            updated_block=event.block_number,
            **_node_fields(event.args["spec"]),
        )
    )


def _node_updated(session: Session, event: Event) -> None:
    node = session.get(Node, int(event.args["nodeId"]))
    if node is not None:
        for key, value in _node_fields(event.args["spec"]).items():
            setattr(node, key, value)
        node.updated_block = event.block_number


def _node_pause_changed(session: Session, event: Event) -> None:
    node = session.get(Node, int(event.args["nodeId"]))
    if node is not None and node.status != "retired":
        node.status = "paused" if event.args["paused"] else "active"
        node.updated_block = event.block_number


def _node_retired(session: Session, event: Event) -> None:
    node = session.get(Node, int(event.args["nodeId"]))
    if node is not None:
        node.status = "retired"
        node.updated_block = event.block_number


# The on-chain status values by index, and the final ones: the chain's vocabulary (chain/states.py).
DEAL_STATUS_NAMES = tuple(status.value for status in DealStatus)
FINAL_DEAL_STATUSES = frozenset(status.value for status in _FINAL)


# A deal's fields by name (DEAL_FIELDS), unpacked from its Matched event's `deal` bytes. Every later call
# passes the id and those bytes back verbatim: they are kept too, as `packed` (hex), for deal_call_args.


def _matched(session: Session, event: Event) -> None:
    session.merge(_deal_row(session, event))


def _deal_row(session: Session, event: Event, seats: Seats | None = None) -> Deal:
    """The deal a Matched event projects; `seats` are the indexed seats when the caller has them."""
    packed = bytes.fromhex(event.args["deal"].removeprefix("0x"))
    # The seats are read only for a deal with transit operators (the byte after the head counts them;
    # IMarket.Matched).
    if not (len(packed) > DEAL_HEAD_BYTES and packed[DEAL_HEAD_BYTES]):
        seats = Seats(())
    elif seats is None:
        seats = indexed_seats(session)
    fields = unpack_deal(event.args["id"], packed, seats)
    deal = {name: fields[name] for name in DEAL_FIELDS}
    deal["packed"] = "0x" + event.args["deal"].removeprefix("0x")
    return Deal(
        id=event.args["id"],
        buyer=fields["buyer"],
        seller=fields["seller"],
        matcher=fields["matcher"],
        node_id=int(deal["nodeId"]),
        status=DEAL_STATUS_NAMES[int(fields["status"])],
        deadline=int(fields["deadline"]),
        deal=deal,
        valueless=bool(deal["valueless"]),
        result_cid=None,
        matched_block=event.block_number,
        updated_block=event.block_number,
    )


def deal_call_args(deal: dict[str, Any]) -> tuple[bytes, bytes]:
    """(id, deal bytes) of a projected deal: the first two arguments of every Market lifecycle call."""
    return bytes.fromhex(str(deal["id"]).removeprefix("0x")), bytes.fromhex(str(deal["packed"]).removeprefix("0x"))


def _deal_status_changed(session: Session, event: Event) -> None:
    deal = session.get(Deal, event.args["id"])
    if deal is not None:
        deal.status = DEAL_STATUS_NAMES[int(event.args["status"])]
        deal.deadline = int(event.args["deadline"])
        deal.updated_block = event.block_number


def _completed(session: Session, event: Event) -> None:
    """Completed also moves the deal's status (the market emits no DealStatusChanged for it)."""
    deal = session.get(Deal, event.args["id"])
    if deal is not None:
        deal.result_cid = event.args["resultCid"]
        deal.status, deal.deadline = "completed", int(event.args["deadline"])
        deal.used_seconds = int(event.args["usedSeconds"])
        deal.updated_block = event.block_number


def _disputed(session: Session, event: Event) -> None:
    """The buyer's bond (the status moves with the DealStatusChanged before it)."""
    deal = session.get(Deal, event.args["id"])
    if deal is not None:
        deal.dispute_bond = str(int(event.args["bond"]))
        deal.updated_block = event.block_number


def _sla_breached(session: Session, event: Event) -> None:
    """A transit operator of the deal reported a latency breach: its transit goes back to the buyer."""
    deal = session.get(Deal, event.args["id"])
    if deal is not None:
        deal.sla_breached = True
        deal.updated_block = event.block_number


def _transit_tariff_set(session: Session, event: Event) -> None:
    session.merge(
        TransitTariff(
            operator=event.args["operator"],
            seat=int(event.args["seat"]),
            per_gbps_hour=str(int(event.args["perGbpsHour"])),
            block_number=event.block_number,
        )
    )


def _settlement(session: Session, deal_id: str, block: int) -> Settlement:
    row = session.get(Settlement, deal_id)
    if row is None:
        deal = session.get(Deal, deal_id)
        row = Settlement(
            deal_id=deal_id,
            outcome="pending",
            compute_fee="0",
            transit_total="0",
            platform_fee="0",
            refunded="0",
            slashed_to_buyer="0",
            slashed_to_platform="0",
            valueless=bool(deal.valueless) if deal else False,
            block_number=block,
        )
        session.add(row)
    row.block_number = block
    return row


def _settled(session: Session, event: Event) -> None:
    """A payout: Settled moves the deal's status (the market emits no DealStatusChanged for it), except
    when an arbiter ruled for the buyer, where a DealStatusChanged to Refunded came just before it and
    the payout is that refund. The compute and platform fees are what was paid (prorated to the time
    used), `refunded` what went back to the buyer."""
    deal = session.get(Deal, event.args["id"])
    refunded_by_ruling = deal is not None and deal.status == "refunded"
    if deal is not None and not refunded_by_ruling:
        deal.status, deal.deadline, deal.updated_block = "settled", 0, event.block_number
    row = _settlement(session, event.args["id"], event.block_number)
    row.outcome = "refunded" if refunded_by_ruling else "settled"
    row.compute_fee = str(int(event.args["computeFee"]))
    row.transit_total = str(int(event.args["transitTotal"]))
    row.platform_fee = str(int(event.args["platformFee"]))
    row.refunded = str(int(event.args["refunded"]))
    row.valueless = bool(event.args["valueless"])


def _refunded(session: Session, event: Event) -> None:
    if session.get(Deal, event.args["id"]) is None:
        return  # a posted order refunded before any match: no deal to settle
    row = _settlement(session, event.args["id"], event.block_number)
    row.outcome = "refunded"
    row.refunded = str(int(row.refunded) + int(event.args["amount"]))


def _slashed(session: Session, event: Event) -> None:
    row = _settlement(session, event.args["id"], event.block_number)
    row.slashed_to_buyer = str(int(row.slashed_to_buyer) + int(event.args["toBuyer"]))
    row.slashed_to_platform = str(int(row.slashed_to_platform) + int(event.args["toPlatform"]))


HANDLERS: dict[str, Callable[[Session, Event], None]] = {
    "Matched": _matched,
    "DealStatusChanged": _deal_status_changed,
    "Completed": _completed,
    "Settled": _settled,
    "Refunded": _refunded,
    "Slashed": _slashed,
    "Disputed": _disputed,
    "SlaBreached": _sla_breached,
    "TransitTariffSet": _transit_tariff_set,
    "OperatorSeated": _operator_seated,
    "MemberAdmitted": _member_admitted,
    "MemberRolesChanged": _member_roles_changed,
    "MemberRemoved": _member_removed,
    "NodeRegistered": _node_registered,
    "NodeUpdated": _node_updated,
    "NodePauseChanged": _node_pause_changed,
    "NodeRetired": _node_retired,
}


def apply_event(session: Session, event: Event) -> None:
    handler = HANDLERS.get(event.name)
    if handler is not None:
        handler(session, event)
        session.flush()


def apply_events(session: Session, events: list[Event]) -> None:
    """`apply_event` for a chunk of events in chain order, with one flush at the end: a Matched event
    whose deal is not projected yet (any but a replayed one) adds its row without a lookup, the seats
    are read once (again after an OperatorSeated), and the handlers' own lookups flush what they need.
    A lookup and a flush per event were most of the indexer's time under a flood of matches (bench/e2e)."""
    unprojected = {str(e.args["id"]) for e in events if e.name == "Matched"}
    ids = sorted(unprojected)
    for at in range(0, len(ids), 500):  # bounded statements, whatever the chunk holds
        unprojected -= set(session.scalars(select(Deal.id).where(Deal.id.in_(ids[at : at + 500]))))
    seats: Seats | None = None
    for event in events:
        if event.name == "Matched" and event.args["id"] in unprojected:
            unprojected.discard(event.args["id"])
            if seats is None:
                seats = indexed_seats(session)
            session.add(_deal_row(session, event, seats))
        elif (handler := HANDLERS.get(event.name)) is not None:
            handler(session, event)
            if event.name == "OperatorSeated":
                seats = None
    session.flush()


def rebuild(session: Session) -> None:
    """Recomputes every projection from the stored events, in chain order."""
    for table in (Member, OperatorSeat, TransitTariff, Node, Deal, Settlement):
        session.execute(delete(table))
    session.flush()
    for event in session.scalars(select(Event).order_by(Event.block_number, Event.log_index)):
        apply_event(session, event)
