"""Content ids: the CIDv1 that ``ipfs add --cid-version 1 --raw-leaves`` prints for a single-block file.

Byte layout of such a CID (CID spec, https://github.com/multiformats/cid; codes from the multicodec table,
https://github.com/multiformats/multicodec/blob/master/table.csv)::

    0x01            CID version 1                     (unsigned varint)
    0x55            content codec "raw"               (unsigned varint)
    0x12            multihash function sha2-256       (unsigned varint)
    0x20            digest length, 32 bytes           (unsigned varint)
    <32 bytes>      sha256(content)

and its text form is the multibase prefix ``b`` followed by RFC 4648 base32, lower case, without padding.

Kubo cuts files into 262,144-byte chunks (its default chunker, ``size-262144``) and, when a file fits in
one chunk, the balanced DAG builder returns that single leaf as the root (boxo
``ipld/unixfs/importer/balanced/builder.go``, ``Layout``); with raw leaves the leaf is the raw bytes, so
the CID above is exactly Kubo's. Larger files get a dag-pb root whose CID this module does not compute:
they are refused with :class:`ContentTooLargeError` rather than given an id Kubo would not agree with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from typing import NewType

from multiformats import CID

from suanwang.content.errors import ContentTooLargeError, InvalidCidError

Cid = NewType("Cid", str)
"""Canonical text form of a content id: base32 lower case, starts with ``bafkrei``."""

MAX_CONTENT_BYTES = 262_144
"""Kubo's default chunk size: the largest content whose ``ipfs add`` CID is the raw block's own CID."""

RAW_CODEC = 0x55
SHA2_256 = 0x12
SHA2_256_DIGEST_BYTES = 32
# The four bytes before the digest of every CID this store serves (the layout above), and the length of
# its canonical text: "b" and 36 bytes in unpadded base32.
RAW_SHA2_256_PREFIX = bytes([0x01, RAW_CODEC, SHA2_256, SHA2_256_DIGEST_BYTES])
CANONICAL_LENGTH = 1 + math.ceil((len(RAW_SHA2_256_PREFIX) + SHA2_256_DIGEST_BYTES) * 8 / 5)  # 59


def check_size(size: int) -> None:
    """Refuse content that Kubo would split into several blocks (see the module docstring)."""
    if size > MAX_CONTENT_BYTES:
        raise ContentTooLargeError(
            f"content is {size} bytes; the content store takes at most {MAX_CONTENT_BYTES} bytes (256 KiB), "
            "because above one 256 KiB chunk Kubo stores a file as a UnixFS DAG whose root CID this store "
            "does not compute; split the content or store a smaller document that refers to its parts",
            field="content",
        )


def compute_cid(content: bytes) -> Cid:
    """The CID Kubo gives ``content`` with ``ipfs add --cid-version 1 --raw-leaves``.

    Raises ContentTooLargeError above :data:`MAX_CONTENT_BYTES`."""
    check_size(len(content))
    return raw_block_cid(content)


def raw_block_cid(content: bytes) -> Cid:
    """CIDv1 (raw, sha2-256, base32) of ``content`` as one block, whatever its size.

    Equal to Kubo's ``ipfs add`` CID only up to :data:`MAX_CONTENT_BYTES`; used to name what damaged or
    unexpected bytes are. Written out from the layout above (multibase ``b``: RFC 4648 base32, lower case,
    no padding) rather than through multiformats, whose run-time type checks cost more than the hash for
    an order's specification (a third of the API's intake, py-spy on bench/e2e); the tests hold it equal
    to multiformats' CID and to Kubo's vectors."""
    return Cid(_base32_text(RAW_SHA2_256_PREFIX + hashlib.sha256(content).digest()))


def parse_cid(text: str) -> CID:
    """Decode a CID and check it is one this store serves (v1, raw, sha2-256, 32-byte digest).

    Any multibase is accepted (``str(parse_cid(x).set(base="base32"))`` is the canonical form)."""
    try:
        cid = CID.decode(text)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise InvalidCidError(f"{text!r} is not a CID: {exc}", field="cid") from exc
    if cid.version != 1 or cid.codec.code != RAW_CODEC:
        raise InvalidCidError(
            f"{text!r} is a CIDv{cid.version} with codec {cid.codec.name}; this store holds only single-block "
            "content under CIDv1 with the raw codec (they start with 'bafkrei')",
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
    if _raw_sha2_256_digest(text) is not None:
        return Cid(text)
    return Cid(str(parse_cid(text).set(base="base32")))


def _raw_sha2_256_digest(text: str) -> bytes | None:
    """The digest inside `text` when it is a canonical CIDv1 (raw, sha2-256), else None."""
    if len(text) != CANONICAL_LENGTH or not text.startswith("b") or text != text.lower():
        return None
    try:
        body = text[1:].upper()
        decoded = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return None
    if not decoded.startswith(RAW_SHA2_256_PREFIX) or text != _base32_text(decoded):
        return None  # e.g. nonzero padding bits: not the one canonical spelling
    return decoded[len(RAW_SHA2_256_PREFIX) :]


def _base32_text(cid_bytes: bytes) -> str:
    return "b" + base64.b32encode(cid_bytes).decode("ascii").lower().rstrip("=")


def matches(cid: CID, content: bytes) -> bool:
    """Whether ``content`` hashes to the digest inside ``cid`` (a parsed, sha2-256 CID)."""
    return hashlib.sha256(content).digest() == cid.raw_digest


def spec_digest(content: bytes) -> str:
    """The sha2-256 digest inside `content`'s CID, as an order's `specDigest` (0x-hex bytes32) carries it: a
    provider turns it back into the CID (`cid_of_digest`) and fetches the specification it was asked to run."""
    return "0x" + hashlib.sha256(content).hexdigest()


def cid_of_digest(digest: bytes | str) -> Cid:
    """The CID (v1, raw, sha2-256) of the content whose sha2-256 digest is `digest` (bytes or 0x-hex)."""
    raw = bytes.fromhex(digest.removeprefix("0x")) if isinstance(digest, str) else bytes(digest)
    if len(raw) != SHA2_256_DIGEST_BYTES:
        raise InvalidCidError(f"a sha2-256 digest is 32 bytes, got {len(raw)}", field="specDigest")
    return Cid(_base32_text(RAW_SHA2_256_PREFIX + raw))


def digest_of(text: str) -> bytes:
    """The sha2-256 digest a valid CID names (InvalidCidError otherwise, as `parse_cid`)."""
    digest = _raw_sha2_256_digest(text)
    return digest if digest is not None else bytes(parse_cid(text).raw_digest)
