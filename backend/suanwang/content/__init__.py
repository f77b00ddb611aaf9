"""Content-addressed storage for order specifications and results (I/O).

Content is named by the CIDv1 (raw, sha2-256, base32) that ``ipfs add --cid-version 1 --raw-leaves``
gives it; see ``docs/content.md``."""

from suanwang.content.cid import (
    MAX_CONTENT_BYTES,
    Cid,
    canonical_cid,
    cid_of_digest,
    compute_cid,
    parse_cid,
    spec_digest,
)
from suanwang.content.errors import (
    ContentIntegrityError,
    ContentNotFoundError,
    ContentTooLargeError,
    ContentUnavailableError,
    InvalidCidError,
)
from suanwang.content.factory import content_store_from_url
from suanwang.content.kubo import KuboContentStore
from suanwang.content.store import ContentStore, LocalContentStore

__all__ = [
    "MAX_CONTENT_BYTES",
    "Cid",
    "ContentIntegrityError",
    "ContentNotFoundError",
    "ContentStore",
    "ContentTooLargeError",
    "ContentUnavailableError",
    "InvalidCidError",
    "KuboContentStore",
    "LocalContentStore",
    "canonical_cid",
    "cid_of_digest",
    "compute_cid",
    "content_store_from_url",
    "parse_cid",
    "spec_digest",
]
