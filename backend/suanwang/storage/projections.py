"""Chain-derived tables as projections of indexed events.

Every change to ``members`` and ``nodes`` passes through ``apply_event``, so rebuilding them after a
reorg is the same code replayed over the surviving events (``rebuild``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from suanwang.storage.models import Event, Member, Node

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


HANDLERS: dict[str, Callable[[Session, Event], None]] = {
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


def rebuild(session: Session) -> None:
    """Recomputes every projection from the stored events, in chain order."""
    session.execute(delete(Member))
    session.execute(delete(Node))
    session.flush()
    for event in session.scalars(select(Event).order_by(Event.block_number, Event.log_index)):
        apply_event(session, event)
