"""The content store seam and its default implementation: files in a directory, named by CID."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from suanwang.content.cid import Cid, block_cid_bytes, canonical_cid, cid_bytes_of, cid_text
from suanwang.content.errors import ContentIntegrityError, ContentNotFoundError
from suanwang.content.unixfs import UnixFsError, file_blocks, read_file


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
    """Content as UnixFS blocks (``suanwang.content.unixfs``), one file per block,
    ``<root>/<shard>/<block cid>``, where ``shard`` is the two characters before the CID's last one (Kubo's
    flatfs ``next-to-last/2`` scheme), so no directory grows past 1,024 entries per million blocks. Content
    of one chunk is one raw block filed under the content's own CID; larger content is its leaves, its
    internal nodes, and its root filed under the content's CID.

    Each block is written to a temporary file in the same directory, fsynced, then renamed over its final
    name, so a reader sees either no file or the whole block; the root is written last, so a root on disk
    means every block below it was written. Every read re-hashes every block it uses. Nothing is ever
    deleted here, so ``pin`` only checks the content is present and intact."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalContentStore({str(self.root)!r})"

    def path_for(self, cid: str) -> Path:
        name = canonical_cid(cid)
        return self.root / name[-3:-1] / name

    def put(self, content: bytes) -> Cid:
        root = None
        for root in file_blocks(content):
            self._write_block(self.path_for(root.name), root.data)
        assert root is not None
        return root.name

    def _write_block(self, path: Path, block: bytes | memoryview) -> None:
        if path.is_file() and path.read_bytes() == block:
            return  # stored before, intact (a damaged copy is written over: putting repairs it)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(block)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def get(self, cid: str) -> bytes:
        root = cid_bytes_of(cid)
        if not self.has(cid):
            raise ContentNotFoundError(
                f"no content {canonical_cid(cid)} in the local content store at {self.root}", field="cid"
            )
        try:
            return read_file(root, self._load_block)
        except UnixFsError as exc:
            raise ContentIntegrityError(
                f"content {canonical_cid(cid)} in {self.root} is damaged: {exc}. Store the original content again",
                field="cid",
            ) from exc

    def _load_block(self, cid: bytes) -> bytes:
        """A block's bytes, checked against its CID (a missing or damaged block is an integrity error: the
        root that links to it was stored)."""
        path = self.path_for(cid_text(cid))
        try:
            block = path.read_bytes()
        except FileNotFoundError:
            raise ContentIntegrityError(
                f"block {cid_text(cid)} is missing from {self.root}: the content that links to it is incomplete. "
                "Store the original content again",
                field="cid",
            ) from None
        if block_cid_bytes(cid[1], block) != cid:
            raise ContentIntegrityError(
                f"{path} does not hash to its name: it holds {len(block)} bytes whose CID would be "
                f"{cid_text(block_cid_bytes(cid[1], block))}; the file was changed or damaged after it was "
                "stored. Remove it and store the original content again",
                field="cid",
            )
        return block

    def has(self, cid: str) -> bool:
        return self.path_for(cid).is_file()

    def pin(self, cid: str) -> None:
        self.get(cid)
