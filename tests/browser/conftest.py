"""Browser tests: the real stack (Anvil with the deployed contracts, the API serving the built app)
driven by pytest-playwright on the system Chromium (never `playwright install`: nothing to download)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from suanwang.devstack import ApiServer, free_port
from suanwang.paths import REPO_ROOT
from tests.support.stack import BUILD_DIR, Chain, Deployments, chain, deployed_state, deployments

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


def start_api(chain: Chain, folder: Path) -> ApiServer:
    """`suanwang serve` on `chain` with the indexer and the lifecycle orchestrator (local executor)."""
    if not (REPO_ROOT / "frontend" / "dist" / "index.html").exists():
        pytest.fail("the web app is not built: run `make frontend`")
    return ApiServer(
        free_port(),
        {
            "SUANWANG_RPC_URL": chain.anvil.url,
            "SUANWANG_DATABASE_URL": f"sqlite:///{folder / 'api.db'}",
            "SUANWANG_DEPLOYMENT_FILE": str(chain.deployment_file),
            "SUANWANG_BUILD_DIR": str(BUILD_DIR),
            "SUANWANG_POLL_INTERVAL_S": "0.1",
            "SUANWANG_ORCHESTRATOR_INTERVAL_S": "0.1",
            "SUANWANG_EXECUTOR": "local",
            "SUANWANG_EXECUTOR_DIR": str(folder / "executor"),
            "SUANWANG_CONTENT_DIR": str(folder / "content"),
        },
    ).start()


@pytest.fixture
def stack(chain: Chain, tmp_path: Path) -> Iterator[tuple[Chain, ApiServer]]:
    """Stage 1 (the default deployment)."""
    api = start_api(chain, tmp_path)
    try:
        yield chain, api
    finally:
        api.stop()


@pytest.fixture
def stack_at(deployments: Deployments, tmp_path: Path) -> Iterator[Callable[[int], tuple[Chain, ApiServer]]]:
    """`stack_at(stage)`: a fresh chain deployed at stage 1, 2 or 3 with the API on it."""
    with ExitStack() as stack:

        def start(stage: int) -> tuple[Chain, ApiServer]:
            chain = stack.enter_context(deployments.chain(stage))
            folder = tmp_path / f"stage{stage}"
            folder.mkdir(exist_ok=True)
            api = start_api(chain, folder)
            stack.callback(api.stop)
            return chain, api

        yield start


def screenshot(page: Any, name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)
