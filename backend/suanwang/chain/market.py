"""The market's off-chain half: EIP-712 orders (hash, sign, recover) and a transaction sender for the
matcher and the providers' agents (nonces kept locally, gas estimated, reverts decoded, call data
encoded once).

The EIP-712 type and domain are the contract's (contracts/Market.sol: ORDER_TYPEHASH, EIP712("Suanwang
Market", "1")); `order_id` here must equal `Market.orderId` on chain, and a test checks it does."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping
from typing import Any

import eth_abi
from eth_account import Account
from eth_account.messages import SignableMessage
from eth_account.signers.local import LocalAccount
from eth_utils import collapse_if_tuple, keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, TransactionNotFound

from suanwang.chain.errors import ChainRevert, ErrorDecoder
from suanwang.chain.order_type import ORDER_FIELDS, ORDER_TYPE
from suanwang.errors import SuanwangError

DOMAIN_NAME = "Suanwang Market"
DOMAIN_VERSION = "1"


def typed_order(order: Mapping[str, Any], chain_id: int, market: str) -> dict[str, Any]:
    """The full EIP-712 message of `order` (what a wallet shows and signs)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": ORDER_TYPE,
        },
        "primaryType": "Order",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": Web3.to_checksum_address(market),
        },
        "message": {name: order[name] for name in ORDER_FIELDS},
    }


# EIP-712 (https://eips.ethereum.org/EIPS/eip-712): hashStruct(s) = keccak256(typeHash || encodeData(s)),
# where every field of Order is a static type, so encodeData is the ABI encoding of the values; the
# signed digest is keccak256(0x19 0x01 || domainSeparator || hashStruct(order)).
ORDER_TYPEHASH = keccak(text="Order(" + ",".join(f"{f['type']} {f['name']}" for f in ORDER_TYPE) + ")")
DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


@functools.lru_cache(maxsize=64)
def domain_separator(chain_id: int, market: str) -> bytes:
    return keccak(
        eth_abi.encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(text=DOMAIN_NAME), keccak(text=DOMAIN_VERSION), chain_id, market],
        )
    )


def signable_order(order: Mapping[str, Any], chain_id: int, market: str) -> SignableMessage:
    """The EIP-712 message of `order` as eth_account signs and recovers it: the same bytes as
    `encode_typed_data(full_message=typed_order(...))` (a test holds them equal), with the domain
    separator computed once per market; eth_account hashes the domain and walks the types again for every
    order, a quarter of the API's intake of signed orders (py-spy on bench/e2e)."""
    values = [_abi_word(f["type"], order[f["name"]]) for f in ORDER_TYPE]
    struct_hash = keccak(ORDER_TYPEHASH + eth_abi.encode([f["type"] for f in ORDER_TYPE], values))
    return SignableMessage(b"\x01", domain_separator(chain_id, market.lower()), struct_hash)


def _abi_word(kind: str, value: Any) -> Any:
    """A field's value as eth_abi encodes it: a bytes32 given as 0x-hex (as orders travel in JSON) as bytes."""
    if kind == "bytes32" and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return value


def order_id(order: Mapping[str, Any], chain_id: int, market: str) -> str:
    """The order's EIP-712 digest, which the market uses as its id (0x-hex)."""
    return _order_id(signable_order(order, chain_id, market))


def _order_id(signable: SignableMessage) -> str:
    return "0x" + keccak(b"\x19" + signable.version + signable.header + signable.body).hex()


def order_id_and_signer(order: Mapping[str, Any], signature: str, chain_id: int, market: str) -> tuple[str, str]:
    """`order_id` and `recover_order_signer` from one EIP-712 encoding."""
    signable = signable_order(order, chain_id, market)
    return _order_id(signable), str(Account.recover_message(signable, signature=HexBytes(signature)))


def sign_order(order: Mapping[str, Any], private_key: str, chain_id: int, market: str) -> str:
    signed = Account.sign_typed_data(private_key, full_message=typed_order(order, chain_id, market))
    return "0x" + bytes(signed.signature).hex()


def recover_order_signer(order: Mapping[str, Any], signature: str, chain_id: int, market: str) -> str:
    return order_id_and_signer(order, signature, chain_id, market)[1]


def encode_call(call: Any) -> HexBytes:
    """The transaction data of `call` (a web3 ContractFunction with its arguments): its selector and the
    arguments ABI-encoded by eth_abi, after `_abi_value` shaped them by the function's ABI. web3's own
    encoder walks every value through its generic normalisers, and a batch of hundreds of matches spent
    most of the matcher's time there (py-spy, bench/e2e)."""
    inputs = call.abi["inputs"]
    values = [_abi_value(param, arg) for param, arg in zip(inputs, call.args, strict=True)]
    return HexBytes(HexBytes(call.selector) + eth_abi.encode([collapse_if_tuple(p) for p in inputs], values))


def _abi_value(param: Mapping[str, Any], value: Any) -> Any:
    """`value` as eth_abi takes it for the ABI parameter `param`: a struct given as a mapping becomes
    the tuple of its components in order, a hex string for a bytes type becomes bytes."""
    kind = str(param["type"])
    if kind.endswith("]"):  # an array: each element has the parameter's type with one dimension less
        element = {**param, "type": kind[: kind.rindex("[")]}
        return [_abi_value(element, v) for v in value]
    if kind == "tuple":
        components = param["components"]
        items = [value[c["name"]] for c in components] if isinstance(value, Mapping) else list(value)
        return tuple(_abi_value(c, v) for c, v in zip(components, items, strict=True))
    if kind.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return value


# How often a transaction still not mined is checked for being stranded (dropped, or behind a nonce gap).
STRANDED_CHECK_S = 1.0


class TransactionFailed(SuanwangError):
    """A transaction was mined but reverted, or never mined."""


# Fee fields are reused this long: reading them costs two RPC calls, and a lifecycle pass sends dozens.
# maxFeePerGas is twice the base fee plus the tip, web3.py's own default, which covers the base fee
# rising 12.5% a block (EIP-1559) for six full blocks in a row.
FEE_TTL_S = 1.0
# The margin over the largest estimate seen for a function whose estimate is reused (see `submit`).
REUSED_GAS_MARGIN = 1.5


class TxSender:
    """Sends transactions from one account: nonces counted locally (so a batch of sends does not
    wait for each other), re-read from the chain after any failure; gas estimated (which surfaces a
    revert, decoded, before anything is sent)."""

    def __init__(self, w3: Web3, account: LocalAccount, decoder: ErrorDecoder, receipt_timeout_s: float = 120) -> None:
        self.w3 = w3
        self.account = account
        self.decoder = decoder
        self.receipt_timeout_s = receipt_timeout_s
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._chain_id: int | None = None
        self._fees: tuple[float, dict[str, int]] | None = None  # (time.monotonic() read, fee fields)
        self._gas_seen: dict[bytes, int] = {}  # selector -> the largest estimate seen

    @property
    def address(self) -> str:
        return str(self.account.address)

    def call_error(self, exc: Exception) -> ChainRevert | None:
        data = getattr(exc, "data", None)
        if (
            isinstance(exc, ContractCustomError | ContractLogicError)
            and isinstance(data, str)
            and data.startswith("0x")
        ):
            return self.decoder.decode(bytes.fromhex(data[2:]))
        return None

    def _stranded(self, tx_hash: Any) -> str | None:
        """Why a transaction not yet mined never will be, or None while it may still be."""
        try:
            tx = self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return "was dropped (a reorg, or the node forgot it)"
        if tx.get("blockNumber") is not None:
            return None  # mined meanwhile: the receipt follows
        ready = self.w3.eth.get_transaction_count(self.account.address, "pending")
        if ready <= int(tx["nonce"]):
            return f"waits behind a nonce gap (the node can mine up to nonce {ready}, this one is {tx['nonce']})"
        return None

    def send(self, call: Any, gas_margin: float = 1.2) -> Any:
        """Estimates, signs and sends `call` (a web3 ContractFunction); returns the receipt."""
        return self.wait(self.submit(call, gas_margin))

    def submit(self, call: Any, gas_margin: float = 1.2, reuse_estimate: bool = False, gas: int | None = None) -> Any:
        """Estimates, signs and sends `call` without waiting for it to be mined; returns its hash.
        Several submits in a row go into the same block: their nonces are counted here. A `gas` given
        is the gas limit, with no estimate and so no revert check before sending.

        With `reuse_estimate` (for a function whose gas hardly depends on its arguments, such as the
        deal's lifecycle calls) the largest estimate seen for the function, with REUSED_GAS_MARGIN,
        is the gas limit, and a plain eth_call checks for a revert: one execution on the node instead
        of the estimate's search over gas limits."""
        request: dict[str, Any] = {"from": self.address, "to": call.address, "data": encode_call(call)}
        if gas is None:
            gas = self._gas_limit(request, gas_margin, reuse_estimate)
        with self._lock:
            for attempt in range(2):
                if self._nonce is None:
                    self._nonce = self.w3.eth.get_transaction_count(self.account.address, "pending")
                tx = {
                    "to": request["to"],
                    "data": request["data"],
                    "value": 0,
                    "gas": gas,
                    "nonce": self._nonce,
                    "chainId": self._chain(),
                    **self._fee_fields(),
                }
                signed = self.account.sign_transaction(tx)
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                    break
                except Exception as exc:
                    self._nonce = None  # re-read: the node may know a different next nonce
                    # The node has mined past the counted nonce (a reorg put our transactions back, or
                    # another process used the key): once more, at the node's next nonce.
                    if attempt or "nonce too low" not in str(exc).lower():
                        raise
            self._nonce = int(tx["nonce"]) + 1
        return tx_hash

    def _gas_limit(self, request: dict[str, Any], gas_margin: float, reuse_estimate: bool) -> int:
        selector = bytes(request["data"][:4])
        known = self._gas_seen.get(selector) if reuse_estimate else None
        try:
            if known is not None:
                self.w3.eth.call(request)  # type: ignore[arg-type]
                return int(known * REUSED_GAS_MARGIN)
            estimate = int(self.w3.eth.estimate_gas(request))  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            revert = self.call_error(exc)
            if revert is not None:
                raise revert from None
            raise
        self._gas_seen[selector] = max(estimate, self._gas_seen.get(selector, 0))
        return int(estimate * gas_margin)

    def _chain(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def _fee_fields(self) -> dict[str, int]:
        if self._fees is None or time.monotonic() - self._fees[0] > FEE_TTL_S:
            tip = int(self.w3.eth.max_priority_fee)
            base = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
            self._fees = (time.monotonic(), {"maxPriorityFeePerGas": tip, "maxFeePerGas": tip + 2 * base})
        return self._fees[1]

    def _given_up(self, tx_hash: Any, stranded: str | None) -> TransactionFailed:
        """A transaction that will not be mined (`stranded` says why, else the timeout passed): the next
        submit counts nonces again from the node's, since the node may have dropped it."""
        with self._lock:
            self._nonce = None
        reason = stranded or f"was not mined in {self.receipt_timeout_s} s"
        return TransactionFailed(f"transaction {tx_hash.to_0x_hex()} {reason}")

    def _reverted(self, tx_hash: Any) -> TransactionFailed:
        self._gas_seen.clear()  # it may have run out of gas on a reused estimate: estimate afresh
        return TransactionFailed(f"transaction {tx_hash.to_0x_hex()} reverted on chain")

    def poll(self, tx_hash: Any, submitted_at: float) -> Any | None:
        """The receipt of a submitted transaction if it was mined, else None (without waiting);
        TransactionFailed if it reverted, is stranded (see `wait`), or is still not mined
        `receipt_timeout_s` after `submitted_at` (a time.monotonic() reading)."""
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            stranded = self._stranded(tx_hash)
            if stranded is None and time.monotonic() - submitted_at < self.receipt_timeout_s:
                return None
            raise self._given_up(tx_hash, stranded) from None
        if receipt["status"] != 1:
            raise self._reverted(tx_hash)
        return receipt

    def wait(self, tx_hash: Any) -> Any:
        """The receipt of a submitted transaction; TransactionFailed if it reverted or will not be mined:
        not mined within the timeout, or (looked at every STRANDED_CHECK_S) stranded: forgotten by the
        node or queued behind a nonce gap. A reorg drops transactions, so the nonces counted here can run
        ahead of the chain's; the next submit then starts again from the chain's count."""
        deadline = time.monotonic() + self.receipt_timeout_s
        while True:
            try:
                receipt = self.w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=min(STRANDED_CHECK_S, self.receipt_timeout_s), poll_latency=0.02
                )
                break
            except TimeExhausted as exc:
                stranded = self._stranded(tx_hash)
                if stranded is None and time.monotonic() < deadline:
                    continue
                raise self._given_up(tx_hash, stranded) from exc
        if receipt["status"] != 1:
            raise self._reverted(tx_hash)
        return receipt
