"""The provider page in a real browser: register through the form; see chain-side registrations arrive; see
each node's live metrics once its provider reports them."""

from __future__ import annotations

import re
import time
from urllib.parse import urlparse

import httpx
from playwright.sync_api import Page, expect

from suanwang.agents.heartbeat import sign_heartbeat
from suanwang.devstack import ApiServer
from suanwang.roles import Role
from tests.browser.conftest import screenshot
from tests.support.stack import Chain, node_spec


def allowed_hosts(chain: Chain, api: ApiServer) -> set[str]:
    return {urlparse(chain.anvil.url).netloc, urlparse(api.url).netloc}


def test_a_node_registered_through_the_page_is_listed(stack: tuple[Chain, ApiServer], page: Page) -> None:
    chain, api = stack
    requested: list[str] = []
    page.on("request", lambda r: requested.append(urlparse(r.url).netloc))
    page.goto(api.url + "/#/provider")
    cloud = next(a for a in chain.deployment.accounts if a.roles & Role.CLOUD)
    page.get_by_label("Account").select_option(cloud.address)
    page.get_by_label("Memory (GiB)").fill("512")
    page.get_by_label("GPU model").select_option("18")
    page.get_by_label("GPU count").fill("8")
    key = "0x" + bytes(range(1, 33)).hex()  # the X25519 public key buyers seal job specifications to
    page.get_by_label("Encryption key (X25519, optional)").fill(key)
    page.get_by_role("button", name="Register node").click()
    expect(page.get_by_test_id("register-status")).to_have_text(re.compile("Confirmed in block"), timeout=20_000)
    row = page.get_by_test_id("node-row-1")
    expect(row).to_contain_text("512 GiB", timeout=10_000)
    expect(row).to_contain_text("8 × nvidia-a100-sxm4-80gb")
    spec, _owner, _status = chain.contract("NodeRegistry").functions.getNode(1).call()
    assert "0x" + bytes(spec[12]).hex() == key
    screenshot(page, "register-node-through-page")
    assert set(requested) <= allowed_hosts(chain, api), f"requests to other hosts: {set(requested)}"


def test_a_registration_sent_straight_to_the_chain_appears_after_reload(
    stack: tuple[Chain, ApiServer], page: Page
) -> None:
    chain, api = stack
    page.goto(api.url + "/#/provider")
    expect(page.get_by_test_id("node-total")).to_have_text("0")
    seller, operator = chain.account_with(Role.CLOUD), chain.account_with(Role.OPERATOR)
    registry = chain.contract("NodeRegistry")
    chain.transact(seller, registry.functions.registerNode(node_spec(operator.address, memoryMib=7 * 1024)))
    page.reload()
    expect(page.get_by_test_id("node-row-1")).to_contain_text("7 GiB", timeout=15_000)
    screenshot(page, "registration-from-python-appears")


def test_invalid_fields_are_marked_before_anything_is_signed(stack: tuple[Chain, ApiServer], page: Page) -> None:
    _chain, api = stack
    page.goto(api.url + "/#/provider")
    for label in ("Logic", "Parallel", "Neural"):
        page.get_by_label(label, exact=True).fill("0")
    page.get_by_label("GPU count").fill("2")
    page.get_by_label("Encryption key (X25519, optional)").fill("0x1234")
    page.get_by_role("button", name="Register node").click()
    expect(page.get_by_text("a node must offer compute in at least one class")).to_be_visible()
    expect(page.get_by_text("give a GPU model and a GPU count together")).to_be_visible()
    expect(page.get_by_text("0x and 64 hex digits (an X25519 public key), or empty")).to_be_visible()
    expect(page.get_by_test_id("register-status")).to_have_text("Fix the marked fields; nothing was signed.")
    screenshot(page, "validation-before-signing")


def test_a_rejected_registration_shows_the_contract_error_in_words(stack: tuple[Chain, ApiServer], page: Page) -> None:
    chain, api = stack
    page.goto(api.url + "/#/provider")
    buyer = next(a for a in chain.deployment.accounts if not a.roles & (Role.CLOUD | Role.OPERATOR | Role.PROVIDER))
    page.get_by_label("Account").select_option(buyer.address)
    page.get_by_role("button", name="Register node").click()
    expect(page.get_by_test_id("register-status")).to_contain_text("may not sell compute", timeout=15_000)
    screenshot(page, "rejected-registration")


def test_a_node_shows_its_live_metrics_once_its_provider_reports(stack: tuple[Chain, ApiServer], page: Page) -> None:
    chain, api = stack
    seller, operator = chain.account_with(Role.CLOUD), chain.account_with(Role.OPERATOR)
    chain.transact(seller, chain.contract("NodeRegistry").functions.registerNode(node_spec(operator.address)))
    page.goto(api.url + "/#/provider")
    live = page.get_by_test_id("node-metrics-1")
    expect(live).to_have_text("no report", timeout=15_000)
    expect(page.get_by_test_id("node-reliability-1")).to_have_text("0.50 · no record")  # no deal has ended

    # The provider's agent signs its figures with the owner's key (agents/node_metrics.py does the same).
    figures = {"node_id": 1, "up": True, "cpus": 8, "free_cpus": 6, "memory_mib": 16_384, "free_memory_mib": 8_192,
               "gpus": 0, "free_gpus": 0, "load_1m": 1.5, "services": []}  # fmt: skip
    document = {"kind": "node_metrics", "reporter": seller.address, "at": int(time.time()), "nodes": [figures]}
    posted = httpx.post(api.url + "/api/nodes/metrics", json=sign_heartbeat(document, seller.key.hex()), timeout=10)
    assert posted.status_code == 200, posted.text

    expect(live.get_by_test_id("live-state")).to_have_text("up", timeout=10_000)
    expect(live.get_by_test_id("free")).to_have_text("6/8 CPUs · 8 GiB/16 GiB · 0/0 GPUs free")
    expect(live.get_by_test_id("load")).to_have_text("1.50")
    # CATS level 1 per resource is round(10 x the share free): CPU 8, memory 5; level 2 the lowest.
    expect(live.get_by_test_id("cats-level")).to_have_text("5")
    expect(live).to_contain_text("cpu 8 · mem 5")
    expect(live.get_by_test_id("report-age")).to_contain_text(re.compile(r"reported [\d.]+ s ago"))
    screenshot(page, "node-live-metrics")

    # A node its provider reports down is shown down (and the matcher skips it).
    document = {**document, "at": int(time.time()) + 1, "nodes": [{**figures, "up": False}]}
    posted = httpx.post(api.url + "/api/nodes/metrics", json=sign_heartbeat(document, seller.key.hex()), timeout=10)
    assert posted.status_code == 200, posted.text
    expect(live.get_by_test_id("live-state")).to_have_text("down", timeout=10_000)
    expect(live.get_by_test_id("cats-level")).to_have_text("0")
