"""Envelopes: content sealed to several recipients, each of which opens it alone with its X25519 key.

The envelope is canonical JSON (keys sorted, no spaces: `json.dumps(sort_keys=True, separators=(",", ":"))`,
ASCII only), for example::

    {"ct":"<b64>","nonce":"<b64>","recipients":[{"enc":"<b64>","key":"<b64>","node":12,"pk":"0x<64 hex>"},
     {"enc":"<b64>","key":"<b64>","pk":"0x<64 hex>","role":"buyer"}],"suite":[32,1,1],"v":1}

b64 is RFC 4648 §4 base64 with padding. Sealing:

1. A random 32-byte content key and a random 12-byte `nonce`; `ct` = AES-256-GCM(content key, nonce,
   plaintext, aad = header), ciphertext then the 16-byte tag (as WebCrypto gives it). The header is the
   envelope without `ct`, in the same canonical JSON, so a recipient added, dropped or swapped (or a
   changed suite) makes the payload fail to open.
2. Per recipient, the content key is sealed with HPKE in base mode, single-shot (RFC 9180 §5.1.1 and
   §6.1, `SealBase`), suite `[32,1,1]`: KEM 0x0020 DHKEM(X25519, HKDF-SHA256), KDF 0x0001 HKDF-SHA256,
   AEAD 0x0001 AES-128-GCM (RFC 9180 §7), info = b"suanwang/envelope/v1", aad empty. `enc` is the
   32-byte encapsulated key, `key` the 48-byte sealed content key (32 + 16-byte tag), `pk` the
   recipient's public key, and either `node` (a chain node id: the key is that node's `encryptionKey`) or
   `role` ("buyer": the buyer's result key).

Opening finds the recipient by `pk`, opens its `key` (HPKE `OpenBase`) and then `ct`. Recipients may
repeat a `pk` (two nodes of one seller share its key); the first such entry is opened.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from suanwang.privacy.errors import DamagedEnvelopeError, NotEnvelopeError, NotRecipientError
from suanwang.privacy.keys import KEY_BYTES, PUBLIC_KEY_PATTERN, x25519_private, x25519_public

VERSION = 1
SUITE = [0x0020, 0x0001, 0x0001]  # KEM, KDF, AEAD ids (RFC 9180 §7.1, §7.2, §7.3)
INFO = b"suanwang/envelope/v1"
BUYER = "buyer"
ROLES = frozenset({BUYER})
NONCE_BYTES = 12
TAG_BYTES = 16
ENC_BYTES = 32  # Nenc of DHKEM(X25519, HKDF-SHA256), RFC 9180 §7.1
SEALED_KEY_BYTES = KEY_BYTES + TAG_BYTES
MAX_RECIPIENTS = 64
_HPKE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)


@dataclass(frozen=True)
class Recipient:
    """Who an envelope is sealed to: a public key, and the chain node it is the key of or the party's role."""

    public_key: bytes
    node: int | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        if (self.node is None) == (self.role is None):
            raise ValueError("a recipient is either a node (its chain id) or a role, not both or neither")


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: its recipients, and what opening it needs."""

    recipients: tuple[Recipient, ...]
    header: dict[str, Any]
    ciphertext: bytes

    @property
    def nodes(self) -> list[int]:
        """The chain node ids it is sealed to, in order, each once."""
        return list(dict.fromkeys(r.node for r in self.recipients if r.node is not None))


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seal(plaintext: bytes, recipients: Sequence[Recipient]) -> bytes:
    """`plaintext` sealed to every one of `recipients` (at least one), as envelope bytes."""
    if not recipients:
        raise ValueError("an envelope needs at least one recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise ValueError(f"an envelope has at most {MAX_RECIPIENTS} recipients")
    content_key, nonce = secrets.token_bytes(KEY_BYTES), secrets.token_bytes(NONCE_BYTES)
    entries = []
    for recipient in recipients:
        sealed = _HPKE.encrypt(content_key, x25519_public(recipient.public_key), info=INFO)
        entry: dict[str, Any] = {
            "pk": "0x" + recipient.public_key.hex(),
            "enc": _b64(sealed[:ENC_BYTES]),
            "key": _b64(sealed[ENC_BYTES:]),
        }
        if recipient.node is not None:
            entry["node"] = recipient.node
        else:
            entry["role"] = recipient.role
        entries.append(entry)
    header = {"v": VERSION, "suite": SUITE, "recipients": entries, "nonce": _b64(nonce)}
    ciphertext = AESGCM(content_key).encrypt(nonce, plaintext, canonical(header))
    return canonical({**header, "ct": _b64(ciphertext)})


def _field_bytes(value: Any, name: str, size: int | None = None, at_least: int = 0) -> bytes:
    try:
        data = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        data = None
    if data is None or (size is not None and len(data) != size) or len(data) < at_least:
        wanted = f"{size} bytes" if size is not None else f"at least {at_least} bytes"
        raise NotEnvelopeError(f"not a Suanwang envelope: its {name} is not base64 of {wanted}", field="envelope")
    return data


def _recipient(entry: Any, index: int) -> Recipient:
    where = f"recipient {index}"
    if not isinstance(entry, dict) or not {"pk", "enc", "key"} <= entry.keys():
        raise NotEnvelopeError(f"not a Suanwang envelope: {where} lacks pk, enc or key", field="envelope")
    if set(entry) - {"pk", "enc", "key", "node", "role"}:
        raise NotEnvelopeError(f"not a Suanwang envelope: {where} has unknown fields", field="envelope")
    if not isinstance(entry["pk"], str) or not PUBLIC_KEY_PATTERN.match(entry["pk"]):
        raise NotEnvelopeError(f"not a Suanwang envelope: {where}'s pk is not 0x and 64 hex", field="envelope")
    _field_bytes(entry["enc"], f"{where}'s enc", ENC_BYTES)
    _field_bytes(entry["key"], f"{where}'s key", SEALED_KEY_BYTES)
    node, role = entry.get("node"), entry.get("role")
    node_ok = isinstance(node, int) and not isinstance(node, bool) and node >= 0
    if (
        (node is None) == (role is None)
        or (node is not None and not node_ok)
        or (role is not None and role not in ROLES)
    ):
        raise NotEnvelopeError(
            f"not a Suanwang envelope: {where} must name either a node (a chain node id) or the role {BUYER!r}",
            field="envelope",
        )
    return Recipient(bytes.fromhex(entry["pk"][2:]), node=node, role=role)


def parse_envelope(envelope: bytes) -> Envelope:
    """The envelope's recipients and parts; NotEnvelopeError saying what is missing or wrong."""
    try:
        document = json.loads(envelope)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise NotEnvelopeError(f"not a Suanwang envelope: not JSON ({exc})", field="envelope") from exc
    if not isinstance(document, dict) or set(document) != {"v", "suite", "recipients", "nonce", "ct"}:
        raise NotEnvelopeError(
            "not a Suanwang envelope: one JSON object with exactly v, suite, recipients, nonce and ct is expected",
            field="envelope",
        )
    if document["v"] != VERSION or document["suite"] != SUITE:
        raise NotEnvelopeError(
            f"not an envelope this version opens: v {document['v']!r}, suite {document['suite']!r} (expected v "
            f"{VERSION}, suite {SUITE})",
            field="envelope",
        )
    entries = document["recipients"]
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_RECIPIENTS:
        raise NotEnvelopeError(
            f"not a Suanwang envelope: recipients must be a list of 1 to {MAX_RECIPIENTS}", field="envelope"
        )
    recipients = tuple(_recipient(entry, i) for i, entry in enumerate(entries))
    _field_bytes(document["nonce"], "nonce", NONCE_BYTES)
    ciphertext = _field_bytes(document["ct"], "ct", at_least=TAG_BYTES)
    header = {k: v for k, v in document.items() if k != "ct"}
    return Envelope(recipients, header, ciphertext)


def open_envelope(envelope: bytes, recipient_public_key: bytes, private_key: bytes) -> bytes:
    """The plaintext of `envelope` for the recipient with `recipient_public_key` and its `private_key`.
    NotEnvelopeError, NotRecipientError or DamagedEnvelopeError say why it does not open."""
    parsed = parse_envelope(envelope)
    index = next((i for i, r in enumerate(parsed.recipients) if r.public_key == recipient_public_key), None)
    if index is None:
        raise NotRecipientError(
            f"the envelope is not sealed to the key 0x{recipient_public_key.hex()} (it is sealed to "
            f"{len(parsed.recipients)} other key(s))",
            field="envelope",
        )
    entry = parsed.header["recipients"][index]
    sealed = base64.b64decode(entry["enc"]) + base64.b64decode(entry["key"])
    try:
        content_key = _HPKE.decrypt(sealed, x25519_private(private_key), info=INFO)
    except InvalidTag as exc:
        raise DamagedEnvelopeError(
            f"the content key sealed to 0x{recipient_public_key.hex()} does not open: the envelope was changed, "
            "or the private key is not this public key's",
            field="envelope",
        ) from exc
    try:
        return AESGCM(content_key).decrypt(
            base64.b64decode(parsed.header["nonce"]), parsed.ciphertext, canonical(parsed.header)
        )
    except InvalidTag as exc:
        raise DamagedEnvelopeError(
            "the envelope's payload does not open: its bytes or its header (the recipients) were changed",
            field="envelope",
        ) from exc
