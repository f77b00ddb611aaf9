"""Trading in a real browser: a buyer's order from quote to settlement on a node registered through the
page, a provider withdrawing what it earned, operators admitting an operator by vote in stage 3, and
every unmatched order explained."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import httpx
from eth_account import Account
from playwright.sync_api import Page, expect

from suanwang.chain.market import sign_order
from suanwang.devstack import ApiServer, rpc
from tests.browser.conftest import screenshot
from tests.support.orders import PLACEHOLDER_NODES, full_order, job_body, node_public_key, sealed_job
from tests.support.stack import Chain

TOKEN = 10**18
CONFIRMED = re.compile("Confirmed in block")
StackAt = Callable[[int], tuple[Chain, ApiServer]]


def account(chain: Chain, name: str) -> Any:
    entry = next(a for a in chain.deployment.accounts if a.name.startswith(name))
    return Account.from_key(entry.private_key)


def use_account(page: Page, chain: Chain, name: str) -> None:
    page.get_by_label("Account", exact=True).select_option(account(chain, name).address)


def record_hosts(page: Page) -> list[str]:
    hosts: list[str] = []
    page.on("request", lambda r: hosts.append(urlparse(r.url).netloc))
    return hosts


def only_backend_and_chain(hosts: list[str], chain: Chain, api: ApiServer) -> None:
    allowed = {urlparse(chain.anvil.url).netloc, urlparse(api.url).netloc}
    assert set(hosts) <= allowed, f"requests to other hosts: {set(hosts) - allowed}"


def funds(page: Page, amount: str, action: str) -> None:
    page.get_by_label("Amount (SWT)").fill(amount)
    page.get_by_role("button", name=action, exact=True).click()
    expect(page.get_by_test_id("funds-status")).to_have_text(CONFIRMED, timeout=20_000)


def test_buyer_order_from_quote_to_settlement_on_a_node_registered_in_the_page(stack_at: StackAt, page: Page) -> None:
    chain, api = stack_at(2)
    hosts = record_hosts(page)
    page.set_viewport_size({"width": 1280, "height": 800})

    # The provider funds its stake and registers a node attached to Beijing, all through the page.
    page.goto(api.url + "/#/provider")
    use_account(page, chain, "CERNET cloud team")
    funds(page, "600", "Deposit")
    funds(page, "600", "Stake")
    expect(page.get_by_test_id("balance-stake")).to_contain_text("600 SWT")
    page.get_by_label("Attachment router").select_option("Cernet/Beijing")
    page.get_by_role("button", name="Register node").click()
    expect(page.get_by_test_id("register-status")).to_have_text(CONFIRMED, timeout=20_000)
    expect(page.get_by_test_id("my-node-1")).to_be_visible(timeout=10_000)
    screenshot(page, "provider-registered-node")

    # The buyer deposits, asks for a quote from Wuhan, sees the bill and the path, signs.
    page.get_by_role("link", name="Buyer").click()
    use_account(page, chain, "CERNET research buyer")
    funds(page, "100", "Deposit")
    page.get_by_label("Access point", exact=True).select_option("Cernet/Wuhan")
    page.get_by_role("button", name="Get quote").click()
    candidate = page.get_by_test_id("candidate-1")
    expect(candidate).to_contain_text("CERNET cloud team", timeout=15_000)
    expect(candidate).to_contain_text("CERNET network team")  # the transit operator, paid per operator
    expect(candidate).to_contain_text("ms")
    expect(page.get_by_test_id("map-path")).to_be_visible()
    screenshot(page, "buyer-quote-with-path")
    page.get_by_role("button", name="Sign and place order").click()
    expect(page.get_by_test_id("order-status")).to_contain_text(re.compile("^Order .* placed"), timeout=15_000)

    # Live status through the lifecycle, to the receipt of who was paid what.
    order = page.locator("article.order").first
    expect(order.get_by_test_id("order-state")).to_have_text("settled", timeout=90_000)
    expect(order.get_by_test_id("result-cid")).to_have_text(re.compile("^bafkrei"))
    receipt = order.get_by_test_id("receipt")
    expect(receipt).to_contain_text("Compute → CERNET cloud team")
    expect(receipt).to_contain_text("Transit → CERNET network team")
    expect(receipt).to_contain_text("Platform fee")
    # How long the match and the job took, from the service's stamps.
    took = re.compile(r"on chain \+\d+\.\d s · running \+\d+\.\d s")
    expect(order.get_by_test_id("order-times")).to_contain_text(took)
    order.scroll_into_view_if_needed()
    screenshot(page, "buyer-order-settled")

    # The market page shows the match in its feed and the operator page the transit revenue.
    page.get_by_role("link", name="Market").click()
    expect(page.get_by_test_id("feed")).to_contain_text("matched to node #1", timeout=10_000)
    expect(page.get_by_test_id("matched-count")).to_have_text("1", timeout=10_000)
    screenshot(page, "market-feed-and-charts")
    page.get_by_role("link", name="Operator").click()
    expect(page.get_by_test_id("transit-revenue")).to_contain_text("CERNET network team", timeout=10_000)
    screenshot(page, "operator-transit-revenue")
    only_backend_and_chain(hosts, chain, api)


def place_order_from_python(chain: Chain, api: ApiServer, buyer: Any, access_point: str, **changes: Any) -> str:
    """Signs an order the way a wallet would and posts it; returns its id."""
    body = {
        "buyer": buyer.address,
        "logic_mcu": 4_000,
        "parallel_mcu": 1_000,
        "memory_mib": 1024,  # the executor refuses a job asking for no memory
        "duration_s": 600,
        "max_price_per_cu_hour": str(2 * TOKEN),
        "max_total": str(100 * TOKEN),
        "access_point": access_point,
        "min_bandwidth_mbps": 100,
        **changes,
    }
    quote = httpx.post(api.url + "/api/orders/quote", json=body, timeout=10).json()
    # The job sealed to the quote's candidates and to the buyer; the order signs the envelope's digest.
    # With no candidate (an order placed to come back unmatched) it is sealed to a placeholder node instead.
    nodes = [(c["node_id"], bytes.fromhex(c["encryption_key"][2:])) for c in quote["candidates"] if c["sealable"]]
    envelope = sealed_job(["true"], buyer, chain.deployment.chain_id, nodes or PLACEHOLDER_NODES)
    order = full_order(quote["order"], envelope)
    struct = {**order, **{k: int(order[k]) for k in ("maxPricePerCuHour", "maxTotal", "maxTransit")}}
    signature = sign_order(struct, buyer.key.hex(), chain.deployment.chain_id, chain.deployment.contracts["Market"])
    placed = httpx.post(
        api.url + "/api/orders",
        json={"order": order, "signature": signature, "access_point": access_point, "job": job_body(envelope)},
        timeout=10,
    )
    assert placed.status_code == 201, placed.text
    return str(placed.json()["id"])


def wait_for_order(
    api: ApiServer, order_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 90
) -> None:
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{api.url}/api/orders/{order_id}", timeout=10).json()
        if done(body):
            return
        time.sleep(0.2)
    raise AssertionError(f"order {order_id} did not get there: {body}")


def fund_a_node_and_a_buyer(chain: Chain, api: ApiServer) -> Any:
    """The cloud team stakes and registers a node at Beijing; the research buyer deposits. Returns the buyer."""
    provider, buyer = account(chain, "CERNET cloud team"), account(chain, "CERNET research buyer")
    token, market, registry = (chain.contract(n) for n in ("SettlementToken", "Market", "NodeRegistry"))
    chain.transact(provider, token.functions.approve(market.address, 600 * TOKEN))
    chain.transact(provider, market.functions.deposit(600 * TOKEN))
    chain.transact(provider, market.functions.stake(600 * TOKEN))
    beijing = next(r for r in httpx.get(api.url + "/api/topology").json()["routers"] if r["name"] == "Cernet/Beijing")
    operator = account(chain, "CERNET operator").address
    spec = (64_000, 20_000, 0, 65_536, 0, 0, 1, 15 * 10**17, operator, bytes.fromhex(beijing["router_id"][2:]),
            bytes.fromhex(beijing["locator_bytes16"][2:]), beijing["locator_length"],
            node_public_key(provider, chain.deployment.chain_id))  # fmt: skip
    chain.transact(provider, registry.functions.registerNode(spec))
    chain.transact(buyer, token.functions.approve(market.address, 100 * TOKEN))
    chain.transact(buyer, market.functions.deposit(100 * TOKEN))
    return buyer


def test_a_provider_withdraws_its_earnings(stack_at: StackAt, page: Page) -> None:
    chain, api = stack_at(2)
    provider, token = account(chain, "CERNET cloud team"), chain.contract("SettlementToken")
    buyer = fund_a_node_and_a_buyer(chain, api)
    order_id = place_order_from_python(chain, api, buyer, "Cernet/Wuhan", min_run_s=600)
    # The job ran; the whole duration of chain time passes before it may complete (its minimum run), so the
    # provider is paid for all 10 minutes.
    wait_for_order(
        api,
        order_id,
        lambda o: (o.get("deal") or {}).get("status") == "started" and bool((o.get("job") or {}).get("result_cid")),
    )
    rpc(chain.anvil.url, "evm_increaseTime", [600])
    rpc(chain.anvil.url, "evm_mine")
    wait_for_order(api, order_id, lambda o: (o.get("settlement") or {}).get("outcome") == "settled")

    page.goto(api.url + "/#/provider")
    use_account(page, chain, "CERNET cloud team")
    expect(page.get_by_test_id("earnings")).to_have_text("1.25 SWT", timeout=10_000)  # 5 CU x 1.5 x 10 min
    expect(page.get_by_test_id("balance-escrow")).to_have_text("1.25 SWT")
    before = int(token.functions.balanceOf(provider.address).call())
    funds(page, "1.25", "Withdraw")
    expect(page.get_by_test_id("balance-escrow")).to_have_text("0 SWT", timeout=10_000)
    assert int(token.functions.balanceOf(provider.address).call()) == before + 125 * 10**16
    screenshot(page, "provider-withdrew-earnings")


def test_an_operator_publishes_its_transit_tariff_on_the_operator_tab(stack_at: StackAt, page: Page) -> None:
    chain, api = stack_at(1)
    market = chain.contract("Market")
    founder = account(chain, "CERNET operator")
    page.goto(api.url + "/#/operator")
    tariffs = page.get_by_test_id("transit-tariffs")
    # scripts/deploy.py published the network team's tariff from the marketplace (0.002 SWT per Gbps-hour).
    expect(tariffs).to_contain_text("CERNET network team", timeout=10_000)
    expect(tariffs.locator("tr", has_text="CERNET network team")).to_contain_text("0.002 SWT")
    use_account(page, chain, "CERNET operator")
    page.get_by_label("Tariff (SWT per Gbps-hour)").fill("0.0035")
    page.get_by_role("button", name="Publish tariff").click()
    expect(page.get_by_test_id("tariff-status")).to_have_text(CONFIRMED, timeout=20_000)
    assert int(market.functions.transitTariffOf(founder.address).call()) == 35 * 10**14
    expect(tariffs.locator("tr", has_text="CERNET operator")).to_contain_text("0.0035 SWT", timeout=10_000)
    screenshot(page, "operator-transit-tariff")


def test_a_buyer_accepts_one_proposed_bill_and_rejects_another_in_the_page(stack_at: StackAt, page: Page) -> None:
    # The page passes the deal back as the Market takes it: its id and its Matched bytes, read from the chain.
    chain, api = stack_at(2)
    buyer = fund_a_node_and_a_buyer(chain, api)
    accepted = place_order_from_python(chain, api, buyer, "Cernet/Wuhan", auto_accept=False)
    rejected = place_order_from_python(chain, api, buyer, "Cernet/Wuhan", auto_accept=False)
    for order_id in (accepted, rejected):
        wait_for_order(api, order_id, lambda o: (o.get("deal") or {}).get("status") == "proposed")

    page.goto(api.url + "/#/buyer")
    use_account(page, chain, "CERNET research buyer")
    page.get_by_test_id(f"order-{accepted}").get_by_role("button", name="Accept bill").click()
    wait_for_order(api, accepted, lambda o: (o.get("deal") or {}).get("status") not in (None, "proposed"))
    page.get_by_test_id(f"order-{rejected}").get_by_role("button", name="Reject bill").click()
    wait_for_order(api, rejected, lambda o: (o.get("deal") or {}).get("status") == "refunded")
    market = chain.contract("Market")
    accepted_status = market.functions.statusOf(bytes.fromhex(accepted[2:])).call()[0]
    assert accepted_status in (3, 4, 5, 7)  # Accepted, then started, completed, settled by the stack
    assert market.functions.statusOf(bytes.fromhex(rejected[2:])).call()[0] == 8  # Refunded
    screenshot(page, "buyer-accepted-and-rejected-bills")


def test_stage3_operators_admit_a_new_operator_by_vote(stack_at: StackAt, page: Page) -> None:
    chain, api = stack_at(3)
    newcomer = chain.w3.eth.accounts[9]
    page.goto(api.url + "/#/operator")
    expect(page.get_by_test_id("stage")).to_have_text("3")
    expect(page.get_by_test_id("operator-count")).to_have_text("3")
    use_account(page, chain, "China Mobile")
    page.get_by_label("Address of the new operator").fill(newcomer)
    page.get_by_label("Display name").fill("China Telecom")
    page.get_by_role("button", name="Propose operator").click()
    expect(page.get_by_test_id("propose-status")).to_have_text(CONFIRMED, timeout=20_000)
    proposal = page.get_by_test_id("proposal-1")  # proposal 0 admitted China Mobile at deployment
    expect(proposal).to_contain_text("1 of 2", timeout=10_000)

    # The proposer's second vote is refused with the contract's reason, in words.
    proposal.get_by_role("button").click()
    expect(page.get_by_test_id("vote-status")).to_contain_text("already voted", timeout=15_000)

    use_account(page, chain, "CERNET network team")
    proposal.get_by_role("button", name="Vote yes").click()
    expect(page.get_by_test_id("vote-status")).to_have_text(CONFIRMED, timeout=20_000)
    expect(proposal).to_contain_text("passed", timeout=10_000)
    expect(page.get_by_test_id("members")).to_contain_text("China Telecom", timeout=10_000)
    expect(page.get_by_test_id("operator-count")).to_have_text("4", timeout=10_000)
    screenshot(page, "stage3-operator-admitted-by-vote")


def test_nothing_unmatched_goes_without_an_explanation(stack: tuple[Chain, ApiServer], page: Page) -> None:
    chain, api = stack
    page.goto(api.url + "/#/buyer")
    use_account(page, chain, "CERNET research buyer")

    # The API's own validation lands beside the field it concerns (the form leaves this bound to it).
    page.get_by_label("Duration (minutes)").fill("600000")
    page.get_by_role("button", name="Get quote").click()
    expect(page.locator("#o-duration-error")).to_contain_text("less than or equal to", timeout=10_000)
    page.get_by_label("Duration (minutes)").fill("10")

    # No node at all: the quote says why instead of listing nothing.
    page.get_by_role("button", name="Get quote").click()
    explanation = page.get_by_test_id("quote-explanation")
    expect(explanation).to_be_visible(timeout=10_000)
    assert explanation.locator("li").count() >= 1
    assert explanation.inner_text().strip() != "No node would take this order"

    # An order placed anyway comes back unmatched, with the engine's explanation on the buyer's card...
    order_id = place_order_from_python(chain, api, account(chain, "CERNET research buyer"), "Cernet/Wuhan")
    wait_for_order(api, order_id, lambda o: o["state"] == "unmatched")
    card = page.get_by_test_id(f"order-{order_id}")
    expect(card.get_by_test_id("order-state")).to_have_text("not matched", timeout=10_000)
    expect(card.get_by_test_id("order-explanation")).to_contain_text(re.compile(r"\w+ \w+"))
    screenshot(page, "unmatched-explained")

    # ...and on the providers' page, where sellers see why their nodes were not chosen.
    page.get_by_role("link", name="Provider").click()
    expect(page.get_by_test_id("not-chosen")).to_contain_text(order_id[:10], timeout=10_000)
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Buyer").click()
    expect(card).to_be_visible()
    screenshot(page, "buyer-on-a-phone")


def test_the_api_docs_render_from_the_service_alone(stack_at: StackAt, page: Page) -> None:
    """/docs draws every operation with Swagger UI served by the service itself (no CDN: machines without
    the open internet showed a blank page)."""
    chain, api = stack_at(1)
    hosts = record_hosts(page)
    page.goto(api.url + "/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    operations = httpx.get(api.url + "/openapi.json").json()["paths"]
    assert page.locator(".opblock").count() == sum(len(methods) for methods in operations.values())
    only_backend_and_chain(hosts, chain, api)
