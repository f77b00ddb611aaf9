"""Content ids: the CIDv1 text and bytes of a block, and the parsing of CIDs this store serves.

Byte layout of a CID (CID spec, https://github.com/multiformats/cid; codes from the multicodec table,
https://github.com/multiformats/multicodec/blob/master/table.csv)::

    0x01            CID version 1                     (unsigned varint)
    0x55 or 0x70    block codec "raw" or "dag-pb"     (unsigned varint)
    0x12            multihash function sha2-256       (unsigned varint)
    0x20            digest length, 32 bytes           (unsigned varint)
    <32 bytes>      sha256(block)

and its text form is the multibase prefix ``b`` followed by RFC 4648 base32, lower case, without padding:
``bafkrei...`` for a raw block, ``bafybei...`` for a dag-pb one. Which of the two a piece of content gets
(the CID ``ipfs add`` gives it) is decided in ``suanwang.content.unixfs``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from typing import NewType

from multiformats import CID

from suanwang.content.errors import InvalidCidError

Cid = NewType("Cid", str)
"""Canonical text form of a content id: base32 lower case, starts with ``bafkrei`` or ``bafybei``."""

RAW_CODEC = 0x55
DAG_PB_CODEC = 0x70
SHA2_256 = 0x12
SHA2_256_DIGEST_BYTES = 32
# The four bytes before the digest of every CID this store serves (the layout above), and the length of
# its canonical text: "b" and 36 bytes in unpadded base32.
RAW_SHA2_256_PREFIX = bytes([0x01, RAW_CODEC, SHA2_256, SHA2_256_DIGEST_BYTES])
DAG_PB_SHA2_256_PREFIX = bytes([0x01, DAG_PB_CODEC, SHA2_256, SHA2_256_DIGEST_BYTES])
PREFIX_BYTES = len(RAW_SHA2_256_PREFIX)
CANONICAL_LENGTH = 1 + math.ceil((PREFIX_BYTES + SHA2_256_DIGEST_BYTES) * 8 / 5)  # 59
_PREFIXES = {RAW_CODEC: RAW_SHA2_256_PREFIX, DAG_PB_CODEC: DAG_PB_SHA2_256_PREFIX}


def block_cid_bytes(codec: int, block: bytes | memoryview) -> bytes:
    """The binary CIDv1 (sha2-256) of one block of ``codec`` (raw or dag-pb), as dag-pb links carry it."""
    return _PREFIXES[codec] + hashlib.sha256(block).digest()


def cid_text(cid_bytes: bytes) -> Cid:
    """The canonical text of a binary CID (multibase ``b``: RFC 4648 base32, lower case, no padding).

    Written out from the layout above rather than through multiformats, whose run-time type checks cost
    more than the hash for an order's specification (a third of the API's intake, py-spy on bench/e2e); the
    tests hold it equal to multiformats' CID and to Kubo's vectors."""
    return Cid("b" + base64.b32encode(cid_bytes).decode("ascii").lower().rstrip("="))


def raw_block_cid(block: bytes | memoryview) -> Cid:
    """CIDv1 (raw, sha2-256, base32) of ``block`` as one raw block, whatever its size."""
    return cid_text(block_cid_bytes(RAW_CODEC, block))


def parse_cid(text: str) -> CID:
    """Decode a CID and check it is one this store serves (v1, raw or dag-pb, sha2-256, 32-byte digest).

    Any multibase is accepted (``str(parse_cid(x).set(base="base32"))`` is the canonical form)."""
    try:
        cid = CID.decode(text)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise InvalidCidError(f"{text!r} is not a CID: {exc}", field="cid") from exc
    if cid.version != 1 or cid.codec.code not in _PREFIXES:
        raise InvalidCidError(
            f"{text!r} is a CIDv{cid.version} with codec {cid.codec.name}; this store names content by "
            "CIDv1 with the raw codec (one block, 'bafkrei...') or dag-pb (a UnixFS file, 'bafybei...')",
            field="cid",
        )
    if cid.hashfun.code != SHA2_256 or len(cid.raw_digest) != SHA2_256_DIGEST_BYTES:
        raise InvalidCidError(
            f"{text!r} uses hash {cid.hashfun.name} with a {len(cid.raw_digest)}-byte digest; "
            "this store uses sha2-256 (32 bytes)",
            field="cid",
        )
    return cid


def canonical_cid(text: str) -> Cid:
    """The base32 lower-case form of a valid CID (the name the local store files content under).
    A CID already in that form (every CID this service computes) is recognised without multiformats."""
    if _canonical_bytes(text) is not None:
        return Cid(text)
    return Cid(str(parse_cid(text).set(base="base32")))


def cid_bytes_of(text: str) -> bytes:
    """The binary form of a valid CID (InvalidCidError otherwise, as `parse_cid`): the prefix above, whose
    second byte is the codec, then the sha2-256 digest of the block it names."""
    cid_bytes = _canonical_bytes(text)
    return cid_bytes if cid_bytes is not None else bytes(parse_cid(text))


def _canonical_bytes(text: str) -> bytes | None:
    """The bytes of `text` when it is a canonical CIDv1 (raw or dag-pb, sha2-256), else None."""
    if len(text) != CANONICAL_LENGTH or not text.startswith("b") or text != text.lower():
        return None
    try:
        body = text[1:].upper()
        decoded = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return None
    if decoded[:PREFIX_BYTES] not in _PREFIXES.values() or text != cid_text(decoded):
        return None  # e.g. nonzero padding bits: not the one canonical spelling
    return decoded


def spec_digest(content: bytes) -> str:
    """The sha2-256 digest inside the CID of single-block `content`, as an order's `specDigest` (0x-hex
    bytes32) carries it: a provider turns it back into the CID (`cid_of_digest`) and fetches the
    specification it was asked to run. Only content of at most one chunk (262,144 bytes) has a raw CID
    naming this digest: a larger document is a UnixFS DAG whose CID names its root node instead."""
    return "0x" + hashlib.sha256(content).hexdigest()


def cid_of_digest(digest: bytes | str) -> Cid:
    """The CID (v1, raw, sha2-256) of the single-block content whose sha2-256 digest is `digest` (bytes or
    0x-hex)."""
    raw = bytes.fromhex(digest.removeprefix("0x")) if isinstance(digest, str) else bytes(digest)
    if len(raw) != SHA2_256_DIGEST_BYTES:
        raise InvalidCidError(f"a sha2-256 digest is 32 bytes, got {len(raw)}", field="specDigest")
    return cid_text(RAW_SHA2_256_PREFIX + raw)


def digest_of(text: str) -> bytes:
    """The sha2-256 digest a valid CID names (InvalidCidError otherwise, as `parse_cid`)."""
    return cid_bytes_of(text)[PREFIX_BYTES:]
