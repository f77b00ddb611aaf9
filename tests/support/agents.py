"""The market as separate processes for tests: the matcher service holding the matcher's key alone, and
a party's agent with its own key, on a chain from `tests.support.stack`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account import Account

from suanwang.devstack import AgentProcess, ApiServer, free_port
from suanwang.roles import Role
from tests.support.stack import BUILD_DIR, Chain


def chain_env(chain: Chain, folder: Path) -> dict[str, str]:
    """What the service and every agent share: the chain, its deployment, and the content store the buyers'
    job specifications are in."""
    return {
        "SUANWANG_RPC_URL": chain.anvil.url,
        "SUANWANG_DEPLOYMENT_FILE": str(chain.deployment_file),
        "SUANWANG_BUILD_DIR": str(BUILD_DIR),
        "SUANWANG_CONTENT_DIR": str(folder / "content"),
    }


def matcher_service(chain: Chain, folder: Path, marketplace: Path, interval_s: float = 0.05) -> ApiServer:
    """`suanwang serve` with SUANWANG_SERVICE_KEYS=matcher (not started); its output in folder/service.log."""
    env = {
        **chain_env(chain, folder),
        "SUANWANG_DATABASE_URL": f"sqlite:///{folder / 'service.db'}",
        "SUANWANG_MARKETPLACE_FILE": str(marketplace),
        "SUANWANG_SERVICE_KEYS": "matcher",
        "SUANWANG_POLL_INTERVAL_S": str(interval_s),
        "SUANWANG_ORCHESTRATOR_INTERVAL_S": str(interval_s),
    }
    return ApiServer(free_port(), env, log_file=folder / "service.log")


def provider_agent(
    chain: Chain, folder: Path, seller: Any, *extra: str, env: dict[str, str] | None = None
) -> AgentProcess:
    """`suanwang agent provider` for `seller` (not started), with its store and executor state in `folder`
    (a local executor unless `extra` and `env` say otherwise)."""
    args = ["--store", str(folder / "provider.db"), "--executor-dir", str(folder / "provider-executor"), *extra]
    return AgentProcess(
        "provider", seller.key.hex(), args, {**chain_env(chain, folder), **(env or {})}, folder / "provider.log"
    )


def admit_arbiter(chain: Chain, key: str) -> Any:
    """Admits a fresh ARBITER (the demo arbiter is also the matcher, and so is never drawn)."""
    founder = next(
        Account.from_key(a.private_key) for a in chain.deployment.accounts if a.address == chain.deployment.deployer
    )
    arbiter = Account.from_key(key)
    chain.transact(founder, chain.contract("Federation").functions.admit(arbiter.address, int(Role.ARBITER), "arbiter"))
    return arbiter
