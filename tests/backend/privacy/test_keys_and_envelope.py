"""The privacy core against its vectors (tests/fixtures/privacy/vectors.json, which the web app checks its
@hpke/core implementation against), RFC 9180's own vector, and what a wrong key or a changed byte does."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from suanwang.privacy import (
    BUYER,
    NODE_KEY_TEXT,
    RESULT_KEY_TEXT,
    DamagedEnvelopeError,
    NotEnvelopeError,
    NotRecipientError,
    NotSpecificationError,
    Recipient,
    derive_key_pair,
    key_pair_from_signature,
    node_key_pair,
    open_envelope,
    parse_envelope,
    seal,
)
from suanwang.privacy.documents import open_spec

VECTORS = json.loads((Path(__file__).parents[2] / "fixtures" / "privacy" / "vectors.json").read_text())
CHAIN_ID = VECTORS["chain_id"]


@pytest.mark.parametrize(("name", "purpose"), [("node", NODE_KEY_TEXT), ("result", RESULT_KEY_TEXT)])
def test_an_account_key_derives_the_vectors_key_pair(name: str, purpose: str) -> None:
    vector = VECTORS["keys"][name]
    pair = derive_key_pair(vector["account_key"], purpose, CHAIN_ID)
    assert pair.private_key.hex() == vector["private_key"][2:]
    assert pair.public_hex == vector["public_key"]
    # The wallet's path: the key from the signature it returns (v as 27/28 or as 0/1, the same key).
    signature = bytes.fromhex(vector["signature"][2:])
    assert key_pair_from_signature(signature, vector["message"]) == pair
    assert key_pair_from_signature(signature[:64] + bytes([signature[64] - 27]), vector["message"]) == pair


def test_node_and_result_keys_differ_per_purpose_and_chain() -> None:
    key = VECTORS["keys"]["node"]["account_key"]
    keys = {derive_key_pair(key, p, c).public_key for p in (NODE_KEY_TEXT, RESULT_KEY_TEXT) for c in (1, CHAIN_ID)}
    assert len(keys) == 4


def test_the_vectors_envelope_opens_for_each_of_its_recipients() -> None:
    vector = VECTORS["envelope"]
    envelope = vector["envelope_utf8"].encode()
    for recipient in vector["opens_with"]:
        opened = open_envelope(
            envelope, bytes.fromhex(recipient["public_key"][2:]), bytes.fromhex(recipient["private_key"][2:])
        )
        assert opened == vector["plaintext_utf8"].encode()
    assert parse_envelope(envelope).nodes == [12]


def test_cryptographys_hpke_opens_rfc_9180_vector_a_1_1() -> None:
    # RFC 9180 Appendix A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode), sequence 0.
    from cryptography.hazmat.bindings._rust import openssl

    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
    sk = X25519PrivateKey.from_private_bytes(
        bytes.fromhex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8")
    )
    enc = bytes.fromhex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
    ct = bytes.fromhex("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a")
    info, aad = bytes.fromhex("4f6465206f6e2061204772656369616e2055726e"), b"Count-0"
    assert openssl.hpke._decrypt_with_aad(suite, enc + ct, sk, info=info, aad=aad) == b"Beauty is truth, truth beauty"


def _pair(seed: int) -> tuple[bytes, bytes]:
    private = X25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return private.public_key().public_bytes_raw(), private.private_bytes_raw()


def test_a_sealed_payload_opens_for_every_recipient_and_no_one_else() -> None:
    (node_pk, node_sk), (buyer_pk, buyer_sk), (other_pk, other_sk) = _pair(1), _pair(2), _pair(3)
    envelope = seal(
        b"secret" * 1000, [Recipient(node_pk, node=7), Recipient(node_pk, node=8), Recipient(buyer_pk, role=BUYER)]
    )
    assert open_envelope(envelope, node_pk, node_sk) == b"secret" * 1000
    assert open_envelope(envelope, buyer_pk, buyer_sk) == b"secret" * 1000
    assert parse_envelope(envelope).nodes == [7, 8]
    with pytest.raises(NotRecipientError, match="not sealed to the key"):
        open_envelope(envelope, other_pk, other_sk)
    with pytest.raises(DamagedEnvelopeError, match="private key"):
        open_envelope(envelope, node_pk, other_sk)


def test_a_dropped_recipient_or_a_changed_byte_fails_to_open() -> None:
    (node_pk, node_sk), (buyer_pk, _) = _pair(1), _pair(2)
    envelope = seal(b"payload", [Recipient(node_pk, node=7), Recipient(buyer_pk, role=BUYER)])
    document = json.loads(envelope)
    dropped = json.dumps({**document, "recipients": document["recipients"][:1]}).encode()
    with pytest.raises(DamagedEnvelopeError, match="header"):
        open_envelope(dropped, node_pk, node_sk)
    ct = bytearray(base64.b64decode(document["ct"]))
    ct[0] ^= 1
    flipped = json.dumps({**document, "ct": base64.b64encode(bytes(ct)).decode()}).encode()
    with pytest.raises(DamagedEnvelopeError, match="payload"):
        open_envelope(flipped, node_pk, node_sk)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"command": ["true"]}', "exactly v, suite"),
        (b"\xff\x00", "not JSON"),
        (b'{"v":2,"suite":[32,1,1],"recipients":[],"nonce":"","ct":""}', "this version"),
        (b'{"v":1,"suite":[32,1,1],"recipients":[],"nonce":"","ct":""}', "list of 1 to"),
    ],
)
def test_what_is_not_an_envelope_is_named(data: bytes, words: str) -> None:
    with pytest.raises(NotEnvelopeError, match=words):
        parse_envelope(data)


def test_a_deeply_nested_envelope_or_specification_is_refused_not_a_crash() -> None:
    """py_ecc lifts the recursion limit to 100,000 and the JSON decoder then overflowed the C stack (the
    process died) on 262,144 nested brackets, within the 256 KiB an envelope may take; the package restores
    the default limit, and both parsers turn the RecursionError into their own error."""
    assert sys.getrecursionlimit() <= 1000
    with pytest.raises(NotEnvelopeError):
        parse_envelope(b"[" * 262_144)
    pair = node_key_pair("0x" + "22" * 32, 31337)
    sealed = seal(b"[" * 150_000, [Recipient(pair.public_key, node=1)])
    with pytest.raises(NotSpecificationError):
        open_spec(sealed, pair)
