"""A service started with a malformed marketplace file, or one whose network names a malformed GraphML
topology, answers the requests that need the network with a 503 naming the file (the operator's
mistake, not the client's: before, each order got a 400 as if its access point were wrong), keeps
answering everything else, and stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from suanwang.api.app import create_app
from tests.backend.api.hostile import error_shape_problems, valid_submission
from tests.backend.input.corpus import FILES
from tests.support.stack import Deployments


def marketplace_naming_a_bad_topology(folder: Path) -> Path:
    bad = next(c for c in FILES if c.name == "latitude-500.graphml")
    (folder / bad.name).write_bytes(bad.content)
    (folder / "network.yaml").write_text(f"operators:\n  - {{topology: {folder / bad.name}, name: Cernet}}\n")
    path = folder / "marketplace.yaml"
    path.write_text("network: network.yaml\ntransit_accounts: {Cernet: CERNET network team}\n")
    return path


def marketplace_of_words(folder: Path) -> Path:
    path = folder / "marketplace.yaml"
    path.write_text("network: ../cernet.yaml\ntransit_accounts: {}\nlease_bandwidth_gbps: plenty\n")
    return path


def marketplace_that_is_a_list(folder: Path) -> Path:
    path = folder / "marketplace.yaml"
    path.write_text("- network\n- cernet.yaml\n")
    return path


@pytest.mark.parametrize(
    ("write", "mentions"),
    [
        (marketplace_naming_a_bad_topology, "latitude-500.graphml"),
        (marketplace_of_words, "lease_bandwidth_gbps is 'plenty'"),
        (marketplace_that_is_a_list, "expected a mapping"),
    ],
)
def test_a_malformed_marketplace_is_a_503_naming_the_file(
    deployments: Deployments, tmp_path: Path, write: Callable[[Path], Path], mentions: str
) -> None:
    marketplace = write(tmp_path)
    with deployments.chain(3) as chain:
        app = create_app(
            chain.settings(
                f"sqlite:///{tmp_path / 'api.db'}",
                executor_dir=tmp_path / "executor",
                content_dir=tmp_path / "content",
                marketplace_file=marketplace,
            ),
            start_indexer=False,
        )
        with TestClient(app) as client:
            submitted = client.post("/api/orders", json=valid_submission(client, nonce=5))
            nodes = client.get("/api/nodes")
            orders = client.get("/api/orders").json()
    assert submitted.status_code == 503, submitted.text
    assert error_shape_problems(503, submitted.json()) == []
    assert mentions in submitted.json()["error"]["message"]
    assert nodes.status_code == 200
    assert orders["total"] == 0
