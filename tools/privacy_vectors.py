"""Writes tests/fixtures/privacy/vectors.json: the key derivation and envelope vectors that any other
implementation (the web app's, with npm @hpke/core) checks itself against.

The keys are deterministic (RFC 6979 signatures); an envelope is not (its content key, nonce and HPKE
ephemeral keys are random), so the file holds one sealed envelope with its recipients' private keys and
the plaintext it opens to. Run it again only when the format changes (its version, `v`, with it).

    .venv/bin/python tools/privacy_vectors.py"""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_defunct

from suanwang.privacy import BUYER, NODE_KEY_TEXT, RESULT_KEY_TEXT, Recipient, derive_key_pair, key_message, seal
from suanwang.privacy.envelope import INFO, SUITE, canonical

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "privacy" / "vectors.json"
CHAIN_ID = 31337
# Anvil's first two well-known development accounts (never funded anywhere else).
SELLER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
BUYER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
PLAINTEXT = {"command": ["python3", "-c", "print('hello')"], "result_key": ""}


def key_vector(account_key: str, purpose: str) -> dict[str, object]:
    message = key_message(purpose, CHAIN_ID)
    signature = bytes(Account.sign_message(encode_defunct(text=message), private_key=account_key).signature)
    pair = derive_key_pair(account_key, purpose, CHAIN_ID)
    return {
        "account_key": account_key,
        "address": Account.from_key(account_key).address,
        "message": message,
        "signature": "0x" + signature.hex(),
        "private_key": "0x" + pair.private_key.hex(),
        "public_key": pair.public_hex,
    }


def main() -> None:
    node = key_vector(SELLER_KEY, NODE_KEY_TEXT)
    result = key_vector(BUYER_KEY, RESULT_KEY_TEXT)
    plaintext = canonical({**PLAINTEXT, "result_key": result["public_key"]})
    recipients = [
        Recipient(bytes.fromhex(str(node["public_key"])[2:]), node=12),
        Recipient(bytes.fromhex(str(result["public_key"])[2:]), role=BUYER),
    ]
    vectors = {
        "description": "Suanwang privacy vectors (docs/content.md, Privacy): key derivation and one envelope",
        "chain_id": CHAIN_ID,
        "hpke": {"suite": SUITE, "mode": "base", "info_utf8": INFO.decode(), "aad": ""},
        "keys": {"node": node, "result": result},
        "envelope": {
            "plaintext_utf8": plaintext.decode(),
            "envelope_utf8": seal(plaintext, recipients).decode(),
            "opens_with": [
                {"public_key": node["public_key"], "private_key": node["private_key"]},
                {"public_key": result["public_key"], "private_key": result["private_key"]},
            ],
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(vectors, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
