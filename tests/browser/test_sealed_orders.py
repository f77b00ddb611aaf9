"""Sealed orders in the web app (issue 16, docs/content.md "Privacy"): the buyer's browser seals the job to
the quoted nodes and to its own result key, signs the envelope's digest, and once the provider's agent has
run it, fetches the sealed result with signed requests and opens it with its result key, showing what the
job was given and used and offering the output as a download. Nobody else reads either."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from suanwang.privacy import parse_envelope
from suanwang.privacy.documents import content_request_headers
from tests.browser.conftest import screenshot
from tests.browser.test_own_keys import (
    ARBITER_WALLET,
    BUYER_WALLET,
    AgentMarket,
    connect,
    market,
    wallet_methods,
    with_wallets,
)

__all__ = ["market"]

OUTPUT = "sealed hello from the web app"


def place_sealed_order(page: Page, m: AgentMarket) -> str:
    """Places an order for `echo OUTPUT` from the buyer's page with the buyer's wallet; its id."""
    page.goto(m.service.url + "/#/buyer")
    connect(page, BUYER_WALLET)
    page.get_by_label("Access point", exact=True).select_option("Cernet/Shanghai")
    page.get_by_label("Min bandwidth (Mbps)").fill("10")
    page.get_by_label("Job command").fill(f'sh -c "echo {OUTPUT}"')
    page.get_by_role("button", name="Get quote").click()
    expect(page.get_by_test_id("candidate-1")).to_contain_text("CERNET cloud team", timeout=15_000)
    page.get_by_role("button", name="Sign and place order").click()
    status = page.get_by_test_id("order-status")
    expect(status).to_contain_text(re.compile("^Order .* placed"), timeout=20_000)
    expect(status).to_contain_text("sealed to node(s) #1 and to you")
    order_id = (page.locator("article.order").first.get_attribute("data-testid") or "").removeprefix("order-")
    assert re.fullmatch(r"0x[0-9a-f]{64}", order_id), order_id
    return order_id


def test_a_buyer_places_a_sealed_order_and_reads_its_result_in_the_browser(
    market: AgentMarket, page: Page, tmp_path: Path
) -> None:
    m = market
    with_wallets(page, m)
    order_id = place_sealed_order(page, m)
    placed = httpx.get(f"{m.service.url}/api/orders/{order_id}", timeout=10).json()

    # The service holds an envelope sealed to the quoted node and to the buyer, not the command.
    spec = httpx.get(
        f"{m.service.url}/api/content/{placed['spec_cid']}",
        headers=content_request_headers(m.buyer.key, placed["spec_cid"]),
        timeout=10,
    )
    assert spec.status_code == 200, spec.text
    envelope = parse_envelope(spec.content)
    assert envelope.nodes == [1] and [r.role for r in envelope.recipients if r.node is None] == ["buyer"]
    assert OUTPUT.encode() not in spec.content

    # The provider's agent opens the job with its node key, runs it and completes the deal.
    done = m.completed(order_id)
    assert done["deal"]["result_cid"]
    card = page.get_by_test_id(f"order-{order_id}")
    card.get_by_role("button", name="Open the sealed result").click()
    result = card.get_by_test_id("result-document")
    expect(result).to_be_visible(timeout=20_000)
    expect(card.get_by_test_id("sealed-command")).to_have_text(f'sh -c "echo {OUTPUT}"')
    expect(result.get_by_test_id("used-exit-code")).to_have_text("0")
    expect(result.get_by_test_id("stdout-tail")).to_contain_text(OUTPUT)
    # What the job was given and used, as the executor recorded it.
    expect(result.get_by_test_id("given-cpus")).to_have_text(re.compile(r"^\d+$"))
    expect(result.get_by_test_id("given-memory")).to_have_text(re.compile(r"^[\d.,]+ (MiB|GiB)$"))
    expect(result.get_by_test_id("used-elapsed")).to_have_text(re.compile(r"^[\d.,]+ s$"))
    expect(result.get_by_test_id("used-cpu-time")).to_have_text(re.compile(r"^[\d.,]+ s$"))
    expect(result.get_by_test_id("used-max-memory")).to_have_text(re.compile(r"^[\d.,]+ (B|KiB|MiB|GiB)$"))
    screenshot(page, "sealed-result-opened-by-the-buyer")

    # The output, opened in the browser and saved as a download; the page stays where it was.
    with page.expect_download() as download:
        result.get_by_role("button", name=re.compile(r"^Download the output")).click()
    saved = tmp_path / "output.bin"
    download.value.save_as(saved)
    assert saved.read_text() == OUTPUT + "\n"
    assert page.url.endswith("/#/buyer")
    assert "personal_sign" in wallet_methods(page, BUYER_WALLET)


def test_another_account_sees_neither_the_job_nor_the_result(market: AgentMarket, page: Page) -> None:
    m = market
    with_wallets(page, m)
    order_id = place_sealed_order(page, m)
    done = m.completed(order_id)

    # The arbiter looks the order up: its progress is public, its job and result are sealed to the buyer.
    page.reload()
    connect(page, ARBITER_WALLET)
    page.get_by_label("Order id").fill(order_id)
    page.get_by_role("button", name="Look up").click()
    card = page.get_by_test_id(f"order-{order_id}")
    expect(card.get_by_test_id("order-state")).to_have_text("completed", timeout=15_000)
    expect(card.get_by_test_id("sealed-job")).to_contain_text("sealed to the buyer")
    expect(card.get_by_role("button", name="Open the sealed result")).to_have_count(0)
    expect(card.get_by_test_id("result-document")).to_have_count(0)
    screenshot(page, "sealed-result-seen-by-another-account")

    # And the service serves neither to it, however it signs.
    for cid in (done["spec_cid"], done["deal"]["result_cid"]):
        refused = httpx.get(f"{m.service.url}/api/content/{cid}", headers=content_request_headers(m.arbiter.key, cid))
        assert refused.status_code == 403, refused.text
        assert httpx.get(f"{m.service.url}/api/content/{cid}").status_code == 401
    assert "personal_sign" not in wallet_methods(page, ARBITER_WALLET)

    # The provider's delivered deals count for it (the market is shared with the other tests of this file,
    # so at least this one): no bad outcome, a score of (good + 1) / (good + 2) above the prior 0.50.
    page.goto(m.service.url + "/#/provider")
    expect(page.get_by_test_id("node-reliability-1")).to_have_text(
        re.compile(r"^0\.(6[7-9]|[7-9]\d) · [1-9]\d* good / 0 bad$"), timeout=15_000
    )


def test_the_nodes_view_shows_what_the_provider_agent_reports(market: AgentMarket, page: Page) -> None:
    m = market
    page.goto(m.service.url + "/#/provider")
    live = page.get_by_test_id("node-metrics-1")
    # The agent signs its node's figures every few seconds (agents/node_metrics.py); the page shows the newest.
    expect(live.get_by_test_id("live-state")).to_have_text("up", timeout=30_000)
    expect(live.get_by_test_id("free")).to_contain_text(re.compile(r"^\d+/\d+ CPUs · "))
    expect(live.get_by_test_id("cats-level")).to_have_text(re.compile(r"^(10|\d)$"))
    screenshot(page, "node-metrics-from-the-provider-agent")
