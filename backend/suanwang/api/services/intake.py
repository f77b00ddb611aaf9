"""Order intake: a buyer's signed order is checked (its signature is the buyer's, it signs this job, its
access point is in the network, and the market would not refuse it anyway) and stored as new, for the
lifecycle to match. The same signed order twice is the same order. The job comes sealed (docs/content.md,
Privacy): the service stores the envelope and the nodes it is sealed to, and never reads the command."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from suanwang.api.deps import chain_gateway
from suanwang.api.order_schema import MAX_ENVELOPE_BYTES, OrderSubmission
from suanwang.chain.contracts import ChainGateway
from suanwang.chain.market import order_id_and_signer
from suanwang.content import spec_digest
from suanwang.errors import ConflictError, InputError, NotFoundError, SuanwangError
from suanwang.privacy import EnvelopeError, parse_envelope
from suanwang.roles import Role
from suanwang.runtime import Runtime
from suanwang.states import OrderState
from suanwang.storage.models import OrderRecord
from suanwang.storage.read_models import ReadModels
from suanwang.storage.repositories import Repositories


def sealed_spec(body: OrderSubmission) -> tuple[bytes, list[int]]:
    """The sealed specification's bytes and the chain nodes it is sealed to; InputError naming
    `job.envelope` when it is not an envelope or is sealed to no node (no provider could run it)."""
    try:
        envelope = base64.b64decode(body.job.envelope, validate=True)
    except binascii.Error as exc:
        raise InputError(f"the sealed specification is not base64 ({exc})", field="job.envelope") from exc
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise InputError(
            f"the sealed specification has {len(envelope)} bytes; at most {MAX_ENVELOPE_BYTES} (one content block, "
            "whose CID its digest names)",
            field="job.envelope",
        )
    try:
        nodes = parse_envelope(envelope).nodes
    except EnvelopeError as exc:
        raise InputError(exc.message, field="job.envelope") from exc
    if not nodes:
        raise InputError(
            "the specification is sealed to no node, so no provider could read it: seal it to the encryption "
            "key of each candidate node of the quote",
            field="job.envelope",
        )
    return envelope, nodes


def check_sealed_to_registered_keys(envelope: bytes, session: Session) -> None:
    """Each registered node the specification is sealed to is sealed to with the key it registered: a
    provider that cannot open the job declines it, and a decline counts against its reliability, so a buyer
    must not be able to make a node decline by sealing to a wrong key. (A node id nobody registered harms
    nobody: the order is never matched there.) InputError naming `job.envelope`."""
    nodes = Repositories(session).nodes
    for recipient in parse_envelope(envelope).recipients:
        node = nodes.get(recipient.node) if recipient.node is not None else None
        if node is None:
            continue
        registered = bytes.fromhex((node.encryption_key or "0x").removeprefix("0x"))
        if registered != recipient.public_key:
            raise InputError(
                f"the specification is sealed to node {recipient.node} with the key 0x{recipient.public_key.hex()}, "
                f"not the key the node registered ({node.encryption_key or 'none'}): its provider could not open "
                "it; seal it to the encryption keys the quote gives",
                field="job.envelope",
            )


def access_router(runtime: Runtime, access_point: str) -> str:
    """The name of the network's router `access_point` names (by name or label); InputError otherwise."""
    network = runtime.marketplace().network
    try:
        return str(network.routers[network.router_index(access_point)].name)
    except (InputError, NotFoundError) as exc:
        raise InputError(exc.message, field="access_point") from exc


class ChainFacts:
    """The head's time, the value epoch, and per buyer its buyer role and nonce floor, each read at most once
    per request through the short probe (`chain_gateway(probe=True)`). When the chain does not answer, a
    fact is None and the order is taken anyway: the matcher's own checks decide later (the intake stays up).
    These are read from the chain, not the index: the index lags the head by its confirmations, and an
    order refused on a stale role or floor would be refused wrongly."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._known: dict[tuple[str, str], Any] = {}
        self._down = False

    def _read(self, key: tuple[str, str], read: Callable[[ChainGateway], Any]) -> Any:
        """`read(gateway)` once per key; None, and no further reads, once the chain stops answering."""
        if key not in self._known and not self._down:
            try:
                self._known[key] = read(chain_gateway(self.runtime, probe=True))
            except Exception:
                self._down = True
        return self._known.get(key)

    def time(self) -> int | None:
        return self._read(("time", ""), lambda chain: chain.head_time())

    def may_buy(self, buyer: str) -> bool | None:
        return self._read(("buyer", buyer), lambda chain: chain.federation.has_role(buyer, Role.BUYER))

    def epoch(self) -> int | None:
        """The value epoch now: a signed order matches only in the epoch it names."""
        return self._read(("epoch", ""), lambda chain: chain.federation.epoch())

    def nonce_floor(self, buyer: str) -> int | None:
        """The buyer's nonce floor: its orders with a lower nonce are void."""
        return self._read(("floor", buyer), lambda chain: chain.market.nonce_floor_of(buyer))

    def matcher(self) -> str | None:
        """The address this service matches as (None when its configuration cannot say)."""
        try:
            return self.runtime.orchestrator().matcher_address
        except Exception:
            return None


def refuse_doomed(struct: dict[str, Any], facts: ChainFacts) -> None:
    """Refuses, before storing, a new order the market would refuse anyway (otherwise it would wait for a
    match and end unmatched): expired, from an account without the buyer role, naming another matcher,
    signed in another value epoch, or below its buyer's nonce floor. Each refusal names its field."""
    chain_time = facts.time()
    if chain_time is not None and int(struct["expiry"]) <= chain_time:
        raise InputError(
            f"the order expired at {struct['expiry']}; the chain's time is {chain_time}: sign it again with a later "
            "expiry",
            field="order.expiry",
        )
    if facts.may_buy(str(struct["buyer"])) is False:
        raise InputError(
            f"{struct['buyer']} is not a member with the buyer role in this federation, so the market would refuse "
            "its orders: ask the federation to admit it as a buyer",
            field="order.buyer",
        )
    named, ours = str(struct["matcher"]), facts.matcher()
    if int(named, 16) != 0 and ours is not None and named.lower() != ours.lower():
        raise InputError(
            f"the order names {named} as the only matcher that may match it; this service matches as {ours}: sign "
            "it with that matcher, or with the zero address for any",
            field="order.matcher",
        )
    epoch = facts.epoch()
    if epoch is not None and int(struct["epoch"]) != epoch:
        raise InputError(
            f"the order was signed in value epoch {struct['epoch']}; the market is in epoch {epoch} (the stage or "
            "the platform fee changed): sign it again with the current epoch",
            field="order.epoch",
        )
    floor = facts.nonce_floor(str(struct["buyer"]))
    if floor is not None and int(struct["nonce"]) < floor:
        raise InputError(
            f"the order's nonce {struct['nonce']} is below the buyer's nonce floor {floor} (it cancelled every order "
            "below it): sign it again with a nonce at or above the floor",
            field="order.nonce",
        )


@dataclass(frozen=True)
class CheckedOrder:
    """A submission whose signature is the buyer's, whose job is the one it signs, at a known router."""

    id: str
    struct: dict[str, Any]
    access_point: str  # the router's name
    submission: OrderSubmission
    envelope: bytes  # the sealed specification
    spec_nodes: list[int]  # the chain nodes it is sealed to


def check_submission(body: OrderSubmission, runtime: Runtime) -> CheckedOrder:
    """The order's id, its struct and its access router's name, once its signature is the buyer's, it signs
    this job and its access point is in the network; InputError naming the field at fault otherwise."""
    deployment = runtime.load_deployment()
    market = deployment.contracts.get("Market")
    if market is None:
        raise NotFoundError("this deployment has no Market contract", field="order")
    struct = body.order.as_struct()
    buyer = str(struct["buyer"])
    try:
        oid, signer = order_id_and_signer(struct, body.signature, deployment.chain_id, market)
    except Exception as exc:
        raise InputError(f"the signature cannot be recovered ({exc})", field="signature") from exc
    if signer.lower() != buyer.lower():
        raise InputError(
            f"the signature is {signer}'s, not the buyer {buyer}'s (chain {deployment.chain_id}, market {market})",
            field="signature",
        )
    envelope, nodes = sealed_spec(body)
    digest = spec_digest(envelope)
    if str(struct["specDigest"]).lower() != digest:
        raise InputError(
            f"the order's specDigest {struct['specDigest']} is not the digest of this job's sealed specification, "
            f"{digest}: the buyer signs the job it places (sign the order again with that digest)",
            field="order.specDigest",
        )
    return CheckedOrder(oid, struct, access_router(runtime, body.access_point), body, envelope, nodes)


def _same_placement(existing: OrderRecord, checked: CheckedOrder) -> OrderRecord:
    """The stored order when `checked` places the same signed order the same way (a retry); ConflictError
    when it names another access point, which the buyer's signature does not cover (the job it does: its
    digest is the order's specDigest, checked before)."""
    if existing.access_point != checked.access_point:
        raise ConflictError(
            f"this signed order was already placed from access point {existing.access_point!r}, not "
            f"{checked.access_point!r}; a signed order is placed once: sign a new one (another nonce) to order again",
            field="access_point",
        )
    return existing


def _new_order(checked: CheckedOrder, runtime: Runtime, session: Session, facts: ChainFacts) -> OrderRecord:
    refuse_doomed(checked.struct, facts)
    check_sealed_to_registered_keys(checked.envelope, session)
    body = checked.submission
    created = datetime.now(UTC)
    record = OrderRecord(
        id=checked.id,
        buyer=str(checked.struct["buyer"]),
        order=checked.struct,
        signature=body.signature,
        access_point=checked.access_point,
        spec_cid=runtime.content().put(checked.envelope),
        spec_nodes=checked.spec_nodes,
        state=OrderState.NEW,
        attempts=0,
        created_at=created,
        updated_at=created,
    )
    Repositories(session).orders.add(record)
    return record


def place_order(body: OrderSubmission, runtime: Runtime, session: Session) -> OrderRecord:
    """Checks a signed order and stores it as new (or returns the stored one: the same signed order twice
    is the same order), committed. Raises the error naming the field at fault."""
    checked = check_submission(body, runtime)
    existing = Repositories(session).orders.get(checked.id)
    record = (
        _same_placement(existing, checked)
        if existing is not None
        else _new_order(checked, runtime, session, ChainFacts(runtime))
    )
    session.commit()
    return record


def place_orders(
    bodies: Sequence[OrderSubmission], runtime: Runtime, session: Session
) -> list[OrderRecord | SuanwangError]:
    """`place_order` for each, each checked alone: the stored order, or the error that refused it."""
    checked: list[CheckedOrder | SuanwangError] = []
    for body in bodies:
        try:
            checked.append(check_submission(body, runtime))
        except SuanwangError as exc:
            checked.append(exc)
    # The orders already stored, in one query; the batch's new rows are written together at the commit
    # (a flush per order would hold SQLite's one write lock for the whole request, and the service's
    # other writers wait for it).
    ids = [c.id for c in checked if isinstance(c, CheckedOrder)]
    known = ReadModels(session).orders.by_id(ids)
    results: list[OrderRecord | SuanwangError] = []
    facts = ChainFacts(runtime)
    with session.no_autoflush:
        for check in checked:
            if isinstance(check, SuanwangError):
                results.append(check)
                continue
            try:
                stored = known.get(check.id)
                record = (
                    _same_placement(stored, check) if stored is not None else _new_order(check, runtime, session, facts)
                )
            except SuanwangError as exc:
                results.append(exc)
                continue
            known[check.id] = record  # the same signed order twice in one batch is one order
            results.append(record)
    session.commit()
    return results
