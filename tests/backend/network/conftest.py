"""Shared fixtures: the shipped topologies, loaded once per session."""

from __future__ import annotations

import pytest

from suanwang.network.config import load_network
from suanwang.network.model import Network
from suanwang.paths import shared_data_dir

SHIPPED = ["Abilene", "Cernet", "Cogentco", "Geant2012", "Kdl"]


def zoo(name: str):
    return shared_data_dir() / "topologyzoo" / f"{name}.graphml"


@pytest.fixture(scope="session")
def networks() -> dict[str, Network]:
    return {name: load_network([name]) for name in SHIPPED}


@pytest.fixture(scope="session")
def world() -> Network:
    return load_network(["global-research-and-transit.yaml"])
