"""The replay's chain access: contracts from brownie's ABIs, a sender per party, Anvil time."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract

from suanwang.chain.bill import Seats, unpack_deal
from suanwang.chain.deployment import load_abi
from suanwang.chain.errors import ErrorDecoder
from suanwang.chain.market import TxSender
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


def party_sender(w3: Web3, key: str, errors: ErrorDecoder) -> TxSender:
    """The party's transaction sender: the one the lifecycle's steps use (local nonces, gas estimated, EIP-1559
    fees, reverts decoded before anything is sent)."""
    return TxSender(w3, Account.from_key(key), errors)


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
