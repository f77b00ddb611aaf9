"""The web app's views: an operator vote shows with its voters (read from the index) and the proposal's
fields (read from the chain); an account's roles are named with the published role names."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from suanwang.api.app import create_app
from suanwang.roles import Role
from tests.support.stack import Chain, Deployments


@pytest.fixture
def stage3(deployments: Deployments, tmp_path: Path) -> Iterator[tuple[Chain, TestClient]]:
    with deployments.chain(3) as chain:
        app = create_app(chain.settings(f"sqlite:///{tmp_path / 'api.db'}", poll_interval_s=0.05))
        with TestClient(app) as client:
            yield chain, client


def proposal_when_indexed(client: TestClient, account: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        view = client.get("/api/views/operators").json()
        found = [p for p in view["proposals"] if p["account"] == account and p["voters"]]
        if found:
            return found[0]  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"no proposal for {account} with its votes indexed: {view['proposals']}")


def test_an_operator_proposal_shows_its_fields_and_who_voted(stage3: tuple[Chain, TestClient]) -> None:
    chain, client = stage3
    federation = chain.contract("Federation")
    proposer = chain.account_with(Role.OPERATOR)
    candidate = Account.create().address
    chain.transact(proposer, federation.functions.proposeOperator(candidate, "Newcomer"))
    if not federation.functions.hasVoted(federation.functions.proposalCount().call() - 1, proposer.address).call():
        chain.transact(proposer, federation.functions.vote(federation.functions.proposalCount().call() - 1))

    proposal = proposal_when_indexed(client, candidate)
    assert proposal["name"] == "Newcomer" and proposal["admit"] and proposal["open"]
    assert proposal["role_names"] == ["operator"]
    assert proposal["voters"] == [proposer.address]


def test_balances_name_the_accounts_indexed_roles(stage3: tuple[Chain, TestClient]) -> None:
    chain, client = stage3
    buyer = chain.account_with(Role.BUYER)
    deadline = time.monotonic() + 20
    while (body := client.get(f"/api/views/balances/{buyer.address}").json())["roles"] == 0:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    assert "buyer" in body["role_names"] and body["roles"] & Role.BUYER
    assert int(body["token"]) == chain.contract("SettlementToken").functions.balanceOf(buyer.address).call()
    stranger = client.get(f"/api/views/balances/{Account.create().address}").json()
    assert (stranger["roles"], stranger["role_names"], stranger["escrow"]) == (0, [], "0")
