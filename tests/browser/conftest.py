"""Browser tests: the real stack (Anvil with the deployed contracts, the API serving the built app)
driven by pytest-playwright on the system Chromium (never `playwright install`: nothing to download)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from suanwang.devstack import ApiServer, free_port
from suanwang.paths import REPO_ROOT
from tests.support.stack import BUILD_DIR, Chain, chain, deployed_state, deployments

__all__ = ["chain", "deployed_state", "deployments"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RESULTS = REPO_ROOT / "test-results"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test-browser` installs it (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def stack(chain: Chain, tmp_path: Path) -> Iterator[tuple[Chain, ApiServer]]:
    if not (REPO_ROOT / "frontend" / "dist" / "index.html").exists():
        pytest.fail("the web app is not built: run `make frontend`")
    api = ApiServer(
        free_port(),
        {
            "SUANWANG_RPC_URL": chain.anvil.url,
            "SUANWANG_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
            "SUANWANG_DEPLOYMENT_FILE": str(chain.deployment_file),
            "SUANWANG_BUILD_DIR": str(BUILD_DIR),
            "SUANWANG_POLL_INTERVAL_S": "0.1",
        },
    ).start()
    try:
        yield chain, api
    finally:
        api.stop()


def screenshot(page: Any, name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)
