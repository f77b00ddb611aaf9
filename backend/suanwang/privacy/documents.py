"""The sealed documents of an order, and the signed request that fetches them.

- The specification: `{"command": [...], "result_key": "0x<the buyer's result public key>"}` (canonical
  JSON), sealed by the buyer to every candidate node of its quote (`"node": <id>`, the node's
  `encryptionKey`) and to its own result key (`"role": "buyer"`). It is sealed to every candidate rather
  than to one node because the matcher picks the node after the buyer signed (the order's specDigest is
  the envelope's digest), and a buyer that accepts automatically may be offline by then: nobody could
  re-seal it to the chosen node. The matcher therefore matches an order only onto one of its recipients.
- The result: the provider seals its job's output and its result document (which names the output's
  CID) to the buyer's `result_key` (`"role": "buyer"`) and to its own node key (`"node": <id>`), so the
  content store and the service hold only ciphertext.
- A read of either through the API is a signed request: EIP-191 over `suanwang content <cid> <signedAt>`
  (the CID exactly as in the URL path, signedAt in unix seconds), sent as the X-Suanwang-* headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from hexbytes import HexBytes

from suanwang.content import MAX_CONTENT_BYTES
from suanwang.errors import InputError
from suanwang.privacy.envelope import BUYER, Recipient, canonical, open_envelope, seal
from suanwang.privacy.errors import NotSpecificationError
from suanwang.privacy.keys import KeyPair, parse_public_key

ADDRESS_HEADER = "X-Suanwang-Address"
SIGNED_AT_HEADER = "X-Suanwang-Signed-At"
SIGNATURE_HEADER = "X-Suanwang-Signature"
# A signed content request is refused when signed further than this from the service's clock (a replayed
# request then stops working within minutes; the heartbeat's bound, agents/heartbeat.py).
MAX_REQUEST_SKEW_S = 300


@dataclass(frozen=True)
class Spec:
    """An opened specification: the command to run and the key its result is sealed to."""

    command: list[str]
    result_key: bytes


def spec_plaintext(command: Sequence[str], result_key: bytes) -> bytes:
    return canonical({"command": [str(part) for part in command], "result_key": "0x" + result_key.hex()})


def seal_spec(command: Sequence[str], result_key: KeyPair, nodes: Sequence[tuple[int, bytes]]) -> bytes:
    """The specification of `command`, sealed to each (node id, encryption key) of `nodes` and to the
    buyer's own `result_key` (so the buyer can read back what it signed)."""
    recipients = [Recipient(key, node=node_id) for node_id, key in nodes]
    return seal(
        spec_plaintext(command, result_key.public_key), [*recipients, Recipient(result_key.public_key, role=BUYER)]
    )


def open_spec(envelope: bytes, key: KeyPair) -> Spec:
    """The specification in `envelope` for the holder of `key` (a node's, or the buyer's result key);
    an EnvelopeError saying why it does not open or is not a specification."""
    plaintext = open_envelope(envelope, key.public_key, key.private_key)
    try:
        document: Any = json.loads(plaintext)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise NotSpecificationError(
            f"the sealed specification is not a JSON document ({exc})", field="envelope"
        ) from None
    command = document.get("command") if isinstance(document, dict) else None
    if not isinstance(command, list) or not command or not all(isinstance(part, str) for part in command):
        raise NotSpecificationError(
            "the sealed specification has no command (a non-empty list of strings)", field="envelope"
        )
    try:
        result_key = parse_public_key(document.get("result_key"), field="result_key")
    except InputError as exc:
        raise NotSpecificationError(
            f"the sealed specification's result_key is wrong: {exc.message}", field="envelope"
        ) from exc
    return Spec(command, result_key)


# An envelope's bytes beyond base64 of its payload, with room to spare: its header with the two recipients
# of a result (about 400 bytes), the JSON around `ct`, and the 16-byte tag.
RESULT_ENVELOPE_OVERHEAD = 1024


def largest_sealed(limit: int) -> int:
    """The largest payload whose result envelope fits in `limit` bytes (base64 takes 4 bytes per 3)."""
    return (limit - RESULT_ENVELOPE_OVERHEAD) // 4 * 3


MAX_RESULT_BYTES = largest_sealed(MAX_CONTENT_BYTES)
"""The largest job output kept in a result: what still fits the content store once sealed. The quote
states it (`max_result_bytes`) and the provider cuts there (lifecycle/follow.py)."""


def result_recipients(result_key: bytes, node_id: int, node_key: bytes) -> tuple[Recipient, ...]:
    """Who a job's result is sealed to: the buyer's result key, and the node's own key (the provider)."""
    return (Recipient(result_key, role=BUYER), Recipient(node_key, node=node_id))


def recipients_json(recipients: Sequence[Recipient]) -> list[dict[str, Any]]:
    """`recipients` as a store keeps them (the job's row), read back by `sealer`."""
    return [
        {"pk": "0x" + r.public_key.hex(), **({"node": r.node} if r.node is not None else {"role": r.role})}
        for r in recipients
    ]


def sealer(stored: list[dict[str, Any]] | None) -> Callable[[bytes], bytes]:
    """What a provider stores for each part of a result: sealed to the recipients `recipients_json` kept, or
    the bytes as they are when none were kept (a job with no sealed specification: the replay's, or one
    the in-process provider ran for another matcher's order)."""
    if not stored:
        return lambda data: data
    recipients = [Recipient(bytes.fromhex(r["pk"][2:]), node=r.get("node"), role=r.get("role")) for r in stored]
    return lambda data: seal(data, recipients)


# -- signed content requests -------------------------------------------------------------------------


def content_request_message(cid: str, signed_at: int) -> str:
    return f"suanwang content {cid} {signed_at}"


def content_request_headers(account_key: str | bytes, cid: str, signed_at: int | None = None) -> dict[str, str]:
    """The headers of a GET /api/content/<cid> signed with `account_key` (now, unless `signed_at`)."""
    at = int(time.time()) if signed_at is None else signed_at
    signed = Account.sign_message(encode_defunct(text=content_request_message(cid, at)), private_key=account_key)
    return {
        ADDRESS_HEADER: Account.from_key(account_key).address,
        SIGNED_AT_HEADER: str(at),
        SIGNATURE_HEADER: "0x" + bytes(signed.signature).hex(),
    }


def content_request_signer(cid: str, signed_at: int, signature: str) -> str:
    """The address that signed a content request for `cid` at `signed_at`."""
    message = encode_defunct(text=content_request_message(cid, signed_at))
    return str(Account.recover_message(message, signature=HexBytes(signature)))
