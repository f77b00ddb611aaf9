"""EIP-712 orders and the transaction sender against the real Market on Anvil."""

from __future__ import annotations

import time

import pytest
from hexbytes import HexBytes

from suanwang.chain.bill import Seats, make_bill, pack_deal, pack_entry, priced_transit, unpack_deal
from suanwang.chain.deployment import load_abi
from suanwang.chain.errors import ChainRevert, ErrorDecoder
from suanwang.chain.market import (
    TxSender,
    encode_call,
    order_id,
    order_id_and_signer,
    recover_order_signer,
    sign_order,
)
from suanwang.roles import Role
from tests.support.orders import ORDER_DEFAULTS
from tests.support.stack import BUILD_DIR, Chain, node_spec


def decoder() -> ErrorDecoder:
    return ErrorDecoder([load_abi(BUILD_DIR, n) for n in ("Federation", "NodeRegistry", "Market")])


def an_order(buyer: str, **changes: object) -> dict[str, object]:
    order: dict[str, object] = {
        **ORDER_DEFAULTS,
        "buyer": buyer,
        "logicMcu": 8_000,
        "parallelMcu": 0,
        "neuralMcu": 0,
        "memoryMib": 4096,
        "gpuModel": 0,
        "gpuCount": 0,
        "minTier": 0,
        "duration": 3600,
        "maxPricePerCuHour": 2 * 10**18,
        "maxTotal": 10**20,
        "maxLatencyMs": 50,
        "minBandwidthMbps": 100,
        "autoAccept": True,
        "expiry": int(time.time()) + 3600,
        "nonce": 1,
    }
    order.update(changes)
    return order


def node_operator_line(chain: Chain, order: dict[str, object]) -> list[tuple[str, int]]:
    """The one transit line every bill needs: the node's network operator (node_spec's, the founder) at its
    published tariff for the order's bandwidth and duration."""
    operator = chain.account_with(Role.OPERATOR).address
    tariff = int(chain.contract("Market").functions.transitTariffOf(operator).call())
    return priced_transit(order, [(operator, tariff)])


def buyer_key(chain: Chain) -> str:
    account = next(a for a in chain.deployment.accounts if a.roles == Role.BUYER)
    assert account.private_key
    return account.private_key


def test_local_order_id_and_signature_match_the_contract(chain: Chain) -> None:
    market = chain.contract("Market")
    key = buyer_key(chain)
    buyer = chain.w3.eth.account.from_key(key).address
    order = an_order(buyer)
    local = order_id(order, chain.deployment.chain_id, market.address)
    assert local == "0x" + market.functions.orderId(order).call().hex()
    signature = sign_order(order, key, chain.deployment.chain_id, market.address)
    assert recover_order_signer(order, signature, chain.deployment.chain_id, market.address) == buyer
    assert order_id_and_signer(order, signature, chain.deployment.chain_id, market.address) == (local, buyer)


def test_a_signed_order_is_matched_by_the_matcher_with_the_exact_bill(chain: Chain) -> None:
    market, registry = chain.contract("Market"), chain.contract("NodeRegistry")
    chain.transact(
        chain.account_with(Role.CLOUD),
        registry.functions.registerNode(node_spec(chain.account_with(Role.OPERATOR).address)),
    )
    key = buyer_key(chain)
    order = an_order(chain.w3.eth.account.from_key(key).address)
    signature = sign_order(order, key, chain.deployment.chain_id, market.address)
    fee_bps = chain.contract("Federation").functions.platformFeeBps().call()
    transit = node_operator_line(chain, order)
    bill = make_bill(order, 1, 15 * 10**17, fee_bps, transit)
    matcher = TxSender(chain.w3, chain.account_with(Role.MATCHER), decoder())
    seats = Seats.of(market.functions.transitOperators().call())
    entry = pack_entry(order, signature, bill.packed(seats))
    receipt = matcher.send(market.functions.matchSigned(entry))
    matched = market.events.Matched().process_receipt(receipt)
    deal = unpack_deal("0x" + bytes(matched[0]["args"]["id"]).hex(), bytes(matched[0]["args"]["deal"]), seats)
    assert deal["computeFee"] == bill.compute_fee == 15 * 10**17 * 8_000 * 3600 // 3_600_000
    assert (deal["buyer"], deal["nodeId"]) == (order["buyer"], 1)
    assert (deal["transitOperators"], deal["transitFees"]) == ([a for a, _ in transit], [f for _, f in transit])
    assert (deal["minRunSeconds"], deal["maxLatencyMs"]) == (order["minRunSeconds"], order["maxLatencyMs"])
    status, deadline = market.functions.statusOf(matched[0]["args"]["id"]).call()
    assert status == deal["status"] == 3  # Accepted (autoAccept)
    assert deadline == deal["deadline"]
    assert pack_deal(deal, seats) == bytes(matched[0]["args"]["deal"])  # what every lifecycle call passes back
    with pytest.raises(ChainRevert) as replay:  # the same signed order cannot be used twice
        matcher.send(market.functions.matchSigned(entry))
    assert replay.value.name == "OrderAlreadyUsed"


def test_reverts_are_decoded_with_their_values(chain: Chain) -> None:
    registry = chain.contract("NodeRegistry")
    seller = TxSender(chain.w3, chain.account_with(Role.CLOUD), decoder())
    empty = node_spec(chain.account_with(Role.OPERATOR).address, logicMcu=0, parallelMcu=0, neuralMcu=0)
    with pytest.raises(ChainRevert, match=r"^ZeroCapacity\(\)$"):
        seller.send(registry.functions.registerNode(empty))
    stranger = TxSender(chain.w3, chain.w3.eth.account.create(), decoder())
    with pytest.raises(ChainRevert) as not_member:
        stranger.send(registry.functions.registerNode(node_spec(chain.account_with(Role.OPERATOR).address)))
    assert not_member.value.name == "NotSeller"
    assert not_member.value.args_by_name["caller"] == stranger.address


def test_call_data_is_what_web3_encodes(chain: Chain) -> None:
    market, registry = chain.contract("Market"), chain.contract("NodeRegistry")
    key = buyer_key(chain)
    buyer = chain.w3.eth.account.from_key(key).address
    transit = [chain.account_with(Role.OPERATOR).address, chain.account_with(Role.CLOUD).address]
    entries = b""
    for nonce in (1, 2):
        order = an_order(buyer, nonce=nonce)
        bill = make_bill(order, 3, 10**18, 250, list(zip(transit, [7 * 10**15, 10**16], strict=True)))
        signature = sign_order(order, key, chain.deployment.chain_id, market.address)
        entries += pack_entry(order, signature, bill.packed(Seats.of(transit)))  # the encoding only
    batch = market.functions.matchSignedBatch(entries)
    assert encode_call(batch) == HexBytes(market.encode_abi("matchSignedBatch", args=[entries]))
    # A struct given as a tuple, with a bytes32, a bytes16 and an address in it.
    spec = node_spec(chain.account_with(Role.OPERATOR).address)
    register = registry.functions.registerNode(spec)
    assert encode_call(register) == HexBytes(registry.encode_abi("registerNode", args=[spec]))


def test_a_reused_estimate_still_refuses_a_reverting_call_before_sending(chain: Chain) -> None:
    market, registry = chain.contract("Market"), chain.contract("NodeRegistry")
    chain.transact(
        chain.account_with(Role.CLOUD),
        registry.functions.registerNode(node_spec(chain.account_with(Role.OPERATOR).address)),
    )
    key = buyer_key(chain)
    order = an_order(chain.w3.eth.account.from_key(key).address, nonce=9)
    signature = sign_order(order, key, chain.deployment.chain_id, market.address)
    fee_bps = chain.contract("Federation").functions.platformFeeBps().call()
    bill = make_bill(order, 1, 15 * 10**17, fee_bps, node_operator_line(chain, order))
    matcher = TxSender(chain.w3, chain.account_with(Role.MATCHER), decoder())
    seats = Seats.of(market.functions.transitOperators().call())
    call = market.functions.matchSigned(pack_entry(order, signature, bill.packed(seats)))
    first = matcher.wait(matcher.submit(call, reuse_estimate=True))  # estimated: nothing seen yet
    assert first["status"] == 1
    nonce = chain.w3.eth.get_transaction_count(matcher.address)
    with pytest.raises(ChainRevert) as replay:  # the reused estimate's eth_call sees the revert
        matcher.submit(call, reuse_estimate=True)
    assert replay.value.name == "OrderAlreadyUsed"
    assert chain.w3.eth.get_transaction_count(matcher.address, "pending") == nonce  # nothing was sent


def test_a_nonce_the_node_has_passed_is_counted_again_once(chain: Chain) -> None:
    registry = chain.contract("NodeRegistry")
    seller = TxSender(chain.w3, chain.account_with(Role.CLOUD), decoder())
    seller.wait(seller.submit(registry.functions.registerNode(node_spec(chain.account_with(Role.OPERATOR).address))))
    seller._nonce = 0  # as if a reorg had put back transactions the node has since mined again
    receipt = seller.wait(
        seller.submit(registry.functions.registerNode(node_spec(chain.account_with(Role.OPERATOR).address)))
    )
    assert receipt["status"] == 1
    assert seller._nonce == chain.w3.eth.get_transaction_count(seller.address, "pending")
