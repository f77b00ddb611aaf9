"""A service that quotes its own key for a node must not get to read the job: `order place` seals only to
the keys the chain registers (the chain-reading side runs in test_order_cli's placements, on Anvil)."""

from __future__ import annotations

import click
import pytest

from suanwang.commands.order_content import sealed_for_quote
from suanwang.privacy import node_key_pair, result_key_pair

REGISTERED = node_key_pair("0x" + "22" * 32, 31337).public_key
SERVICES_OWN = node_key_pair("0x" + "33" * 32, 31337).public_key
BUYER = result_key_pair("0x" + "11" * 32, 31337)


def quote(key: bytes) -> dict[str, object]:
    return {"candidates": [{"node_id": 4, "encryption_key": "0x" + key.hex()}]}


def test_a_quoted_key_the_chain_does_not_register_is_refused() -> None:
    with pytest.raises(click.ClickException) as refused:
        sealed_for_quote(quote(SERVICES_OWN), ("true",), BUYER, lambda node_id: REGISTERED)
    assert "node 4" in refused.value.message and "chain registers" in refused.value.message


def test_the_registered_key_is_sealed_to() -> None:
    assert sealed_for_quote(quote(REGISTERED), ("true",), BUYER, lambda node_id: REGISTERED)
