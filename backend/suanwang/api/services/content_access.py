"""Who may fetch a piece of content through the API (docs/content.md, Privacy). Every read is a signed
request (`suanwang.privacy.documents`: EIP-191 over "suanwang content <cid> <signedAt>"), and is served
only to a party of what the content belongs to:

- an order's specification: its buyer; once matched, the seller of the node it is matched onto; before,
  the owners of the nodes it is sealed to (a provider may check what it would be asked to run);
- a deal's result: its buyer and its seller;
- any other envelope (a result's output, which only the sealed result document names): the owners of the
  nodes it is sealed to (the provider sealed it to its own node), and a buyer whose result on one of those
  nodes is sealed to the same buyer key (the buyer's result key is the same in each of its results).

The content itself is ciphertext either way: this keeps it from everyone who is not a party, as a second
line, and lets the service say to whom it belongs."""

from __future__ import annotations

import re
import time

from sqlalchemy.orm import Session

from suanwang.content import ContentStore, canonical_cid
from suanwang.errors import ForbiddenError, UnauthenticatedError
from suanwang.privacy import BUYER, EnvelopeError, parse_envelope
from suanwang.privacy.documents import (
    ADDRESS_HEADER,
    MAX_REQUEST_SKEW_S,
    SIGNATURE_HEADER,
    SIGNED_AT_HEADER,
    content_request_message,
    content_request_signer,
)
from suanwang.storage.content_access import ContentReaders

SIGNATURE_PATTERN = re.compile(r"^0x[0-9a-fA-F]{130}$")
SIGNED_AT_PATTERN = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() takes "²", int() does not
HOW_TO_SIGN = (
    f"send {ADDRESS_HEADER} (your address), {SIGNED_AT_HEADER} (unix seconds, within {MAX_REQUEST_SKEW_S} s of "
    f"now) and {SIGNATURE_HEADER} (EIP-191 personal_sign of {content_request_message('<cid>', 0)[:-2]} "
    "<signedAt>', the CID as in the path)"
)


def signed_reader(cid: str, address: str | None, signed_at: str | None, signature: str | None) -> str:
    """The address that signed this request for `cid`; UnauthenticatedError naming the header at fault."""
    if not address or not signed_at or not signature:
        missing = [
            h
            for h, v in ((ADDRESS_HEADER, address), (SIGNED_AT_HEADER, signed_at), (SIGNATURE_HEADER, signature))
            if not v
        ]
        raise UnauthenticatedError(
            f"content is served on a signed request only ({', '.join(missing)} missing): {HOW_TO_SIGN}",
            field=missing[0],
        )
    if not SIGNED_AT_PATTERN.fullmatch(signed_at) or abs(int(signed_at) - time.time()) > MAX_REQUEST_SKEW_S:
        raise UnauthenticatedError(
            f"{SIGNED_AT_HEADER} {signed_at!r} is not unix seconds within {MAX_REQUEST_SKEW_S} s of the service's "
            f"clock ({int(time.time())}): sign the request again now",
            field=SIGNED_AT_HEADER,
        )
    if not SIGNATURE_PATTERN.match(signature):
        raise UnauthenticatedError(f"{SIGNATURE_HEADER} is not a 65-byte 0x-hex signature", field=SIGNATURE_HEADER)
    try:
        signer = content_request_signer(cid, int(signed_at), signature)
    except Exception as exc:  # a signature no key could have made
        raise UnauthenticatedError(f"{SIGNATURE_HEADER} cannot be recovered ({exc})", field=SIGNATURE_HEADER) from exc
    if signer.lower() != address.lower():
        raise UnauthenticatedError(
            f"{SIGNATURE_HEADER} is {signer}'s, not {ADDRESS_HEADER} {address}'s, over "
            f"'{content_request_message(cid, int(signed_at))}': {HOW_TO_SIGN}",
            field=SIGNATURE_HEADER,
        )
    return signer


def readable_content(session: Session, store: ContentStore, cid: str, reader: str) -> bytes:
    """The content under `cid` when `reader` is a party of it (see the module's text); ForbiddenError
    otherwise. The store is read only once the index says the reader may be a party, so a stranger cannot
    make the service read large content; lookups use the CID's canonical form, so another spelling of the
    same CID finds the same orders and deals."""
    readers = ContentReaders(session)
    me = reader.lower()
    canonical = canonical_cid(cid)
    orders = readers.orders_with_spec(canonical)
    for order in orders:
        nodes = [order.node_id] if order.node_id is not None else (order.spec_nodes or [])
        if order.buyer.lower() == me or readers.owns_any(reader, nodes):
            return store.get(canonical)
    if orders:
        raise _forbidden(reader, cid)
    # A deal's result CID is whatever its seller passed to `complete`: it proves the content is the deal's
    # only when the content is sealed to the deal's node (a seller could name anyone's CID otherwise).
    deals = [d for d in readers.deals_with_result({cid, canonical}) if me in (d.buyer.lower(), d.seller.lower())]
    if deals:
        content = store.get(canonical)
        if _sealed_to_any(content, [d.node_id for d in deals]):
            return content
        raise _forbidden(reader, cid)
    if readers.has_deal(reader):  # an output the result names: only a party of some deal may ask
        content = store.get(canonical)
        if _party_of_envelope(readers, store, content, reader):
            return content
    raise _forbidden(reader, cid)


def _forbidden(reader: str, cid: str) -> ForbiddenError:
    return ForbiddenError(
        f"{reader} is not a party of {cid}: content is served to the buyer of its order or deal, to the seller of "
        "the deal's node, and, for a specification not matched yet, to the owners of the nodes it is sealed to",
        field=ADDRESS_HEADER,
    )


def _sealed_to_any(content: bytes, node_ids: list[int]) -> bool:
    try:
        return bool(set(parse_envelope(content).nodes) & set(node_ids))
    except EnvelopeError:
        return False


def _party_of_envelope(readers: ContentReaders, store: ContentStore, content: bytes, reader: str) -> bool:
    try:
        envelope = parse_envelope(content)
    except EnvelopeError:
        return False  # plain content no order or deal names: nobody's to hand out
    if readers.owns_any(reader, envelope.nodes):
        return True
    buyer_keys = {r.public_key for r in envelope.recipients if r.role == BUYER}
    for result_cid in readers.results_of(reader, envelope.nodes) if buyer_keys else []:
        try:
            result = parse_envelope(store.get(result_cid))
        except Exception:  # a result that is not (or no longer) an envelope in this store: not evidence
            continue
        if buyer_keys & {r.public_key for r in result.recipients if r.role == BUYER}:
            return True
    return False
