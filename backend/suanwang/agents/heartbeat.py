"""An agent's heartbeat: a small document signed with the agent's own key (EIP-191 personal message), so
the service can show which parties' agents run without trusting who sent it. The service keeps only
the newest per (address, role) and refuses one signed more than MAX_SKEW_S away from its own clock."""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from hexbytes import HexBytes

ROLES = ("provider", "operator", "buyer")
MAX_SKEW_S = 300


def heartbeat_message(document: dict[str, Any]) -> str:
    """The exact text signed: the document's canonical JSON."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def sign_heartbeat(document: dict[str, Any], key: str) -> dict[str, Any]:
    signed = Account.sign_message(encode_defunct(text=heartbeat_message(document)), private_key=key)
    return {"document": document, "signature": "0x" + bytes(signed.signature).hex()}


def heartbeat_signer(document: dict[str, Any], signature: str) -> str:
    return str(Account.recover_message(encode_defunct(text=heartbeat_message(document)), signature=HexBytes(signature)))
