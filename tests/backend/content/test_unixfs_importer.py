"""The store's CIDs against npm's ipfs-unixfs-importer (tools/unixfs_cid.mjs), set up as Kubo's
`ipfs add --cid-version 1 --raw-leaves`: at every size where the DAG's shape changes, and at random ones."""

from __future__ import annotations

import random

import pytest

from suanwang.content import CHUNK_BYTES, compute_cid
from suanwang.content.cid import cid_bytes_of
from suanwang.content.dagpb import decode_node
from suanwang.content.unixfs import MAX_LINKS_PER_NODE, file_blocks
from tests.backend.content.js_importer import importer_cids

FULL_NODE = MAX_LINKS_PER_NODE * CHUNK_BYTES
SIZES = {
    "empty": 0,
    "one byte": 1,
    "one chunk": CHUNK_BYTES,
    "one chunk and a byte": CHUNK_BYTES + 1,
    "five MiB": 5 * 1024 * 1024,
    "174 chunks, one full node": FULL_NODE,
    "174 chunks and a byte, two levels": FULL_NODE + 1,
}
# The CIDs both implementations give these sizes of RNG(2026) bytes, recorded so a change shows in review.
RECORDED = {
    "empty": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    "one byte": "bafkreiewkjmv6n7n2cgfdx5cmvt6ntlw435cocod4v4epdfdtdjrna32pi",
    "one chunk": "bafkreig7fh3kkws556qu252pp7ypmv7tjedmv7lqhqxbu7o6ogq5mm7pty",
    "one chunk and a byte": "bafybeigrkjho6uebvtv6csuzxnaak7hzpp7i63q67yglwvtyrmwfdksjmi",
    "five MiB": "bafybeicxm5hyhf4lmjb34kbmqmyqscxeh3hoxwehdxwht3ypz554h4tygi",
    "174 chunks, one full node": "bafybeicart2jpf4eexcnqzx2f67g2upxw2p7z6bwcvevin7ciuuyihkkce",
    "174 chunks and a byte, two levels": "bafybeihnsxcpucad44srmn5oqqbikhxq7tjsdp7umo7iufxvayydfjxvcm",
    "random size": "bafybeicqr5v6e7euoxboq3ymoxm7ye7ansyq64b2kz6gqxk2tags2ywsp4",  # 6,366,596 bytes
}


@pytest.fixture(scope="module")
def contents() -> dict[str, bytes]:
    rng = random.Random(2026)
    chosen = {name: rng.randbytes(size) for name, size in SIZES.items()}
    chosen["random size"] = rng.randbytes(rng.randrange(CHUNK_BYTES, 40 * CHUNK_BYTES))
    return chosen


@pytest.fixture(scope="module")
def importer(contents: dict[str, bytes]) -> dict[str, str]:
    return dict(zip(contents, importer_cids(list(contents.values())), strict=True))


@pytest.mark.parametrize("name", [*SIZES, "random size"])
def test_the_cid_is_the_one_the_unixfs_importer_gives(name: str, contents, importer) -> None:
    assert compute_cid(contents[name]) == importer[name]
    assert importer[name] == RECORDED[name]


def test_up_to_one_chunk_the_cid_is_the_raw_block_and_above_a_dag_pb_root(contents, importer) -> None:
    prefixes = {name: cid[:7] for name, cid in importer.items()}
    assert [prefixes[n] for n in ("empty", "one byte", "one chunk")] == ["bafkrei"] * 3
    assert {prefixes[n] for n in SIZES if SIZES[n] > CHUNK_BYTES} == {"bafybei"}


def test_one_chunk_past_a_full_node_adds_a_level_with_a_single_leaf_node(contents) -> None:
    blocks = {block.cid: block.data for block in file_blocks(contents["174 chunks and a byte, two levels"])}
    root = cid_bytes_of(compute_cid(contents["174 chunks and a byte, two levels"]))
    top, _ = decode_node(blocks[root])
    assert len(top) == 2
    full, last = (decode_node(blocks[link.hash])[0] for link in top)
    assert (len(full), len(last)) == (MAX_LINKS_PER_NODE, 1)
    assert last[0].tsize == 1
