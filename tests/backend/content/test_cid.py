import base64
import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanwang.content import (
    CHUNK_BYTES,
    InvalidCidError,
    canonical_cid,
    cid_of_digest,
    compute_cid,
    parse_cid,
    spec_digest,
)
from suanwang.content.cid import digest_of
from tests.backend.content.fake_kubo import reference_cid

HELLO_WORLD = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
EMPTY = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_hello_world_gets_the_cid_kubo_gives_it():
    assert compute_cid(b"hello world") == HELLO_WORLD


def test_empty_content_gets_the_cid_kubo_gives_it():
    assert compute_cid(b"") == EMPTY


def test_the_byte_by_byte_reference_agrees_with_the_kubo_vectors():
    assert reference_cid(b"hello world") == HELLO_WORLD
    assert reference_cid(b"") == EMPTY


@given(st.binary(max_size=4096))
def test_cids_are_deterministic_and_decode_to_v1_raw_sha2_256_of_the_content(content):
    cid = compute_cid(content)
    assert cid == compute_cid(bytes(content)) == reference_cid(content)
    parsed = parse_cid(cid)
    assert parsed.version == 1
    assert parsed.codec.code == 0x55
    assert parsed.hashfun.code == 0x12
    assert parsed.raw_digest == hashlib.sha256(content).digest()
    assert bytes(parsed)[:4] == bytes([0x01, 0x55, 0x12, 0x20])
    assert cid.startswith("bafkrei")


def test_content_of_exactly_one_kubo_chunk_is_its_own_raw_block():
    content = b"\x07" * CHUNK_BYTES
    assert compute_cid(content) == reference_cid(content)


def test_content_of_more_than_one_chunk_is_named_by_a_dag_pb_root():
    cid = compute_cid(b"\x07" * (CHUNK_BYTES + 1))
    assert cid.startswith("bafybei")
    assert parse_cid(cid).codec.name == "dag-pb"


def test_the_same_cid_in_another_multibase_is_read_as_the_canonical_one():
    base58 = "zb2rhj7crUKTQYRGCRATFaQ6YFLTde2YzdqbbhAASkL9uRDXn"
    assert canonical_cid(base58) == HELLO_WORLD
    assert canonical_cid(HELLO_WORLD.upper()) == HELLO_WORLD


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN", "CIDv0"),
        ("bafyreiffndsajwhk3lwjewwdxqntmjm4b5wxaaanokonsggenkbw6slwk4", "dag-cbor"),
        (
            "bafkrgqhhyivzstcz3hhswshfjgy6ertgmnqeleynhwt4dlfsthi4hn7zgh4uvlsb5xncykzapi3ocd4lzogukir6ksdy6wzrnz6ohnv4aglcs",
            "sha2-512",
        ),
        ("not a cid", "is not a CID"),
    ],
)
def test_cids_this_store_cannot_serve_are_refused_with_what_they_are(text, named):
    with pytest.raises(InvalidCidError) as err:
        parse_cid(text)
    assert named in err.value.message
    assert err.value.field == "cid"


def _base32_cid_text(raw: bytes) -> str:
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


@given(
    st.one_of(
        st.text(max_size=80),
        st.binary(max_size=40).map(_base32_cid_text),
        st.binary(max_size=40).map(lambda raw: _base32_cid_text(bytes([0x01, 0x55]) + raw)),
    )
)
def test_any_text_either_parses_or_raises_invalid_cid_error(text):
    with contextlib.suppress(InvalidCidError):
        parse_cid(text)


@given(st.binary(max_size=512))
def test_the_written_out_cid_is_multiformats_cid_and_is_recognised_as_canonical(content):
    from multiformats import CID, multihash

    expected = str(CID("base32", 1, "raw", multihash.digest(content, "sha2-256")))
    assert compute_cid(content) == expected
    assert canonical_cid(expected) == expected
    assert digest_of(expected) == hashlib.sha256(content).digest()


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=58, max_size=58))
def test_a_canonical_looking_text_is_accepted_only_when_multiformats_accepts_it(tail):
    text = "b" + tail
    try:
        expected = str(parse_cid(text).set(base="base32"))
    except InvalidCidError:
        with pytest.raises(InvalidCidError):
            canonical_cid(text)
        with pytest.raises(InvalidCidError):
            digest_of(text)
    else:
        assert canonical_cid(text) == expected


def test_a_cid_spelled_with_nonzero_padding_bits_is_not_taken_as_canonical():
    # 36 bytes are 288 bits, 58 base32 digits 290: the last digit of HELLO_WORLD ("e", 0b00100) carries two
    # padding bits; "f" (0b00101) names the same bytes with a padding bit set.
    # multiformats refuses it ("Pad bits must be zero"), and so does the store's own fast path.
    other_spelling = HELLO_WORLD[:-1] + "f"
    with pytest.raises(InvalidCidError, match="Pad bits"):
        canonical_cid(other_spelling)


def test_a_canonical_cid_is_read_without_multiformats(monkeypatch):
    import suanwang.content.cid as cid_module

    def refuse(text):
        raise AssertionError(f"multiformats was asked to decode {text}")

    monkeypatch.setattr(cid_module.CID, "decode", refuse)
    assert canonical_cid(HELLO_WORLD) == HELLO_WORLD
    assert digest_of(EMPTY) == hashlib.sha256(b"").digest()


@given(st.binary(max_size=4096))
def test_an_orders_spec_digest_is_the_digest_inside_the_cid_and_names_it_back(content):
    digest = spec_digest(content)
    assert bytes.fromhex(digest[2:]) == digest_of(compute_cid(content)) == hashlib.sha256(content).digest()
    assert cid_of_digest(digest) == compute_cid(content) == cid_of_digest(bytes.fromhex(digest[2:]))


def test_a_digest_of_the_wrong_length_is_refused_naming_the_order_field():
    with pytest.raises(InvalidCidError, match="32 bytes, got 31") as refused:
        cid_of_digest("0x" + "00" * 31)
    assert refused.value.field == "specDigest"
