"""Real local parts for tests: an Anvil chain with the contracts deployed by scripts/deploy.py.

Deploying through brownie takes seconds, so it happens once per session; each test then gets a fresh
Anvil started from the saved post-deployment state (0.1 s) and its own database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from suanwang.chain.deployment import Deployment, load_abi
from suanwang.chain.gateway import connect
from suanwang.config import Settings
from suanwang.devstack import Anvil, deploy_contracts, free_port
from suanwang.paths import REPO_ROOT
from suanwang.roles import Role

BUILD_DIR = REPO_ROOT / "build" / "contracts"


@dataclass
class Chain:
    anvil: Anvil
    deployment: Deployment
    deployment_file: Path
    w3: Web3

    def contract(self, name: str) -> Any:
        return self.w3.eth.contract(address=self.deployment.contracts[name], abi=load_abi(BUILD_DIR, name))

    def account_with(self, role: Role) -> Any:
        for account in self.deployment.accounts:
            if account.roles & role and account.private_key:
                return Account.from_key(account.private_key)
        raise LookupError(f"no demo account holds {role!r}")

    def transact(self, sender: Any, call: Any) -> Any:
        """Signs and sends `call` from `sender`; returns the receipt (status 1 or raises)."""
        tx = call.build_transaction(
            {"from": sender.address, "nonce": self.w3.eth.get_transaction_count(sender.address)}
        )
        signed = sender.sign_transaction(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        assert receipt["status"] == 1, receipt
        return receipt

    def settings(self, database_url: str, **overrides: Any) -> Settings:
        return Settings(
            rpc_url=self.anvil.url,
            database_url=database_url,
            deployment_file=self.deployment_file,
            build_dir=BUILD_DIR,
            **overrides,
        )


def node_spec(operator: str, **changes: Any) -> tuple[Any, ...]:
    """A NodeSpec tuple in INodeRegistry's field order: a medium node with two A100-class GPUs."""
    spec: dict[str, Any] = {
        "logicMcu": 64_000,
        "parallelMcu": 19_500,
        "neuralMcu": 312_000,
        "memoryMib": 262_144,
        "gpuModel": 1,
        "gpuCount": 2,
        "tier": 1,
        "pricePerCuHour": 15 * 10**17,
        "operator": operator,
        "router": Web3.keccak(text="Cernet/Beijing"),
        "locator": bytes.fromhex("fc000000000100000000000000000000"),
        "locatorLength": 48,
        "encryptionKey": bytes(32),  # no X25519 key yet: allowed (INodeRegistry.NodeSpec)
    }
    spec.update(changes)
    return tuple(spec.values())


class Deployments:
    """Chains with the contracts deployed by scripts/deploy.py at a given stage, each saved once per
    session as an Anvil state file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._saved: dict[int, tuple[Path, Path]] = {}

    def saved(self, stage: int) -> tuple[Path, Path]:
        if stage not in self._saved:
            deployment_file = self.folder / f"stage{stage}-deployment.json"
            state_file = self.folder / f"stage{stage}-state.json"
            with Anvil(free_port(), state_file=state_file) as anvil:  # written when Anvil stops
                deploy_contracts(anvil.url, anvil.port, deployment_file, {"SUANWANG_STAGE": str(stage)})
            self._saved[stage] = (deployment_file, state_file)
        return self._saved[stage]

    @contextmanager
    def chain(self, stage: int) -> Iterator[Chain]:
        deployment_file, state_file = self.saved(stage)
        anvil = Anvil(free_port(), load_state=state_file).start()
        try:
            yield Chain(anvil, Deployment.load(deployment_file), deployment_file, connect(anvil.url))
        finally:
            anvil.stop()


@pytest.fixture(scope="session")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Deployments:
    return Deployments(tmp_path_factory.mktemp("deployed"))


@pytest.fixture(scope="session")
def deployed_state(deployments: Deployments) -> tuple[Path, Path]:
    """The stage-1 deployment's (deployment file, Anvil state file)."""
    return deployments.saved(1)


@pytest.fixture
def chain(deployments: Deployments) -> Iterator[Chain]:
    """A fresh chain at stage 1 (the default deployment)."""
    with deployments.chain(1) as fresh:
        yield fresh
