"""Shared fixtures for the contract tests (brownie on Anvil).

Run: `SUANWANG_CHAIN_PORT=$(.venv/bin/python tools/free_port.py) .venv-brownie/bin/python tools/run_brownie.py test
tests/contracts` (tools/run_brownie.py sets the development chain's port from SUANWANG_CHAIN_PORT).
"""

import sys
from pathlib import Path

import pytest

# The deploy script's helpers (order, bill and deal encodings) are the ones the tests use too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from deploy import (  # noqa: F401
    ANVIL_KEYS,
    TERMS,
    deal_of,
    entry,
    make_bill,
    make_order,
    matched_of,
    packed_bill,
    sign_order,
    transit_fee_of,
)


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
        if isinstance(a, bytes) and len(a) == 32:
            return str(bytes(a))
        if isinstance(a, (str, bytes)) and len(a) == 66 and str(a).startswith("0x"):
            return str(bytes.fromhex(str(a)[2:]))  # brownie prints bytes32 as a Python bytes literal
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
def arbiter(accounts):
    return accounts[8]


@pytest.fixture(scope="module")
def outsider(accounts):
    return accounts[9]


@pytest.fixture(scope="module")
def federation(Federation, founder, cloud_team, network_team, buyer, arbiter):
    fed = Federation.deploy("CERNET operator", PLATFORM_FEE_BPS, {"from": founder})
    fed.setRoles(founder, OPERATOR | MATCHER | ARBITER, {"from": founder})
    fed.admit(cloud_team, CLOUD, "CERNET cloud team", {"from": founder})
    fed.admit(network_team, OPERATOR, "CERNET network team", {"from": founder})
    fed.admit(buyer, BUYER, "CERNET research buyer", {"from": founder})
    # The founder matches and collects the platform fee, so it may never arbitrate a deal: an internal
    # arbitration team (admitted in stage 1, as internal teams are) is the one arbiter the draw can pick.
    fed.admit(arbiter, ARBITER, "CERNET arbitration team", {"from": founder})
    return fed


@pytest.fixture(scope="module")
def registry(NodeRegistry, federation, founder):
    return NodeRegistry.deploy(federation, MIN_STAKE, {"from": founder})


ENCRYPTION_KEY = "0x" + "5e" * 32


def make_spec(operator, logic=4000, parallel=8000, neural=16000, memory=65536, gpu_model=3, gpu_count=1,
              tier=1, price=2 * 10**18, router=ROUTER, locator=LOCATOR, locator_length=48,
              encryption_key=ENCRYPTION_KEY):
    return (logic, parallel, neural, memory, gpu_model, gpu_count, tier, price, operator, router, locator,
            locator_length, encryption_key)


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


# ------------------------------------------------------------------------------------ market

NODE_PRICE = 2 * 10**18
(ACCEPT_WINDOW, START_WINDOW, DELIVERY_GRACE, DISPUTE_WINDOW, ARBITRATION_PERIOD, UNSTAKE_DELAY,
 DISPUTE_BOND_BPS) = TERMS
# The transit tariffs (per Gbps-hour) the founder and its network team publish: for the default order
# (1,000 Mbps for an hour) each transit fee equals its tariff.
FOUNDER_TARIFF, NETWORK_TEAM_TARIFF = 3 * 10**17, 2 * 10**17


@pytest.fixture(scope="module")
def token(SettlementToken, founder, accounts):
    t = SettlementToken.deploy("Suanwang Settlement Token", "SWT", {"from": founder})
    for a in accounts[:9]:
        t.mint(a, 1_000_000 * 10**18, {"from": founder})
    return t


@pytest.fixture(scope="module")
def market(Market, federation, registry, token, founder, network_team):
    m = Market.deploy(federation, registry, token, TERMS, {"from": founder})
    federation.setMarket(m, {"from": founder})  # first: it seats the operators the registry's nodes name
    registry.setMarket(m, {"from": founder})
    m.setTransitTariff(FOUNDER_TARIFF, {"from": founder})
    m.setTransitTariff(NETWORK_TEAM_TARIFF, {"from": network_team})
    return m


@pytest.fixture(scope="module")
def node_id(registry, market, cloud_team, founder):
    spec = make_spec(founder.address, price=NODE_PRICE)
    return registry.registerNode(spec, {"from": cloud_team}).return_value


@pytest.fixture
def stage2(federation, market, token, founder, cloud_team, buyer, node_id):
    """Stage 2: the cloud team staked for its medium node, the buyer deposited 1,000 tokens."""
    federation.advanceStage(2, {"from": founder})
    token.approve(market, 2**256 - 1, {"from": cloud_team})
    market.deposit(MIN_STAKE[1], {"from": cloud_team})
    market.stake(MIN_STAKE[1], {"from": cloud_team})
    token.approve(market, 2**256 - 1, {"from": buyer})
    market.deposit(1000 * 10**18, {"from": buyer})


# What the cloud team stakes above its node's minimum in `stage2_backed`: each deal locks its compute fee
# (6 tokens for the default order) out of the stake above the minimum until the deal is final.
SPARE_STAKE = 100 * 10**18


@pytest.fixture
def stage2_backed(stage2, market, cloud_team):
    """Stage 2 with the cloud team's stake SPARE_STAKE above its node's minimum, so it backs deals."""
    market.deposit(SPARE_STAKE, {"from": cloud_team})
    market.stake(SPARE_STAKE, {"from": cloud_team})


def transit_for(market, order, *operators):
    """Honest transit entries for `order`: each operator with its published tariff's exact fee."""
    return [(str(getattr(op, "address", op)), transit_fee_of(order, int(market.transitTariffOf(op))))
            for op in operators]


def deal_arg(deal):
    """A deal (deal_of's (id, Matched bytes)) as the lifecycle calls (accept ... timeout) take it, to spread
    into the call: `market.start(*deal_arg(deal), tx)`. The one place that builds those arguments in the
    access-control and signed-order tests, so a change of their encoding touches only this."""
    return tuple(deal)


def key_of(account, accounts):
    return ANVIL_KEYS[list(accounts).index(account)]


@pytest.fixture
def new_order(buyer, chain, federation):
    """A signed-order tuple from the buyer, in the current value epoch unless `epoch` is given."""

    def _new(**fields):
        fields.setdefault("expiry", chain.time() + 86400)
        fields.setdefault("epoch", federation.epoch())
        return make_order(buyer.address, **fields)

    return _new


@pytest.fixture
def matched(market, buyer, founder, network_team, accounts, new_order, node_id, federation):
    """Matches a signed order from the buyer on the node (transit via the founder and its network team)."""

    def _match(transit=None, matcher=None, **fields):
        order = new_order(**fields)
        if transit is None:
            transit = [(founder.address, transit_fee_of(order, FOUNDER_TARIFF)),
                       (network_team.address, transit_fee_of(order, NETWORK_TEAM_TARIFF))]
        bill = make_bill(order, node_id, NODE_PRICE, federation.platformFeeBps(), transit)
        sig = sign_order(market, order, key_of(buyer, accounts))
        tx = market.matchSigned(entry(market, order, sig, bill), {"from": matcher or founder})
        return deal_of(tx), tx

    return _match
