"""The deployment record written by ``scripts/deploy.py`` and the contract ABIs from brownie's build."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suanwang.errors import InputError, NotFoundError

DEV_CHAIN_ID = 31337  # Anvil and Hardhat: the only chain on which demo private keys are handed out


@dataclass(frozen=True)
class Account:
    name: str
    address: str
    roles: int
    role_names: tuple[str, ...]
    private_key: str | None = None


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    genesis_hash: str
    deployed_block: int
    deployer: str
    contracts: dict[str, str]
    accounts: tuple[Account, ...] = field(default_factory=tuple)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"no deployment at {path}: run `make up` (or `brownie run scripts/deploy.py`) first",
                field="deployment_file",
            ) from exc
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not JSON ({exc})", field="deployment_file") from exc
        try:
            accounts = tuple(
                Account(
                    name=a["name"],
                    address=a["address"],
                    roles=int(a["roles"]),
                    role_names=tuple(a.get("role_names", ())),
                    private_key=a.get("private_key"),
                )
                for a in raw.get("accounts", ())
            )
            return cls(
                chain_id=int(raw["chain_id"]),
                genesis_hash=str(raw["genesis_hash"]),
                deployed_block=int(raw["deployed_block"]),
                deployer=str(raw["deployer"]),
                contracts={str(k): str(v) for k, v in raw["contracts"].items()},
                accounts=accounts,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: malformed deployment record ({exc!r})", field="deployment_file") from exc

    def public_accounts(self) -> list[dict[str, Any]]:
        """Accounts as served to clients: private keys only on the local development chain."""
        out = []
        for a in self.accounts:
            item: dict[str, Any] = {
                "name": a.name,
                "address": a.address,
                "roles": a.roles,
                "role_names": list(a.role_names),
            }
            if self.chain_id == DEV_CHAIN_ID and a.private_key:
                item["private_key"] = a.private_key
            out.append(item)
        return out


def load_abi(build_dir: Path, contract: str) -> list[dict[str, Any]]:
    """The ABI of ``contract`` from brownie's build artifact ``<build_dir>/<contract>.json``."""
    path = build_dir / f"{contract}.json"
    try:
        return list(json.loads(path.read_text())["abi"])
    except FileNotFoundError as exc:
        raise NotFoundError(f"no build artifact {path}: run `brownie compile`", field="build_dir") from exc
