"""Content as a UnixFS file DAG, block for block the one Kubo's ``ipfs add --cid-version 1 --raw-leaves``
builds, so the root's CID is the one Kubo prints (pure: bytes in, blocks out).

Kubo's defaults, which ``KuboContentStore`` also spells out on every ``add``:

- chunker ``size-262144``: the content is cut into 262,144-byte chunks, the last one shorter
  (``ipfs add --help``; https://docs.ipfs.tech/reference/kubo/cli/#ipfs-add);
- raw leaves: each chunk is a block of codec raw, not wrapped in UnixFS;
- the balanced layout with at most 174 links per node (boxo ``ipld/unixfs/importer/helpers``,
  ``DefaultLinksPerBlock = 8192 / 47``; ``importer/balanced/builder.go``).

A content of one chunk (empty content included: one empty chunk) is that chunk's raw block, which is then
the root (``balanced.Layout``: the first root "will be a single leaf node with data"), so its CID is the
``bafkrei...`` of the bytes themselves. More chunks are grouped, in order, 174 at a time under dag-pb nodes,
those nodes 174 at a time under the next level, and so on until one node remains: the root, ``bafybei...``.
A level's last group may hold a single child, which still gets its own node (boxo fills the last subtree
of each depth the same way). This grouping gives the same tree as boxo's depth-first filling, because both
keep every subtree but the last one full.

Each internal node is a dag-pb node (``suanwang.content.dagpb``) whose Data is a UnixFS ``Data`` message
(UnixFS spec, https://github.com/ipfs/specs/blob/main/UNIXFS.md)::

    message Data { required DataType Type = 1; optional bytes Data = 2; optional uint64 filesize = 3;
                   repeated uint64 blocksizes = 4; ... }

with Type File (2), no Data, ``filesize`` the bytes below it and one ``blocksizes`` entry per child (proto2
``repeated`` without ``packed``, so one key per entry), and one link per child with an empty Name and the
child's cumulative ``Tsize`` (a raw leaf's length; a node's own length plus its children's Tsize).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from suanwang.content.cid import DAG_PB_CODEC, RAW_CODEC, Cid, block_cid_bytes, cid_text
from suanwang.content.dagpb import LEN, VARINT, DagPbError, PBLink, decode_node, encode_node, encode_varint, read_fields
from suanwang.content.errors import ContentTooLargeError

CHUNK_BYTES = 262_144
"""Kubo's default chunk size: content up to this size is one raw block."""

MAX_LINKS_PER_NODE = 174
"""Kubo's balanced layout: children per dag-pb node (boxo helpers.DefaultLinksPerBlock)."""

MAX_CONTENT_BYTES = 1 << 30
"""The largest content (1 GiB) the store takes: a job's whole output is held in memory by the provider
and sent to Kubo in one request, so the limit keeps both within the machines' memory. Stated to the buyer
before an order is placed; larger content raises ContentTooLargeError, never a silent cut."""

UNIXFS_FILE = 2
UNIXFS_RAW = 0


@dataclass(frozen=True)
class Block:
    cid: bytes
    """The block's binary CID (its second byte is the codec, raw or dag-pb)."""
    data: bytes | memoryview

    @property
    def name(self) -> Cid:
        return cid_text(self.cid)


@dataclass(frozen=True)
class _Child:
    cid: bytes
    tsize: int
    file_bytes: int


def check_size(size: int) -> None:
    if size > MAX_CONTENT_BYTES:
        raise ContentTooLargeError(
            f"content is {size} bytes; the content store takes at most {MAX_CONTENT_BYTES} bytes "
            f"(MAX_CONTENT_BYTES, {MAX_CONTENT_BYTES >> 20} MiB): split it, or store it elsewhere and "
            "keep a document that refers to it",
            field="content",
        )


def file_blocks(content: bytes) -> Iterator[Block]:
    """Every block of ``content``'s UnixFS DAG, each after the blocks it links to, the root last.

    Leaves are views into ``content`` (no copies). Raises ContentTooLargeError above MAX_CONTENT_BYTES."""
    check_size(len(content))
    view = memoryview(content)
    if len(view) <= CHUNK_BYTES:
        yield Block(block_cid_bytes(RAW_CODEC, view), view)
        return
    level: list[_Child] = []
    for start in range(0, len(view), CHUNK_BYTES):
        chunk = view[start : start + CHUNK_BYTES]
        leaf = Block(block_cid_bytes(RAW_CODEC, chunk), chunk)
        yield leaf
        level.append(_Child(leaf.cid, len(chunk), len(chunk)))
    while len(level) > 1:
        parents: list[_Child] = []
        for start in range(0, len(level), MAX_LINKS_PER_NODE):
            children = level[start : start + MAX_LINKS_PER_NODE]
            node = encode_node(
                [PBLink(child.cid, "", child.tsize) for child in children],
                _file_data([child.file_bytes for child in children]),
            )
            block = Block(block_cid_bytes(DAG_PB_CODEC, node), node)
            yield block
            parents.append(
                _Child(block.cid, len(node) + sum(c.tsize for c in children), sum(c.file_bytes for c in children))
            )
        level = parents


def compute_cid(content: bytes) -> Cid:
    """The CID Kubo prints for ``ipfs add --cid-version 1 --raw-leaves`` of ``content`` (default chunker and
    layout): its raw block's CID up to CHUNK_BYTES, else its UnixFS root's. ContentTooLargeError above
    MAX_CONTENT_BYTES."""
    *_, root = file_blocks(content)  # the leaves are views, so keeping them costs no copy
    return root.name


def _file_data(blocksizes: list[int]) -> bytes:
    """A UnixFS Data message of Type File without inline data (the layout in the module docstring)."""
    parts = [encode_varint(1 << 3 | VARINT), encode_varint(UNIXFS_FILE)]
    parts += [encode_varint(3 << 3 | VARINT), encode_varint(sum(blocksizes))]
    for size in blocksizes:
        parts += [encode_varint(4 << 3 | VARINT), encode_varint(size)]
    return b"".join(parts)


class UnixFsError(ValueError):
    """A block that is not part of a UnixFS file as this store writes them."""


def read_file(root: bytes, load: Callable[[bytes], bytes]) -> bytes:
    """The content of the UnixFS file whose root's binary CID is ``root``.

    ``load(cid)`` returns a block's bytes after checking they hash to ``cid`` (so the whole file is checked
    through its Merkle links); this walks the links in order and checks each node's ``blocksizes`` against
    what its children hold. Raises UnixFsError for blocks that are no UnixFS file or disagree with their
    sizes, or whose file exceeds MAX_CONTENT_BYTES."""
    parts: list[bytes] = []
    _read_into(root, load, parts, None)
    return b"".join(parts)


def _read_into(cid: bytes, load: Callable[[bytes], bytes], parts: list[bytes], expected: int | None) -> int:
    block = load(cid)
    if cid[1] == RAW_CODEC:
        size = len(block)
        parts.append(block)
    else:
        try:
            links, data = decode_node(block)
            inline, file_bytes, blocksizes = _decode_file_data(data)
        except DagPbError as exc:
            raise UnixFsError(f"block {cid_text(cid)} is not a UnixFS file node: {exc}") from exc
        if len(blocksizes) != len(links) or file_bytes != len(inline) + sum(blocksizes):
            raise UnixFsError(
                f"block {cid_text(cid)} lists {len(blocksizes)} block sizes summing to {sum(blocksizes)} for "
                f"{len(links)} links and a file size of {file_bytes}"
            )
        if file_bytes > MAX_CONTENT_BYTES:
            raise UnixFsError(f"block {cid_text(cid)} is a file of {file_bytes} bytes, above MAX_CONTENT_BYTES")
        parts.append(inline)
        for link, size in zip(links, blocksizes, strict=True):
            _read_into(link.hash, load, parts, size)
        size = file_bytes
    if expected is not None and size != expected:
        raise UnixFsError(f"block {cid_text(cid)} holds {size} bytes of the file where its parent says {expected}")
    return size


def _decode_file_data(data: bytes | None) -> tuple[bytes, int, list[int]]:
    """(inline data, filesize, blocksizes) of a UnixFS Data message of Type File or Raw."""
    if data is None:
        raise DagPbError("no UnixFS Data")
    kind, inline, file_bytes, blocksizes = None, b"", None, []
    for field, wire_type, value in read_fields(data):
        if (field, wire_type) == (1, VARINT):
            kind = value
        elif (field, wire_type) == (2, LEN) and isinstance(value, memoryview):
            inline = bytes(value)
        elif (field, wire_type) == (3, VARINT) and isinstance(value, int):
            file_bytes = value
        elif (field, wire_type) == (4, VARINT) and isinstance(value, int):
            blocksizes.append(value)
        elif field not in (7, 8):  # mode and mtime do not change the bytes
            raise DagPbError(f"UnixFS field {field} is not one of a file's")
    if kind not in (UNIXFS_FILE, UNIXFS_RAW):
        raise DagPbError(f"UnixFS type {kind} is not a file")
    return inline, len(inline) + sum(blocksizes) if file_bytes is None else file_bytes, blocksizes
