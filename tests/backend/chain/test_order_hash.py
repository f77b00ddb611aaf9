"""The order's EIP-712 encoding written out (signable_order) against eth_account's generic encoder."""

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from suanwang.chain.market import ORDER_TYPE, order_id_and_signer, sign_order, signable_order, typed_order

BITS = {"address": None, "bool": None} | {f"uint{n}": n for n in (8, 16, 32, 40, 64, 128)}


def _value(kind: str) -> st.SearchStrategy:
    if kind == "address":  # lower case or checksummed, as buyers send them
        raw = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
        return st.one_of(raw, raw.map(Web3.to_checksum_address))
    if kind == "bool":
        return st.booleans()
    return st.integers(min_value=0, max_value=2 ** BITS[kind] - 1)


orders = st.fixed_dictionaries({f["name"]: _value(f["type"]) for f in ORDER_TYPE})
markets = _value("address")


@settings(max_examples=200)
@given(orders, st.integers(min_value=1, max_value=2**64), markets)
def test_the_written_out_encoding_is_eth_accounts(order, chain_id, market):
    assert signable_order(order, chain_id, market) == encode_typed_data(
        full_message=typed_order(order, chain_id, market)
    )


def test_a_signature_made_by_eth_account_recovers_to_its_signer_and_the_eip712_digest():
    key = Account.create()
    order = {f["name"]: 1 for f in ORDER_TYPE} | {"buyer": key.address, "autoAccept": True}
    market = "0x" + "ab" * 20
    signature = sign_order(order, key.key.hex(), 31337, market)
    oid, signer = order_id_and_signer(order, signature, 31337, market)
    assert signer == key.address
    signable = encode_typed_data(full_message=typed_order(order, 31337, market))
    assert oid == "0x" + keccak(b"\x19" + signable.version + signable.header + signable.body).hex()
