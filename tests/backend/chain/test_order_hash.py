"""The order's EIP-712 encoding written out (signable_order) against eth_account's generic encoder."""

import importlib.util

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from suanwang.chain.market import ORDER_TYPE, order_id_and_signer, sign_order, signable_order, typed_order
from suanwang.paths import REPO_ROOT

BITS = {"address": None, "bool": None} | {f"uint{n}": n for n in (8, 16, 32, 40, 64, 128)}


def _value(kind: str) -> st.SearchStrategy:
    if kind == "address":  # lower case or checksummed, as buyers send them
        raw = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
        return st.one_of(raw, raw.map(Web3.to_checksum_address))
    if kind == "bool":
        return st.booleans()
    if kind == "bytes32":  # 0x-hex, as orders travel in JSON, or raw bytes
        raw32 = st.binary(min_size=32, max_size=32)
        return st.one_of(raw32.map(lambda b: "0x" + b.hex()), raw32)
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
    order = {f["name"]: 1 for f in ORDER_TYPE} | {
        "buyer": key.address,
        "matcher": "0x" + "00" * 20,
        "autoAccept": True,
        "specDigest": "0x" + "12" * 32,
        "serviceId": "0x" + "00" * 32,
    }
    market = "0x" + "ab" * 20
    signature = sign_order(order, key.key.hex(), 31337, market)
    oid, signer = order_id_and_signer(order, signature, 31337, market)
    assert signer == key.address
    signable = encode_typed_data(full_message=typed_order(order, 31337, market))
    assert oid == "0x" + keccak(b"\x19" + signable.version + signable.header + signable.body).hex()


def test_the_brownie_scripts_sign_the_same_order_type_with_the_stated_defaults():
    spec = importlib.util.spec_from_file_location("deploy_script", REPO_ROOT / "scripts" / "deploy.py")
    assert spec is not None and spec.loader is not None
    deploy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    assert deploy.ORDER_TYPE is ORDER_TYPE  # one definition, chain/order_type.py
    order = dict(zip(deploy.ORDER_FIELDS, deploy.make_order("0x" + "11" * 20, 99, nonce=4), strict=True))
    assert order["matcher"] == "0x" + "00" * 20 and order["specDigest"] == order["serviceId"] == "0x" + "00" * 32
    assert (order["maxTransit"], order["epoch"], order["gpuMilli"], order["minRunSeconds"]) == (10 * 10**18, 0, 0, 0)
    assert (order["apnId"], order["apnSlaClass"], order["expiry"], order["nonce"]) == (0, 0, 99, 4)
    # The exact transit fee of a tariff: 2 tokens per Gbps-hour, 1000 Mbps for an hour.
    assert deploy.transit_fee_of(deploy.make_order("0x" + "11" * 20, 99), 2 * 10**18) == 2 * 10**18
    market = "0x" + "ab" * 20

    class _Market:  # what typed_order reads of a brownie contract
        address = market

    typed = deploy.typed_order(_Market(), tuple(order.values()), 31337)
    assert encode_typed_data(full_message=typed) == signable_order(order, 31337, market)
