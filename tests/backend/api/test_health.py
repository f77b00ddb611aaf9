"""/health when the chain's node accepts connections but does not answer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from suanwang.api.app import create_app
from suanwang.config import Settings
from tests.support.stack import BUILD_DIR


@pytest.fixture
def silent_rpc() -> Iterator[tuple[str, list[socket.socket]]]:
    """An RPC URL whose server accepts every connection and never replies (a hung node, a black hole),
    and the connections it has accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", held
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_health_says_the_chain_is_unreachable_after_one_short_attempt(
    silent_rpc: tuple[str, list[socket.socket]], tmp_path: Path
) -> None:
    url, accepted = silent_rpc
    settings = Settings(
        rpc_url=url,
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        deployment_file=tmp_path / "deployment.json",  # absent: no background thread talks to the chain
        build_dir=BUILD_DIR,
    )
    with TestClient(create_app(settings)) as client:
        body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["head_block"] is None and body["chain_id"] is None
    assert body["detail"].startswith("chain unreachable") and "timed out" in body["detail"].lower()
    # One connection: the service's own connection would have retried five times (about a minute) first.
    assert len(accepted) == 1
