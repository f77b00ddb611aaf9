"""Errors of the content store, all under ``suanwang.errors.SuanwangError``."""

from __future__ import annotations

from suanwang.errors import InputError, NotFoundError, SuanwangError


class InvalidCidError(InputError):
    """A string is not a CID this store can serve (CIDv1, raw or dag-pb codec, sha2-256)."""


class ContentTooLargeError(InputError):
    """Content is larger than MAX_CONTENT_BYTES, the most the store takes."""


class ContentNotFoundError(NotFoundError):
    """The store holds no content under this CID."""


class ContentIntegrityError(SuanwangError):
    """Bytes do not hash to the CID they were stored or served under."""


class ContentUnavailableError(SuanwangError):
    """The IPFS (Kubo) RPC API cannot be reached or failed to serve the request."""
