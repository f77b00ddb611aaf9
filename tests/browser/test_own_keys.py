"""Buyers and arbiters act from the web app with their own keys, through a browser wallet found by EIP-6963.
The service holds the matcher's key alone (SUANWANG_SERVICE_KEYS=matcher) and the seller runs its own
provider agent, so nothing but the buyer's own signature can settle or dispute a deal, and nothing but the
drawn arbiter's can rule on it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from suanwang.devstack import AgentProcess, ApiServer, rpc
from tests.backend.lifecycle.conftest import prepare_market
from tests.browser.conftest import screenshot
from tests.browser.test_trading import CONFIRMED, place_order_from_python, wait_for_order
from tests.support.agents import admit_arbiter, matcher_service, provider_agent
from tests.support.stack import Chain, Deployments

WALLET_SCRIPT = Path(__file__).with_name("eip6963_wallet.js")
# Anvil's development account 8 (Foundry's mnemonic), which no demo member uses: admitted as an arbiter
# with no part in any deal (the demo arbiter is the matcher too, so never drawn for what it matched).
ARBITER_KEY = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"
BUYER_WALLET, ARBITER_WALLET = "Test buyer wallet", "Test arbiter wallet"
SETTLED, DISPUTED, REFUNDED = 7, 6, 8  # IMarketTypes.Status


@dataclass
class AgentMarket:
    chain: Chain
    service: ApiServer
    buyer: Any
    arbiter: Any
    agent: AgentProcess

    def status(self, deal_id: str) -> int:
        return int(self.chain.contract("Market").functions.statusOf(bytes.fromhex(deal_id[2:])).call()[0])

    def escrow(self, address: str) -> int:
        return int(self.chain.contract("Market").functions.balanceOf(address).call())

    def sender_of(self, event: str, deal_id: str) -> str:
        """Who sent the transaction that emitted the deal's `event`."""
        market = self.chain.contract("Market")
        logs = getattr(market.events, event).get_logs(from_block=0, argument_filters={"id": bytes.fromhex(deal_id[2:])})
        assert len(logs) == 1, logs
        return str(self.chain.w3.eth.get_transaction(logs[0]["transactionHash"])["from"])

    def completed(self, order_id: str) -> dict[str, Any]:
        assert self.agent.alive(), self.agent.log_file.read_text()[-3000:]
        wait_for_order(self.service, order_id, lambda o: (o.get("deal") or {}).get("status") == "completed", 120)
        return httpx.get(f"{self.service.url}/api/orders/{order_id}", timeout=10).json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def market(deployments: Deployments, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentMarket]:
    """Stage 3: a staked node of the cloud team (its provider agent runs it), a funded buyer, an arbiter."""
    tmp_path = tmp_path_factory.mktemp("own-keys")
    with deployments.chain(3) as chain:
        provider, buyer, _transit, _node_id, marketplace = prepare_market(chain, tmp_path)
        arbiter = admit_arbiter(chain, ARBITER_KEY)
        service = matcher_service(chain, tmp_path, marketplace, interval_s=0.1)
        # The agent reports to the service: its heartbeats and its node's live metrics (the nodes view).
        agent = provider_agent(chain, tmp_path, provider, "--service-url", service.url)
        service.start()
        try:
            agent.start()
            yield AgentMarket(chain, service, buyer, arbiter, agent)
        finally:
            agent.stop()
            service.stop()


def with_wallets(page: Page, m: AgentMarket) -> None:
    """Installs the test wallet in every page load: the buyer's and the arbiter's, each announced by EIP-6963."""
    wallets = [
        {"uuid": "6f1a0c9e-0000-4000-8000-000000000001", "name": BUYER_WALLET, "address": m.buyer.address},
        {"uuid": "6f1a0c9e-0000-4000-8000-000000000002", "name": ARBITER_WALLET, "address": m.arbiter.address},
    ]
    config = json.dumps({"rpcUrl": m.chain.anvil.url, "wallets": wallets})
    page.add_init_script(script=f"window.__TEST_WALLETS__ = {config};\n{WALLET_SCRIPT.read_text()}")


def connect(page: Page, wallet: str) -> None:
    page.get_by_label("Account", exact=True).select_option(label=wallet)
    expect(page.get_by_test_id("signer")).to_contain_text(f"signing with {wallet}", timeout=10_000)


def wallet_methods(page: Page, wallet: str) -> set[str]:
    return {r["method"] for r in page.evaluate("window.__walletRequests") if r["wallet"] == wallet}


def test_a_buyer_signs_its_order_and_settles_it_early_from_its_own_wallet(market: AgentMarket, page: Page) -> None:
    m = market
    with_wallets(page, m)
    page.goto(m.service.url + "/#/buyer")
    # Both injected wallets are listed beside the development keys, which say what they are.
    options = page.get_by_label("Account", exact=True).locator("option")
    expect(options.filter(has_text=BUYER_WALLET)).to_have_count(1, timeout=10_000)
    expect(options.filter(has_text=ARBITER_WALLET)).to_have_count(1)
    expect(options.filter(has_text="development key (local chain only)").first).to_be_attached()
    connect(page, BUYER_WALLET)

    page.get_by_label("Access point", exact=True).select_option("Cernet/Shanghai")
    page.get_by_label("Min bandwidth (Mbps)").fill("10")
    page.get_by_role("button", name="Get quote").click()
    expect(page.get_by_test_id("candidate-1")).to_contain_text("CERNET cloud team", timeout=15_000)
    page.get_by_role("button", name="Sign and place order").click()
    expect(page.get_by_test_id("order-status")).to_contain_text(re.compile("^Order .* placed"), timeout=15_000)
    card = page.locator("article.order").first
    order_id = (card.get_attribute("data-testid") or "").removeprefix("order-")
    assert re.fullmatch(r"0x[0-9a-f]{64}", order_id), order_id

    # The provider's agent runs the job and completes the deal; the buyer confirms the result at once.
    m.completed(order_id)
    expect(card.get_by_test_id("deal-actions")).to_contain_text("confirm the result and pay now", timeout=15_000)
    expect(card.get_by_role("button", name=re.compile(r"^Dispute \(bond \d"))).to_be_visible()
    card.get_by_role("button", name="Settle now").click()
    expect(card.get_by_test_id("deal-status")).to_contain_text(CONFIRMED, timeout=30_000)
    expect(card.get_by_test_id("deal-status")).to_contain_text("Settled: the seller and the operators are paid")
    expect(card.get_by_test_id("order-state")).to_have_text("settled", timeout=15_000)
    screenshot(page, "buyer-settled-early-from-its-wallet")

    # Long before the dispute window closed, by the buyer's own transaction, signed in its wallet.
    assert m.status(order_id) == SETTLED
    assert m.sender_of("Settled", order_id) == m.buyer.address
    assert {"eth_signTypedData_v4", "eth_sendTransaction"} <= wallet_methods(page, BUYER_WALLET)


def test_a_buyer_disputes_and_the_drawn_arbiter_rules_from_the_web_app(market: AgentMarket, page: Page) -> None:
    m = market
    order_id = place_order_from_python(m.chain, m.service, m.buyer, "Cernet/Shanghai", min_bandwidth_mbps=10)
    total = int(m.completed(order_id)["bill"]["total"])
    with_wallets(page, m)
    page.goto(m.service.url + "/#/buyer")
    connect(page, BUYER_WALLET)

    # The card says what the dispute costs: the bond (10% of the deal's total), from the buyer's escrow.
    card = page.get_by_test_id(f"order-{order_id}")
    expect(card.get_by_test_id("deal-actions")).to_contain_text("bond of 10% of the deal's total", timeout=15_000)
    before = m.escrow(m.buyer.address)
    card.get_by_role("button", name=re.compile(r"^Dispute \(bond")).click()
    expect(card.get_by_test_id("deal-status")).to_contain_text(CONFIRMED, timeout=30_000)
    expect(card.get_by_test_id("deal-status")).to_contain_text("Disputed with a bond of")
    expect(card.get_by_test_id("order-state")).to_have_text("in dispute", timeout=15_000)
    assert m.status(order_id) == DISPUTED
    assert before - m.escrow(m.buyer.address) == total * 1_000 // 10_000
    assert m.sender_of("Disputed", order_id) == m.buyer.address

    # The arbiter is drawn from the hash of a block mined after the dispute: the buyer is not it.
    for _ in range(2):
        rpc(m.chain.anvil.url, "evm_mine")
    page.get_by_role("link", name="Arbiter").click()
    expect(page.get_by_test_id("no-disputes")).to_be_visible(timeout=15_000)

    connect(page, ARBITER_WALLET)
    dispute = page.get_by_test_id(f"dispute-{order_id}")
    expect(dispute).to_contain_text("Shenzhen robotics", timeout=15_000)
    expect(dispute).to_contain_text("bafkrei")  # the result the seller delivered, to judge by
    dispute.get_by_role("button", name="Buyer wins").click()
    expect(dispute.get_by_test_id("ruling-status")).to_contain_text(CONFIRMED, timeout=30_000)
    expect(dispute.get_by_test_id("ruling-status")).to_contain_text("Ruled for the buyer")
    screenshot(page, "arbiter-ruled-for-the-buyer")

    assert m.status(order_id) == REFUNDED
    assert m.sender_of("Settled", order_id) == m.arbiter.address
    assert m.escrow(m.buyer.address) > before  # the bond back, and the compute and platform fees refunded
    assert "eth_sendTransaction" in wallet_methods(page, ARBITER_WALLET)
