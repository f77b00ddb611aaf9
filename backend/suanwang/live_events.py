"""Live events: the indexer publishes each stored chain event; server-sent-event clients receive them.

A client that reconnects with Last-Event-ID gets what it missed from the database first, so nothing
is lost between connections."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from suanwang.storage.models import Event

QUEUE_SIZE = 1000


# Per event name, the arguments whose ABI type is an integer wider than JavaScript's exact 2^53 (wei
# amounts, ids, times): given as decimal strings always, whatever their value, so a field has one JSON type.
WideArgs = dict[str, frozenset[str]]


def wide_integer_args(abis: Mapping[str, list[dict[str, Any]]]) -> WideArgs:
    """`WideArgs` from contract ABIs (name -> ABI)."""
    out: dict[str, set[str]] = {}
    for abi in abis.values():
        for entry in abi:
            if entry.get("type") != "event":
                continue
            for arg in entry.get("inputs", []):
                match = re.fullmatch(r"u?int(\d*)(\[\d*\])*", str(arg.get("type", "")))
                if match and int(match.group(1) or 256) > 53:
                    out.setdefault(str(entry["name"]), set()).add(str(arg["name"]))
    return {name: frozenset(args) for name, args in out.items()}


def event_payload(event: Event, wide: WideArgs | None = None) -> dict[str, Any]:
    strings = (wide or {}).get(event.name, frozenset())
    return {
        "id": event.id,
        "name": event.name,
        "contract": event.contract,
        "block_number": event.block_number,
        "tx_hash": event.tx_hash,
        "log_index": event.log_index,
        "args": {k: _as_strings(v) if k in strings else _stringify_big(v) for k, v in event.args.items()},
    }


def _as_strings(value: Any) -> Any:
    """Integers (and lists of them) as decimal strings."""
    if isinstance(value, list):
        return [_as_strings(v) for v in value]
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _stringify_big(value: Any) -> Any:
    """Integers beyond JavaScript's 2^53 as decimal strings (wei amounts)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value) if abs(value) > 2**53 else value
    if isinstance(value, dict):
        return {k: _stringify_big(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_big(v) for v in value]
    return value


class EventBus:
    """Fans events out from the indexer's thread to each connected client's asyncio queue."""

    def __init__(self) -> None:
        self.wide: WideArgs = {}  # set from the contracts' ABIs once the deployment is known
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any] | None]]] = []
        self._lock = threading.Lock()

    def publish(self, events: list[Event]) -> None:
        payloads = [event_payload(e, self.wide) for e in events]
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            for payload in payloads:
                loop.call_soon_threadsafe(_put_or_drop, queue, payload)

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            self._subscribers.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        with self._lock:
            self._subscribers = [(loop, q) for loop, q in self._subscribers if q is not queue]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


def _put_or_drop(queue: asyncio.Queue[dict[str, Any] | None], payload: dict[str, Any]) -> None:
    if queue.full():
        # A client too slow to keep up is cut off (None ends its stream); it reconnects with
        # Last-Event-ID and catches up from the database.
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)
        return
    queue.put_nowait(payload)


async def stream(
    bus: EventBus, sessions: sessionmaker[Session], last_event_id: int | None, names: set[str] | None
) -> AsyncIterator[dict[str, str]]:
    queue = bus.subscribe()
    try:
        sent = last_event_id or 0
        if last_event_id is not None:
            missed = await asyncio.to_thread(_events_after, sessions, last_event_id, bus.wide)
            for payload in missed:
                if names is None or payload["name"] in names:
                    yield {"id": str(payload["id"]), "event": payload["name"], "data": json.dumps(payload)}
                sent = max(sent, payload["id"])
        while True:
            live = await queue.get()
            if live is None:
                return
            if live["id"] <= sent or (names is not None and live["name"] not in names):
                continue
            sent = live["id"]
            yield {"id": str(live["id"]), "event": live["name"], "data": json.dumps(live)}
    finally:
        bus.unsubscribe(queue)


def _events_after(sessions: sessionmaker[Session], event_id: int, wide: WideArgs) -> list[dict[str, Any]]:
    with sessions() as session:
        rows = session.scalars(select(Event).where(Event.id > event_id).order_by(Event.id).limit(10_000))
        return [event_payload(e, wide) for e in rows]
