"""The replay's chain access: contracts from brownie's ABIs, a fast transaction sender, Anvil time."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from suanwang.chain.bill import Seats, unpack_deal
from suanwang.chain.deployment import load_abi
from suanwang.chain.errors import ChainRevert, ErrorDecoder
from suanwang.errors import SuanwangError
from suanwang.paths import REPO_ROOT

CONTRACTS = ("Federation", "NodeRegistry", "SettlementToken", "Market")


class ReplayError(SuanwangError):
    """The replay could not go on (a transaction the scenario needs was refused)."""


def build_dir() -> Path:
    return Path(os.environ.get("SUANWANG_BUILD_DIR", REPO_ROOT / "build" / "contracts"))


def load_contracts(w3: Web3, addresses: dict[str, str]) -> dict[str, Contract]:
    folder = build_dir()
    return {
        name: w3.eth.contract(address=Web3.to_checksum_address(addresses[name]), abi=load_abi(folder, name))
        for name in CONTRACTS
    }


def decoder(contracts: dict[str, Contract]) -> ErrorDecoder:
    return ErrorDecoder([cast(list[dict[str, Any]], list(c.abi)) for c in contracts.values()])


def party_key(scenario: str, party: str) -> str:
    """A deterministic development key per (scenario, party): same addresses on every run."""
    return "0x" + keccak(text=f"suanwang-replay/{scenario}/{party}").hex()


def result_cid(deal_id: str) -> str:
    """A CIDv1 (raw codec, sha2-256, base32) of the deal's stand-in result bytes."""
    digest = hashlib.sha256(f"result of {deal_id}".encode()).digest()
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + digest
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


class Sender:
    """Signs and sends from one key with a local nonce and a fixed gas limit (no estimate round trip);
    a reverted transaction is replayed as a call to decode its custom error."""

    def __init__(self, w3: Web3, key: str, chain_id: int, errors: ErrorDecoder) -> None:
        self.w3 = w3
        self.account = Account.from_key(key)
        self.address = str(self.account.address)
        self.chain_id = chain_id
        self.errors = errors
        self.nonce = int(w3.eth.get_transaction_count(self.account.address))

    def send(self, call: Any, gas: int = 1_500_000) -> Any:
        tx = call.build_transaction(
            {"from": self.address, "nonce": self.nonce, "gas": gas, "gasPrice": 0, "chainId": self.chain_id}
        )
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self.nonce += 1
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
        if receipt["status"] != 1:
            raise ReplayError(f"{call.fn_name} from {self.address} reverted: {self.why(call, receipt)}")
        return receipt

    def why(self, call: Any, receipt: Any) -> str:
        try:
            call.call({"from": self.address}, block_identifier=receipt["blockNumber"] - 1)
        except (ContractCustomError, ContractLogicError) as exc:
            data = getattr(exc, "data", None)
            if isinstance(data, str) and data.startswith("0x"):
                revert: ChainRevert = self.errors.decode(bytes.fromhex(data[2:]))
                return revert.message
            return str(exc)
        except Exception as exc:  # the call itself failed some other way
            return repr(exc)
        return f"out of gas or an unknown failure (gas used {receipt['gasUsed']})"


def rpc(w3: Web3, method: str, params: Iterable[Any]) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    if "error" in response:
        raise ReplayError(f"{method} failed: {response['error']}")
    return response.get("result")


def set_time(w3: Web3, timestamp: int) -> int:
    """Mines a block at `timestamp` (or the next second, if the chain is already past it)."""
    latest = int(w3.eth.get_block("latest")["timestamp"])
    target = max(timestamp, latest + 1)
    rpc(w3, "evm_setNextBlockTimestamp", [hex(target)])
    rpc(w3, "evm_mine", [])
    return target


def fund_gas(w3: Web3, address: str) -> None:
    rpc(w3, "anvil_setBalance", [address, hex(10**24)])


def matched_fields(args: Any, seats: Seats) -> dict[str, Any]:
    """The Matched event's fields by name (its `deal` bytes unpacked, layout in IMarket.sol), with the
    bytes themselves as `packed`: what every lifecycle call passes back."""
    fields = dict(args)
    packed = bytes(fields.pop("deal"))
    unpacked = unpack_deal(str(fields.get("id")), packed, seats)
    unpacked.pop("id")
    fields.update(unpacked)
    fields["packed"] = packed
    return fields
