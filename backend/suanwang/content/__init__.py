"""Content-addressed storage for order specifications and results (I/O).

Content of any size up to ``MAX_CONTENT_BYTES`` is named by the CID that
``ipfs add --cid-version 1 --raw-leaves`` gives it: a raw block's ``bafkrei...`` up to one 262,144-byte
chunk, a UnixFS DAG root's ``bafybei...`` above; see ``docs/content.md``."""

from suanwang.content.cid import (
    Cid,
    canonical_cid,
    cid_of_digest,
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
from suanwang.content.unixfs import CHUNK_BYTES, MAX_CONTENT_BYTES, compute_cid

__all__ = [
    "CHUNK_BYTES",
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
