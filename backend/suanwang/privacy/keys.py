"""Encryption key pairs derived from a party's account key, so that a wallet alone can recover them.

A party signs a fixed text with its account key, as an EIP-191 personal message (`personal_sign`):

    "Suanwang node encryption key v1\\nchain <chainId>"    a seller's nodes (what `encryptionKey` holds)
    "Suanwang result key v1\\nchain <chainId>"             a buyer's results

and its X25519 private key is HKDF-SHA256 (RFC 5869) of that signature: ikm = the 65-byte signature
r || s || v (v = 27 or 28; a wallet answering 0 or 1 is read as 27 or 28), salt = empty, info = the same
text in UTF-8, 32 bytes of output. X25519 clamps those bytes itself (RFC 7748 §5), so any 32 bytes are a
private key; the public key is X25519(private, 9), 32 bytes, written as 0x-hex.

This is deterministic because eth-account and browser wallets (MetaMask, every RFC 6979 signer) sign
secp256k1 with RFC 6979 nonces: the same key over the same text gives the same signature, so the same
encryption key, in the CLI, the agent and the browser alike. A wallet that signs with random nonces would
derive a different key each time; that is detectable, because the derived public key then differs from
the one published (on the node's record, or in the buyer's specification), and the client must say so
rather than seal or open with it. The chain id is in the text so that one account has unrelated keys on
different chains, and the purpose is so that a seller's node key is never its result key as a buyer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_account import Account
from eth_account.messages import encode_defunct

from suanwang.errors import InputError

NODE_KEY_TEXT = "Suanwang node encryption key v1"
RESULT_KEY_TEXT = "Suanwang result key v1"
KEY_BYTES = 32
SIGNATURE_BYTES = 65
PUBLIC_KEY_PATTERN = re.compile(r"^0x[0-9a-fA-F]{64}$")


def key_message(purpose: str, chain_id: int) -> str:
    """The exact text a party signs to derive its key for `purpose` (NODE_KEY_TEXT or RESULT_KEY_TEXT)."""
    return f"{purpose}\nchain {chain_id}"


@dataclass(frozen=True)
class KeyPair:
    private_key: bytes  # 32 bytes, as HKDF gave them (X25519 clamps them when it uses them)
    public_key: bytes  # 32 bytes

    @property
    def public_hex(self) -> str:
        """The public key as the chain (bytes32) and the JSON documents carry it: 0x and 64 hex digits."""
        return "0x" + self.public_key.hex()


def key_pair_from_signature(signature: bytes, message: str) -> KeyPair:
    """The key pair derived from a 65-byte EIP-191 `signature` over `message` (see the module's text)."""
    if len(signature) != SIGNATURE_BYTES:
        raise InputError(
            f"a key is derived from a 65-byte signature (r, s, v); this one has {len(signature)} bytes",
            field="signature",
        )
    if signature[64] < 27:  # some wallets (hardware ones) answer v as 0 or 1: one key whatever the wallet
        signature = signature[:64] + bytes([signature[64] + 27])
    private = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=message.encode()).derive(signature)
    public = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return KeyPair(private, public)


def derive_key_pair(account_key: str | bytes, purpose: str, chain_id: int) -> KeyPair:
    """The key pair `account_key` derives for `purpose` on chain `chain_id`."""
    message = key_message(purpose, chain_id)
    signed = Account.sign_message(encode_defunct(text=message), private_key=account_key)
    return key_pair_from_signature(bytes(signed.signature), message)


def node_key_pair(account_key: str | bytes, chain_id: int) -> KeyPair:
    """A seller's node key pair: its public key is every one of its nodes' `encryptionKey`."""
    return derive_key_pair(account_key, NODE_KEY_TEXT, chain_id)


def result_key_pair(account_key: str | bytes, chain_id: int) -> KeyPair:
    """A buyer's result key pair: its public key is the specification's `result_key`."""
    return derive_key_pair(account_key, RESULT_KEY_TEXT, chain_id)


def parse_public_key(text: str, field: str = "public_key") -> bytes:
    """The 32 bytes of a 0x-hex X25519 public key; InputError naming `field` otherwise (or when all zero:
    a node registered without a key has bytes32(0), which no one can seal to)."""
    if not isinstance(text, str) or not PUBLIC_KEY_PATTERN.match(text):
        raise InputError(f"{text!r} is not an X25519 public key (0x and 64 hex digits)", field=field)
    key = bytes.fromhex(text[2:])
    if key == bytes(KEY_BYTES):
        raise InputError("the public key is all zeros (no key was published)", field=field)
    return key


def x25519_public(key: bytes) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(key)


def x25519_private(key: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(key)
