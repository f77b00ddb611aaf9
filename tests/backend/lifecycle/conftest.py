"""A market ready to trade: stage-3 chain, a staked provider node in CERNET, a funded buyer, and the
service (API, indexer, orchestrator) running on it with a given executor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from eth_account import Account
from fastapi.testclient import TestClient

from suanwang.api.app import create_app
from suanwang.chain.market import sign_order
from suanwang.devstack import rpc
from suanwang.network.config import PEERING_DIR, load_peering_file
from suanwang.privacy import open_envelope, result_key_pair
from suanwang.privacy.documents import content_request_headers
from tests.support.orders import (
    ORDER_DEFAULTS,
    as_body,
    chain_epoch,
    chain_nodes,
    full_order,
    job_body,
    node_public_key,
    sealed_job,
)
from tests.support.stack import Chain, Deployments

TOKEN = 10**18
GLOBAL_NETWORK = PEERING_DIR / "global-research-and-transit.yaml"
# Topology operator -> the deployment account paid its transit (the node's operator, the founder, too).
TRANSIT_ACCOUNTS = {
    "Cernet": "CERNET network team",
    "Geant2012": "China Mobile (second operator)",
    "Abilene": "CERNET operator",
    "Cogentco": "CERNET operator",
}


@dataclass
class Market:
    chain: Chain
    client: TestClient
    provider: Any
    buyer: Any
    transit: dict[str, Any]  # topology operator -> account paid its transit
    node_id: int

    def account(self, name: str) -> Any:
        entry = next(a for a in self.chain.deployment.accounts if a.name == name)
        return Account.from_key(entry.private_key)

    def escrow(self, address: str) -> int:
        return int(self.chain.contract("Market").functions.balanceOf(address).call())

    def order(self, **changes: Any) -> dict[str, Any]:
        chain_time = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        order: dict[str, Any] = {
            **ORDER_DEFAULTS,
            "epoch": chain_epoch(self.chain),
            "buyer": self.buyer.address,
            "logicMcu": 4_000,
            "parallelMcu": 1_000,
            "neuralMcu": 0,
            "memoryMib": 1024,
            "gpuModel": 0,
            "gpuCount": 0,
            "minTier": 0,
            "duration": 600,
            "maxPricePerCuHour": 2 * TOKEN,
            "maxTotal": 1000 * TOKEN,
            "maxLatencyMs": 0,
            "minBandwidthMbps": 100,
            "autoAccept": True,
            "expiry": chain_time + 3600,
            "nonce": time.time_ns() % 2**63,
        }
        order.update(changes)
        return order

    def sealed(self, command: list[str]) -> bytes:
        """The job `command` as the buyer seals it: to every node with a key (as to a quote's candidates)
        and to itself."""
        return sealed_job(command, self.buyer, self.chain.deployment.chain_id, chain_nodes(self.chain))

    def fetch(self, cid: str, reader: Any = None) -> Any:
        """GET /api/content/<cid>, signed by `reader` (the buyer by default)."""
        headers = content_request_headers((reader or self.buyer).key, cid)
        return self.client.get(f"/api/content/{cid}", headers=headers)

    def opened_result(self, cid: str) -> tuple[dict[str, Any], bytes]:
        """The result document under `cid` and its job's output, fetched and opened as the buyer."""
        key = result_key_pair(self.buyer.key, self.chain.deployment.chain_id)
        document = json.loads(open_envelope(self.fetch(cid).content, key.public_key, key.private_key))
        output = open_envelope(self.fetch(document["output"]).content, key.public_key, key.private_key)
        return document, output

    def submit(self, order: dict[str, Any], access_point: str, command: list[str]) -> dict[str, Any]:
        """Signs `order` for the job `command`, sealed to the market's node (the sealed specification's
        digest is the order's specDigest), and places it."""
        deployment = self.chain.deployment
        envelope = self.sealed(command)
        order = full_order(order, envelope)
        signature = sign_order(order, self.buyer.key.hex(), deployment.chain_id, deployment.contracts["Market"])
        response = self.client.post(
            "/api/orders",
            json={
                "order": as_body(order),
                "signature": signature,
                "access_point": access_point,
                "job": job_body(envelope),
            },
        )
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def let_chain_time_pass(self, seconds: int) -> None:
        """Mines a block `seconds` of chain time later (with automine, the chain's clock moves only with a
        block: what a deal's minRunSeconds waits for)."""
        rpc(self.chain.anvil.url, "evm_increaseTime", [seconds])
        rpc(self.chain.anvil.url, "evm_mine")

    def wait_for(self, order_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.client.get(f"/api/orders/{order_id}").json()
            if done(body):
                return body
            time.sleep(0.1)
        raise AssertionError(f"order {order_id} did not get there in {timeout_s} s: {body}")


def prepare_market(chain: Chain, tmp_path: Path, **settings: Any) -> tuple[Any, Any, dict[str, Any], int, Path]:
    """Stakes and registers the provider's node, funds the buyer, writes the marketplace file."""
    by_name = {a.name: Account.from_key(a.private_key) for a in chain.deployment.accounts if a.private_key}
    provider, buyer = by_name["CERNET cloud team"], by_name["Shenzhen robotics (enterprise buyer)"]
    transit = {"Cernet": by_name["CERNET network team"], "Geant2012": by_name["China Mobile (second operator)"]}
    token, market, registry = (
        chain.contract("SettlementToken"),
        chain.contract("Market"),
        chain.contract("NodeRegistry"),
    )
    chain.transact(provider, token.functions.approve(market.address, 1_000 * TOKEN))
    chain.transact(provider, market.functions.deposit(1_000 * TOKEN))  # a stake comes out of the escrow balance
    chain.transact(provider, market.functions.stake(1_000 * TOKEN))
    beijing = next(r for r in load_peering_file(GLOBAL_NETWORK).routers if r.name == "Cernet/Beijing")
    spec = (
        64_000,
        20_000,
        0,
        65_536,
        0,
        0,
        1,
        15 * 10**17,
        by_name["CERNET operator"].address,
        beijing.router_id,
        beijing.locator.prefix,
        beijing.locator.length,
        node_public_key(provider, chain.deployment.chain_id),  # what its agent derives from its key
    )
    chain.transact(provider, registry.functions.registerNode(spec))
    node_id = int(registry.functions.nodeCount().call())
    chain.transact(buyer, token.functions.approve(market.address, 5_000 * TOKEN))
    chain.transact(buyer, market.functions.deposit(5_000 * TOKEN))
    # Each transit account publishes the price of the domain it is paid for (the highest of several), as
    # scripts/deploy.py does for the default marketplace: bills charge exactly these tariffs.
    prices = {op.name: op.transit_price_per_gbps_hour for op in load_peering_file(GLOBAL_NETWORK).operators}
    tariffs: dict[str, int] = {}
    for operator, account in TRANSIT_ACCOUNTS.items():
        tariffs[account] = max(tariffs.get(account, 0), prices[operator])
    for account, tariff in tariffs.items():
        chain.transact(by_name[account], market.functions.setTransitTariff(tariff))
    marketplace = tmp_path / "marketplace.yaml"
    marketplace.write_text(
        yaml.safe_dump(
            {
                "network": str(GLOBAL_NETWORK),
                "transit_accounts": TRANSIT_ACCOUNTS,
                "lease_bandwidth_gbps": 0.01,
            }
        )
    )
    return provider, buyer, transit, node_id, marketplace


@pytest.fixture
def market_factory(deployments: Deployments, tmp_path: Path) -> Iterator[Callable[..., Market]]:
    stack: list[Any] = []

    def start(**settings: Any) -> Market:
        chain_cm = deployments.chain(3)
        chain = chain_cm.__enter__()
        stack.append(chain_cm)
        provider, buyer, transit, node_id, marketplace = prepare_market(chain, tmp_path)
        app = create_app(
            chain.settings(
                f"sqlite:///{tmp_path / 'service.db'}",
                marketplace_file=marketplace,
                executor_dir=tmp_path / "executor",
                content_dir=tmp_path / "content",
                poll_interval_s=0.05,
                orchestrator_interval_s=0.05,
                **settings,
            )
        )
        client = TestClient(app)
        client.__enter__()
        stack.append(client)
        return Market(chain, client, provider, buyer, transit, node_id)

    yield start
    for item in reversed(stack):
        item.__exit__(None, None, None)
