"""The content store seam and its default implementation: files in a directory, named by CID."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from suanwang.content.cid import Cid, canonical_cid, compute_cid, digest_of, raw_block_cid
from suanwang.content.errors import ContentIntegrityError, ContentNotFoundError


@runtime_checkable
class ContentStore(Protocol):
    """Immutable bytes kept under their content id (see ``suanwang.content.cid``)."""

    def put(self, content: bytes) -> Cid:
        """Store ``content`` and return its CID; storing the same bytes again is a no-op."""
        ...

    def get(self, cid: str) -> bytes:
        """The bytes stored under ``cid``, checked against it; ContentNotFoundError if absent."""
        ...

    def has(self, cid: str) -> bool:
        """Whether the store holds ``cid`` without fetching it from elsewhere."""
        ...

    def pin(self, cid: str) -> None:
        """Keep ``cid`` from garbage collection; ContentNotFoundError if it cannot be had."""
        ...


class LocalContentStore:
    """Content as files ``<root>/<shard>/<cid>``, where ``shard`` is the two characters before the CID's
    last one (Kubo's flatfs ``next-to-last/2`` scheme), so no directory grows past 1,024 entries per
    million blocks.

    Writes go to a temporary file in the same directory, are fsynced, then renamed over the final name,
    so a reader sees either no file or the whole file. Every read re-hashes the bytes. Nothing is ever
    deleted here, so ``pin`` only checks the content is present and intact."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalContentStore({str(self.root)!r})"

    def path_for(self, cid: str) -> Path:
        name = canonical_cid(cid)
        return self.root / name[-3:-1] / name

    def put(self, content: bytes) -> Cid:
        cid = compute_cid(content)
        path = self.path_for(cid)
        if path.is_file() and path.read_bytes() == content:
            return cid  # stored before, intact
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(content)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return cid

    def get(self, cid: str) -> bytes:
        digest = digest_of(cid)
        path = self.path_for(cid)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise ContentNotFoundError(
                f"no content {canonical_cid(cid)} in the local content store at {self.root}", field="cid"
            ) from None
        if hashlib.sha256(content).digest() != digest:
            raise ContentIntegrityError(
                f"{path} does not hash to its name: it holds {len(content)} bytes whose CID would be "
                f"{raw_block_cid(content)}; the file was changed or damaged after it was stored. "
                "Remove it and store the original content again",
                field="cid",
            )
        return content

    def has(self, cid: str) -> bool:
        return self.path_for(cid).is_file()

    def pin(self, cid: str) -> None:
        self.get(cid)
