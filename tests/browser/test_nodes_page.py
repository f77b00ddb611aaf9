"""The provider page in a real browser: register through the form; see chain-side registrations arrive."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from playwright.sync_api import Page, expect

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
