"""The market's off-chain half: EIP-712 orders (hash, sign, recover) and a transaction sender for the
matcher and the providers' agents (nonces kept locally, gas estimated, reverts decoded).

The EIP-712 type and domain are the contract's (contracts/Market.sol: ORDER_TYPEHASH, EIP712("Suanwang
Market", "1")); `order_id` here must equal `Market.orderId` on chain, and a test checks it does."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, TransactionNotFound

from suanwang.chain.errors import ChainRevert, ErrorDecoder
from suanwang.errors import SuanwangError

DOMAIN_NAME = "Suanwang Market"
DOMAIN_VERSION = "1"
ORDER_TYPE = [
    {"name": "buyer", "type": "address"},
    {"name": "logicMcu", "type": "uint64"},
    {"name": "parallelMcu", "type": "uint64"},
    {"name": "neuralMcu", "type": "uint64"},
    {"name": "memoryMib", "type": "uint32"},
    {"name": "gpuModel", "type": "uint16"},
    {"name": "gpuCount", "type": "uint16"},
    {"name": "minTier", "type": "uint8"},
    {"name": "duration", "type": "uint32"},
    {"name": "maxPricePerCuHour", "type": "uint128"},
    {"name": "maxTotal", "type": "uint128"},
    {"name": "maxLatencyMs", "type": "uint32"},
    {"name": "minBandwidthMbps", "type": "uint32"},
    {"name": "autoAccept", "type": "bool"},
    {"name": "expiry", "type": "uint40"},
    {"name": "nonce", "type": "uint64"},
]
ORDER_FIELDS = tuple(f["name"] for f in ORDER_TYPE)


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


def order_id(order: Mapping[str, Any], chain_id: int, market: str) -> str:
    """The order's EIP-712 digest, which the market uses as its id (0x-hex)."""
    signable = encode_typed_data(full_message=typed_order(order, chain_id, market))
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    return "0x" + digest.hex()


def sign_order(order: Mapping[str, Any], private_key: str, chain_id: int, market: str) -> str:
    signed = Account.sign_typed_data(private_key, full_message=typed_order(order, chain_id, market))
    return "0x" + bytes(signed.signature).hex()


def recover_order_signer(order: Mapping[str, Any], signature: str, chain_id: int, market: str) -> str:
    signable = encode_typed_data(full_message=typed_order(order, chain_id, market))
    return str(Account.recover_message(signable, signature=HexBytes(signature)))


# How often a transaction still not mined is checked for being stranded (dropped, or behind a nonce gap).
STRANDED_CHECK_S = 1.0


class TransactionFailed(SuanwangError):
    """A transaction was mined but reverted, or never mined."""


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

    def submit(self, call: Any, gas_margin: float = 1.2) -> Any:
        """Estimates, signs and sends `call` without waiting for it to be mined; returns its hash.
        Several submits in a row go into the same block: their nonces are counted here."""
        try:
            gas = call.estimate_gas({"from": self.address})
        except (ContractCustomError, ContractLogicError) as exc:
            revert = self.call_error(exc)
            if revert is not None:
                raise revert from None
            raise
        with self._lock:
            if self._nonce is None:
                self._nonce = self.w3.eth.get_transaction_count(self.account.address, "pending")
            tx = call.build_transaction({"from": self.address, "nonce": self._nonce, "gas": int(gas * gas_margin)})
            signed = self.account.sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception:
                self._nonce = None  # re-read: the node may know a different next nonce
                raise
            self._nonce += 1
        return tx_hash

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
                with self._lock:
                    self._nonce = None
                raise TransactionFailed(
                    f"transaction {tx_hash.to_0x_hex()} "
                    + (stranded or f"was not mined in {self.receipt_timeout_s} s")
                ) from exc
        if receipt["status"] != 1:
            raise TransactionFailed(f"transaction {tx_hash.to_0x_hex()} reverted on chain")
        return receipt
