"""Signed orders under attack (issue 9): replays across chains, contracts and nonces, expired orders,
malleable and malformed signatures, and ERC-1271 (contract) buyers.

Every attack goes through both paths a matcher has: `matchSigned`, which must revert with the exact custom
error (compared byte for byte), and `matchSignedBatch`, where the attacked entry must fail alone with a
MatchFailed event carrying the same error while a valid entry next to it still matches. Each attack also
has its control: the same order with an honest signature matches, so a rejection is the attack's doing.
`SUANWANG_RECORD_RELIABILITY=1` (set by `make reliability-contracts`) records the counts in
bench/results/reliability.json.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from brownie import compile_source, web3
from brownie.network.transaction import TransactionReceipt
from conftest import TERMS, entry, key_of, make_bill, make_order, make_spec, sign_order, transit_for
from deploy import ORDER_FIELDS, typed_order
from eth_account import Account
from eth_account.messages import encode_typed_data
from revert_data import encode_error, error_types, eth_call

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.support.report import record

NODE_PRICE = 2 * 10**18
FEE_BPS = 250
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ACCEPTED, CANCELLED = 3, 9
EXPIRY, MAX_TOTAL = ORDER_FIELDS.index("expiry"), ORDER_FIELDS.index("maxTotal")
PATHS = ("single", "batch")

# A minimal ERC-1271 smart-account buyer: valid when its owner's key signed the digest (65 bytes, low s).
WALLET_SOURCE = """
// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

contract OwnedWallet {
    address public immutable owner;
    bool public broken;

    constructor(address owner_) {
        owner = owner_;
    }

    function breakIt() external {
        broken = true;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        require(!broken, "wallet broken");
        if (signature.length != 65) return 0xffffffff;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) return 0xffffffff;
        return ecrecover(hash, v, r, s) == owner ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}
"""

TALLY: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def recorded():
    yield
    if os.environ.get("SUANWANG_RECORD_RELIABILITY") == "1" and TALLY["attempts"]:
        record("reliability", "signed_orders", {
            "command": "make reliability-contracts",
            "attacks": sorted(TALLY.keys() - {"attempts", "rejected", "controls_matched"}),
            "attempts": TALLY["attempts"],
            "rejected_with_the_expected_error": TALLY["rejected"],
            "controls_matched": TALLY["controls_matched"],
            "paths": list(PATHS),
        })


@dataclass
class Attempt:
    order: tuple
    signature: bytes
    error: tuple  # the custom error's name and arguments


class Matcher:
    """Submits signed orders to one market through either path and checks the outcome byte for byte."""

    def __init__(self, market, node_id, matcher, types, buyer_key, new_order, matcher_key):
        self.market, self.node_id, self.matcher, self.types = market, node_id, matcher, types
        self.buyer_key, self.new_order, self.matcher_key = buyer_key, new_order, matcher_key
        self.control_nonce = 10_000
        # Anvil's own signer keeps the chain id it started with, so after a chain split the matcher's
        # transactions are signed here, for the new id, and sent raw.
        self.split_chain_id: int | None = None

    def send(self, fn, *args):
        if self.split_chain_id is None:
            return fn(*args, {"from": self.matcher})
        tx = {"to": self.market.address, "data": fn.encode_input(*args), "gas": 5_000_000, "gasPrice": 0,
              "nonce": web3.eth.get_transaction_count(self.matcher.address), "chainId": self.split_chain_id}
        signed = Account.sign_transaction(tx, self.matcher_key)
        txid = web3.eth.send_raw_transaction(signed.raw_transaction)
        web3.eth.wait_for_transaction_receipt(txid)
        return TransactionReceipt(txid)

    def bill(self, order):
        """The exact bill, its transit the node's network operator (the matcher, here) at its tariff."""
        return make_bill(order, self.node_id, NODE_PRICE, FEE_BPS, transit_for(self.market, order, self.matcher))

    def refused(self, name: str, attempt: Attempt, path: str) -> None:
        """The attacked order is refused with attempt.error and nothing is recorded for it."""
        expected = encode_error(self.types, *attempt.error)
        oid = self.market.orderId(attempt.order)
        before = tuple(self.market.statusOf(oid))
        attacked = entry(self.market, attempt.order, attempt.signature, self.bill(attempt.order))
        if path == "single":
            ok, data = eth_call(self.matcher.address, self.market.address,
                                self.market.matchSigned.encode_input(attacked))
            assert not ok and data == expected, f"{name}: got 0x{data.hex()}, expected {attempt.error}"
        else:
            self.control_nonce += 1
            # A small honest order (1 logic mCU) so many controls fit on the node.
            honest = self.new_order(nonce=self.control_nonce, logicMcu=1, parallelMcu=0, neuralMcu=0)
            control = entry(self.market, honest, sign_order(self.market, honest, self.buyer_key), self.bill(honest))
            tx = self.send(self.market.matchSignedBatch, attacked + control)
            failed = tx.events["MatchFailed"]
            reason = failed[0]["reason"]
            reason = bytes.fromhex(reason[2:]) if isinstance(reason, str) else bytes(reason)
            assert len(failed) == 1 and int(failed[0]["index"]) == 0 and reason == expected, name
            assert int(tx.return_value) == 1 and len(tx.events["Matched"]) == 1  # the batch went on
            TALLY["controls_matched"] += 1
        assert tuple(self.market.statusOf(oid)) == before, f"{name}: the attacked order changed state"
        TALLY["attempts"] += 1
        TALLY["rejected"] += 1
        TALLY[name] += 1

    def matches(self, order: tuple, signature: bytes):
        tx = self.send(self.market.matchSigned, entry(self.market, order, signature, self.bill(order)))
        assert tx.status == 1 and len(tx.events["Matched"]) == 1
        TALLY["controls_matched"] += 1
        return tx


@pytest.fixture(scope="module")
def types(Federation, NodeRegistry, Market, SettlementToken):
    return error_types([Federation, NodeRegistry, Market, SettlementToken])


@pytest.fixture
def m(market, node_id, founder, types, buyer, accounts, new_order):
    return Matcher(market, node_id, founder, types, key_of(buyer, accounts), new_order, key_of(founder, accounts))


@pytest.fixture
def buyer_key(buyer, accounts):
    return key_of(buyer, accounts)


def typed_signature(market, order, chain_id, key) -> bytes:
    return Account.sign_message(encode_typed_data(full_message=typed_order(market, order, chain_id)), key).signature


def split(signature: bytes) -> tuple[int, int, int]:
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]


def join(r: int, s: int, v: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def ecrecover_precompile(digest: bytes, v: int, r: int, s: int) -> str | None:
    """What the EVM's ecrecover precompile (address 1) returns on this chain: None when it fails."""
    data = "0x" + digest.hex() + v.to_bytes(32, "big").hex() + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex()
    ok, out = eth_call("0x" + "00" * 20, "0x" + "00" * 19 + "01", data)
    assert ok
    return web3.to_checksum_address(out[12:].hex()) if len(out) == 32 else None


# ------------------------------------------------------------------------------ replay across chains


@pytest.mark.parametrize("path", PATHS)
def test_order_signed_for_another_chain_id_is_refused(m, market, stage2_backed, buyer, buyer_key, new_order, chain,
                                                      path):
    order = new_order()
    for other_chain in (1, chain.id + 1):
        signature = typed_signature(market, order, other_chain, buyer_key)
        m.refused("another chain id in the domain", Attempt(order, signature, (
            "InvalidSignature", market.orderId(order), buyer.address)), path)
    m.matches(order, typed_signature(market, order, chain.id, buyer_key))


@pytest.mark.parametrize("path", PATHS)
def test_order_signed_before_a_chain_split_is_refused_after_it(m, market, stage2_backed, buyer, buyer_key, new_order,
                                                                chain, path):
    """The chain's id changes under the deployed market (a fork that took a new id): the cached domain
    separator is rebuilt, so every signature made before the split is refused on the new chain."""
    order = new_order()
    before_split = sign_order(market, order, buyer_key)
    old_id, old_chain = bytes(market.orderId(order)), chain.id
    web3.provider.make_request("anvil_setChainId", [old_chain + 1000])
    m.split_chain_id = old_chain + 1000
    try:
        assert int(web3.eth.chain_id) == old_chain + 1000
        new_id = bytes(market.orderId(order))
        assert new_id != old_id
        m.refused("signed before a chain split", Attempt(order, before_split, (
            "InvalidSignature", new_id, buyer.address)), path)
        m.matches(order, typed_signature(market, order, old_chain + 1000, buyer_key))
    finally:
        web3.provider.make_request("anvil_setChainId", [old_chain])
    assert int(web3.eth.chain_id) == old_chain


# ------------------------------------------------------------------------------ replay across contracts


@pytest.fixture
def second_market(Federation, NodeRegistry, Market, token, founder, cloud_team, buyer, types, accounts, new_order):
    """A second, fully wired deployment (stage 1) where the same buyer trades on the same terms."""
    fed = Federation.deploy("second founder", FEE_BPS, {"from": founder})
    fed.setRoles(founder, 1 | 16, {"from": founder})
    fed.admit(cloud_team, 2, "cloud", {"from": founder})
    fed.admit(buyer, 8, "buyer", {"from": founder})
    registry = NodeRegistry.deploy(fed, [0, 0, 0, 0], {"from": founder})
    market = Market.deploy(fed, registry, token, TERMS, {"from": founder})
    fed.setMarket(market, {"from": founder})  # first: it seats the operators the registry's nodes name
    registry.setMarket(market, {"from": founder})
    node = registry.registerNode(make_spec(founder.address, price=NODE_PRICE), {"from": cloud_team}).return_value
    return Matcher(market, node, founder, types, key_of(buyer, accounts), new_order, key_of(founder, accounts))


@pytest.mark.parametrize("path", PATHS)
def test_order_signed_for_another_market_is_refused(m, market, second_market, buyer, buyer_key, new_order, path):
    # Both markets in stage 1 (value epoch 0), so the same order is valid on each with its own signature.
    order = new_order()
    for_second = sign_order(second_market.market, order, buyer_key)
    for_first = sign_order(market, order, buyer_key)
    m.refused("signed for another market", Attempt(order, for_second, (
        "InvalidSignature", market.orderId(order), buyer.address)), path)
    second_market.refused("signed for another market", Attempt(order, for_first, (
        "InvalidSignature", second_market.market.orderId(order), buyer.address)), path)
    second_market.matches(order, for_second)  # each signature is good where it was meant
    m.matches(order, for_first)


# ------------------------------------------------------------------------------ replay across nonces


@pytest.mark.parametrize("path", PATHS)
def test_a_matched_order_cannot_be_matched_again(m, market, stage2_backed, buyer_key, new_order, path):
    order = new_order()
    signature = sign_order(market, order, buyer_key)
    m.matches(order, signature)
    m.refused("the same order again", Attempt(order, signature, (
        "OrderAlreadyUsed", market.orderId(order), ACCEPTED)), path)


@pytest.mark.parametrize("path", PATHS)
def test_a_cancelled_order_cannot_be_matched(m, market, stage2_backed, buyer, buyer_key, new_order, path):
    order = new_order()
    signature = sign_order(market, order, buyer_key)
    market.cancelOrder(order, 0, {"from": buyer})
    m.refused("a cancelled order", Attempt(order, signature, (
        "OrderAlreadyUsed", market.orderId(order), CANCELLED)), path)


@pytest.mark.parametrize("path", PATHS)
def test_a_signature_does_not_carry_over_to_another_nonce_or_field(m, market, stage2_backed, buyer, buyer_key,
                                                                   new_order, path):
    order = new_order(nonce=5)
    signature = sign_order(market, order, buyer_key)
    for name, changed in (("the next nonce", new_order(nonce=6)),
                          ("a raised maxTotal", new_order(nonce=5, maxTotal=order[MAX_TOTAL] + 1)),
                          ("another buyer", make_order(m.matcher.address, expiry=order[EXPIRY], nonce=5))):
        m.refused(f"a signature moved to {name}", Attempt(changed, signature, (
            "InvalidSignature", market.orderId(changed), changed[0])), path)
    m.matches(order, signature)


# ------------------------------------------------------------------------------ expiry


@pytest.mark.parametrize("path", PATHS)
def test_an_expired_order_is_refused(m, market, stage2_backed, buyer_key, new_order, chain, path):
    order = new_order(expiry=chain.time() + 60)
    signature = sign_order(market, order, buyer_key)
    chain.sleep(120)
    chain.mine()
    m.refused("an expired order", Attempt(order, signature, (
        "OrderExpired", market.orderId(order), order[EXPIRY])), path)


# ------------------------------------------------------------------------------ malleable and malformed signatures


@pytest.mark.parametrize("path", PATHS)
def test_malleable_and_malformed_signatures_are_refused(m, market, stage2_backed, buyer, buyer_key, new_order, path):
    order = new_order()
    good = sign_order(market, order, buyer_key)
    digest = bytes(market.orderId(order))
    r, s, v = split(good)
    high = join(r, SECP256K1_N - s, 55 - v)  # the twin signature: same r, s' = n - s, the other parity
    # The twin is a valid ECDSA signature of the buyer (the precompile recovers the buyer from it) ...
    assert ecrecover_precompile(digest, 55 - v, r, SECP256K1_N - s) == buyer.address
    y_parity = v - 27
    compact = r.to_bytes(32, "big") + ((y_parity << 255) | s).to_bytes(32, "big")  # EIP-2098, 64 bytes
    forms = {
        "high s (malleable twin)": high,  # ... refused all the same, as OpenZeppelin's ECDSA does
        "v as 0/1 instead of 27/28": join(r, s, v - 27),
        "64-byte compact (EIP-2098)": compact,
        "65 bytes plus a trailing byte": good + b"\x00",
        "64 bytes (r, s without v)": good[:64],
        "empty": b"",
        "r and s zero": join(0, 0, v),
        "s = n (out of range)": join(r, SECP256K1_N, v),
        "v = 29": join(r, s, 29),
    }
    invalid = ("InvalidSignature", market.orderId(order), buyer.address)
    for name, signature in forms.items():
        m.refused(f"signature: {name}", Attempt(order, signature, invalid), path)
    m.matches(order, good)


# ------------------------------------------------------------------------------ ERC-1271 buyers


@pytest.fixture
def wallet(federation, founder, accounts):
    """A smart-account buyer (stage 1: matches move no value, so it needs no deposit), owned by accounts[7]."""
    owner = accounts[7]
    container = compile_source(WALLET_SOURCE, solc_version="0.8.28").OwnedWallet
    w = container.deploy(owner, {"from": owner})
    federation.admit(w, 8, "smart-account buyer", {"from": founder})
    return w, key_of(owner, accounts)


@pytest.mark.parametrize("path", PATHS)
def test_contract_buyer_signatures(m, market, second_market, wallet, accounts, chain, path):
    w, owner_key = wallet
    order = make_order(w.address, expiry=chain.time() + 86400, nonce=1)
    oid = market.orderId(order)
    invalid = ("InvalidSignature", oid, w.address)
    stranger = sign_order(market, order, key_of(accounts[8], accounts))
    m.refused("ERC-1271: a stranger's signature", Attempt(order, stranger, invalid), path)
    for_second = sign_order(second_market.market, order, owner_key)
    m.refused("ERC-1271: signed for another market", Attempt(order, for_second, invalid), path)
    r, s, v = split(sign_order(market, order, owner_key))
    m.refused("ERC-1271: high s", Attempt(order, join(r, SECP256K1_N - s, 55 - v), invalid), path)
    signature = sign_order(market, order, owner_key)
    tx = m.matches(order, signature)
    assert tx.events["Matched"][0]["id"] == oid
    m.refused("ERC-1271: the same order again", Attempt(order, signature, ("OrderAlreadyUsed", oid, ACCEPTED)), path)
    later = make_order(w.address, expiry=chain.time() + 86400, nonce=2)
    w.breakIt({"from": accounts[7]})  # a wallet whose check reverts is a failed signature, not a failed match
    m.refused("ERC-1271: the wallet's check reverts", Attempt(later, sign_order(market, later, owner_key), (
        "InvalidSignature", market.orderId(later), w.address)), path)
