"""Shared fixtures for the contract tests (brownie on Anvil).

Run: `.venv-brownie/bin/python tests/contracts/run.py` (see run.py for why not `brownie test`).
"""

import importlib
import os
import re

import pytest

# Looked up at run time: brownie hashes the sources a conftest imports, and brownie._config is a
# compiled module whose source cannot be read.
CONFIG = importlib.import_module("brownie._config").CONFIG

# brownie-config.yaml sets the development port as "${SUANWANG_CHAIN_PORT:-8546}"; brownie expands
# "$VAR" but not the shell's ":-default" form, so resolve it here, before brownie connects.
_cmd = CONFIG.networks["development"].setdefault("cmd_settings", {})
_port = _cmd.get("port")
if isinstance(_port, str):
    _m = re.fullmatch(r"\$\{(\w+)(?::-(\d+))?\}", _port)
    if _m:
        _cmd["port"] = int(os.environ.get(_m.group(1)) or _m.group(2) or 8546)


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass


OPERATOR, CLOUD, PROVIDER, BUYER, MATCHER, ARBITER = 1, 2, 4, 8, 16, 32
MIN_STAKE = [100 * 10**18, 500 * 10**18, 2_000 * 10**18, 10_000 * 10**18]
PLATFORM_FEE_BPS = 250
ROUTER = "0x" + "ab" * 32
LOCATOR = "0x20010db8000100000000000000000000"


def err(name, *args):
    """The revert message brownie decodes from custom error `name(args)`."""
    def fmt(a):
        a = getattr(a, "address", a)
        return a.lower() if isinstance(a, str) and a.startswith("0x") else str(a)

    return f"{name}: " + ", ".join(fmt(a) for a in args)


@pytest.fixture(scope="module")
def founder(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def cloud_team(accounts):
    return accounts[1]


@pytest.fixture(scope="module")
def network_team(accounts):
    return accounts[2]


@pytest.fixture(scope="module")
def buyer(accounts):
    return accounts[3]


@pytest.fixture(scope="module")
def outsider(accounts):
    return accounts[9]


@pytest.fixture(scope="module")
def federation(Federation, founder, cloud_team, network_team, buyer):
    fed = Federation.deploy("CERNET operator", PLATFORM_FEE_BPS, {"from": founder})
    fed.setRoles(founder, OPERATOR | MATCHER | ARBITER, {"from": founder})
    fed.admit(cloud_team, CLOUD, "CERNET cloud team", {"from": founder})
    fed.admit(network_team, OPERATOR, "CERNET network team", {"from": founder})
    fed.admit(buyer, BUYER, "CERNET research buyer", {"from": founder})
    return fed


@pytest.fixture(scope="module")
def registry(NodeRegistry, federation, founder):
    return NodeRegistry.deploy(federation, MIN_STAKE, {"from": founder})


def make_spec(operator, logic=4000, parallel=8000, neural=16000, memory=65536, gpu_model=3, gpu_count=1,
              tier=1, price=2 * 10**18, router=ROUTER, locator=LOCATOR, locator_length=48):
    return (logic, parallel, neural, memory, gpu_model, gpu_count, tier, price, operator, router, locator,
            locator_length)


@pytest.fixture(scope="module")
def spec(founder):
    return make_spec(founder.address)


def plain(value):
    """Brownie's return values and event fields as plain Python (its compiled types refuse == with ints)."""
    if isinstance(value, (list, tuple)):
        return tuple(plain(v) for v in value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    return str(value) if hasattr(value, "lower") else value
