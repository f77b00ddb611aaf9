"""The replay's chain access: where the contracts' build artifacts are, a key per party, and
Anvil's clock."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eth_utils import keccak
from web3 import Web3

from suanwang.errors import SuanwangError
from suanwang.paths import REPO_ROOT


class ReplayError(SuanwangError):
    """The replay could not go on (a transaction the scenario needs was refused)."""


def build_dir() -> Path:
    return Path(os.environ.get("SUANWANG_BUILD_DIR", REPO_ROOT / "build" / "contracts"))


def party_key(scenario: str, party: str) -> str:
    """A deterministic development key per (scenario, party): same addresses on every run."""
    return "0x" + keccak(text=f"suanwang-replay/{scenario}/{party}").hex()


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
