"""The hand-written dag-pb codec against the spec's canonical form (https://ipld.io/specs/codecs/dag-pb/spec/)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanwang.content.cid import RAW_SHA2_256_PREFIX
from suanwang.content.dagpb import DagPbError, PBLink, decode_node, decode_varint, encode_node, encode_varint

HASH = RAW_SHA2_256_PREFIX + bytes(range(32))


def test_links_are_written_before_data_though_data_has_the_lower_field_number():
    block = encode_node([PBLink(HASH, "", 5)], b"\x08\x02")
    assert block[0] == 0x12  # field 2 (Links), length-delimited
    assert block.endswith(b"\x0a\x02\x08\x02")  # field 1 (Data) last
    # The link: Hash (0x0a, 36 bytes), Name written though empty (0x12 0x00), Tsize (0x18 5).
    assert block[2:] == b"\x0a\x24" + HASH + b"\x12\x00\x18\x05" + b"\x0a\x02\x08\x02"


def test_links_are_sorted_by_name_bytes_and_equal_names_keep_their_order():
    links = [PBLink(HASH, "b", 1), PBLink(HASH, "", 2), PBLink(HASH, "a", 3), PBLink(HASH, "", 4)]
    decoded, data = decode_node(encode_node(links, None))
    assert [(link.name, link.tsize) for link in decoded] == [("", 2), ("", 4), ("a", 3), ("b", 1)]
    assert data is None


@given(st.lists(st.tuples(st.text(max_size=8), st.integers(0, 2**63)), max_size=6), st.none() | st.binary(max_size=64))
def test_encoded_nodes_decode_to_what_was_encoded(links, data):
    nodes = [PBLink(HASH, name, tsize) for name, tsize in links]
    decoded, decoded_data = decode_node(encode_node(nodes, data))
    assert decoded == sorted(nodes, key=lambda link: link.name.encode()) and decoded_data == data


@pytest.mark.parametrize(
    "block",
    [
        b"\x0a\x00" + b"\x12\x02\x0a\x00",  # Data before Links
        b"\x0a\x00\x0a\x00",  # Data twice
        b"\x1a\x00",  # field 3: not a PBNode field
        b"\x12\x05\x0a\x00",  # a link running past the end
        b"\x12\x02\x12\x00",  # a link without its Hash
        b"\x12",  # truncated
    ],
)
def test_blocks_out_of_the_canonical_form_are_refused(block):
    with pytest.raises(DagPbError):
        decode_node(block)


@given(st.integers(0, 2**64 - 1))
def test_varints_round_trip_and_over_long_ones_are_refused(value):
    encoded = encode_varint(value)
    assert decode_varint(encoded, 0) == (value, len(encoded))
    with pytest.raises(DagPbError):
        decode_varint(encoded[:-1] + bytes([encoded[-1] | 0x80, 0x00]), 0)
