"""A web3.py connection to the chain with retries on transient RPC errors, and the deployment's contracts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from suanwang.chain.deployment import Deployment, load_abi
from suanwang.config import Settings

# Reads and raw-transaction sends are safe to repeat: a resent signed transaction has the same hash.
RETRYABLE_RPC_NAMESPACES = ("eth", "net", "web3")


def connect(rpc_url: str, timeout_s: float = 10.0, retries: int = 5) -> Web3:
    """A Web3 over HTTP that retries transient failures (connection refused, timeouts) with backoff;
    `retries=0` makes one attempt (web3 7's retry loop with zero retries returns no response at all)."""
    retrying = ExceptionRetryConfiguration(
        errors=(requests.ConnectionError, requests.Timeout),
        retries=retries,
        backoff_factor=0.2,
        method_allowlist=list(RETRYABLE_RPC_NAMESPACES),
    )
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout_s},
        exception_retry_configuration=retrying if retries > 0 else None,
    )
    return Web3(provider)


def connect_probe(rpc_url: str, timeout_s: float = 2.0) -> Web3:
    """A Web3 for health checks: one short attempt, so a node that does not answer makes `/health` say so
    at once instead of waiting through `connect`'s retries (up to a minute)."""
    return connect(rpc_url, timeout_s=timeout_s, retries=0)


def contracts(w3: Web3, deployment: Deployment, settings: Settings) -> dict[str, Contract]:
    """Bindings for every contract of the deployment whose build artifact exists."""
    out: dict[str, Contract] = {}
    for name, address in deployment.contracts.items():
        if (settings.build_dir / f"{name}.json").exists():
            out[name] = w3.eth.contract(
                address=Web3.to_checksum_address(address), abi=load_abi(settings.build_dir, name)
            )
    return out


def to_jsonable(value: Any) -> Any:
    """Decoded ABI values as JSON: bytes as 0x-hex, structs as objects, tuples as lists."""
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value
