"""Deploy and wire the Suanwang contracts, then write the deployment file. A brownie script:

    SUANWANG_CHAIN_PORT=P .venv-brownie/bin/python tools/run_brownie.py run scripts/deploy.py --network development

With the `development` network brownie attaches to the Anvil already answering on SUANWANG_CHAIN_PORT
(tools/run_brownie.py sets that port in brownie's loaded configuration), or starts one there itself.
Any other brownie network works too (`--network <name>`).

Environment:
  SUANWANG_DEPLOYMENT_FILE  where to write the JSON (default .state/deployment.json)
  SUANWANG_STAGE            1 (default), 2 or 3: advance the federation and admit that stage's demo members
  SUANWANG_CHAIN_PORT       the development network's port (read by tools/run_brownie.py)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backend"))
# stdlib and eth_utils only: brownie's env has both
from suanwang.chain.bill import Seats, pack_bill, pack_entry, unpack_deal
from suanwang.chain.order_type import ORDER_FIELDS, ORDER_TYPE
from suanwang.fees import compute_fee, platform_fee, transit_fee

ROLE_BITS = {"operator": 1, "cloud": 2, "provider": 4, "buyer": 8, "matcher": 16, "arbiter": 32}
PLATFORM_FEE_BPS = 250
# Minimum stake per tier (small, medium, large, super-large) from stage 2, in token base units.
MIN_STAKE_PER_TIER = [100 * 10**18, 500 * 10**18, 2_000 * 10**18, 10_000 * 10**18]
# Market terms (IMarket.Terms): windows in seconds (accept, start, delivery grace, dispute, arbitration,
# unstake delay), then the dispute bond in basis points of the deal's total.
TERMS = (3600, 3600, 3600, 3600, 3 * 86400, 3600, 1000)
TOKEN_DECIMALS = 18
DEMO_TOKENS = 1_000_000 * 10**TOKEN_DECIMALS

# Where the service's marketplace is described (suanwang.lifecycle.marketplace), and the network model's
# transit price for an operator whose entry names none (suanwang.network.config).
DEFAULT_MARKETPLACE = Path(__file__).resolve().parent.parent / "backend" / "suanwang" / "lifecycle" / "marketplace.yaml"
DEFAULT_TRANSIT_PRICE_PER_GBPS_HOUR = 10**15

# Anvil's well-known development keys (mnemonic "test test ... junk"), published in Foundry's docs.
ANVIL_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]

# (account index, display name, roles, stage from which it is a member)
DEMO_MEMBERS = [
    (0, "CERNET operator", ("operator", "matcher", "arbiter"), 1),
    (1, "CERNET cloud team", ("cloud",), 1),
    (2, "CERNET network team", ("operator",), 1),
    (3, "CERNET research buyer", ("buyer",), 1),
    (4, "Aliyun (third-party cloud)", ("cloud", "buyer"), 2),
    (5, "China Mobile (second operator)", ("operator", "matcher", "buyer"), 3),
    (6, "Idle-GPU lab (individual provider)", ("provider",), 3),
    (7, "Shenzhen robotics (enterprise buyer)", ("buyer",), 3),
]


def role_mask(names) -> int:
    mask = 0
    for name in names:
        mask |= ROLE_BITS[name]
    return mask


def role_names(mask: int) -> list[str]:
    return [name for name, bit in ROLE_BITS.items() if mask & bit]


# ---------------------------------------------------------------- orders (used by tests and bench too)

# IMarket.Order's fields in order, with their EIP-712 types.
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = "0x" + "00" * 32


def make_order(buyer: str, expiry: int, **fields) -> tuple:
    """An IMarket.Order tuple: 1 CU of each class for an hour by default, auto-accepted, any matcher, in
    epoch 0 (pass `epoch=federation.epoch()` once the stage or the fee has changed)."""
    order = {
        "buyer": buyer, "matcher": ZERO_ADDRESS, "logicMcu": 1000, "parallelMcu": 1000, "neuralMcu": 1000,
        "memoryMib": 1024, "gpuModel": 0, "gpuCount": 0, "gpuMilli": 0, "minTier": 0, "duration": 3600,
        "minRunSeconds": 0, "maxPricePerCuHour": 10 * 10**18, "maxTotal": 100 * 10**18, "maxTransit": 10 * 10**18,
        "maxLatencyMs": 20, "minBandwidthMbps": 1000, "autoAccept": True, "expiry": expiry, "nonce": 0, "epoch": 0,
        "specDigest": ZERO_BYTES32, "serviceId": ZERO_BYTES32, "apnId": 0, "apnSlaClass": 0,
    }
    unknown = set(fields) - set(order)
    if unknown:
        raise TypeError(f"unknown order fields {sorted(unknown)}; known: {ORDER_FIELDS}")
    order.update(fields)
    return tuple(order[name] for name in ORDER_FIELDS)


def make_bill(order: tuple, node_id: int, price: int, fee_bps: int, transit=()) -> tuple:
    """The exact bill the contract accepts for `order` on a node priced `price` per CU-hour, as a tuple
    (nodeId, computeFee, platformFee, transitOperators, transitFees); `packed_bill` packs it."""
    fields = dict(zip(ORDER_FIELDS, order, strict=True))
    mcu = fields["logicMcu"] + fields["parallelMcu"] + fields["neuralMcu"]
    compute = compute_fee(price, mcu, fields["duration"])
    platform = platform_fee(compute, fee_bps)
    return (node_id, compute, platform, [op for op, _ in transit], [fee for _, fee in transit])


def transit_fee_of(order: tuple, tariff: int) -> int:
    """The exact transit fee for `order` of an operator publishing `tariff` per Gbps-hour
    (Market.transitTariffOf): suanwang.fees.transit_fee."""
    fields = dict(zip(ORDER_FIELDS, order, strict=True))
    return transit_fee(tariff, fields["minBandwidthMbps"], fields["duration"])


def seats(market) -> Seats:
    """`market`'s transit operators by seat: bills and deals name them by seat."""
    return Seats.of(market.transitOperators())


def packed_bill(market, bill: tuple) -> bytes:
    """A make_bill tuple packed as Market.matchPosted takes it (suanwang.chain.bill.pack_bill), its transit
    operators by their seats in `market`."""
    return pack_bill(*bill, seats(market))


def entry(market, order: tuple, signature: bytes, bill: tuple) -> bytes:
    """A `market.matchSigned` / `matchSignedBatch` entry from make_order and make_bill tuples and the
    signature; a batch takes entries concatenated: b"".join(entries)."""
    return pack_entry(order, signature, packed_bill(market, bill))


def sign_order(market, order: tuple, private_key: str) -> bytes:
    """The buyer's EIP-712 signature (65 bytes r|s|v) over the order's digest."""
    from eth_account import Account

    digest = bytes(market.orderId(order))
    signed = Account.unsafe_sign_hash(digest, private_key)
    return signed.signature


def typed_order(market, order: tuple, chain_id: int) -> dict:
    """The order as EIP-712 typed data (what a wallet or web3.py signs)."""
    types = {
        "EIP712Domain": [
            {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
        ],
        "Order": ORDER_TYPE,
    }
    return {
        "types": types, "primaryType": "Order",
        "domain": {"name": "Suanwang Market", "version": "1", "chainId": chain_id,
                   "verifyingContract": market.address},
        "message": dict(zip(ORDER_FIELDS, order, strict=True)),
    }


def matched_of(tx, index: int = 0) -> dict:
    """The fields of a transaction's `index`-th Matched event, unpacked (suanwang.chain.bill.unpack_deal): the
    Deal's, plus matcher, status and deadline."""
    from brownie import project

    event = tx.events["Matched"][index]
    market = project.get_loaded_projects()[0].Market.at(tx.receiver)
    return unpack_deal(str(event["id"]), bytes.fromhex(str(event["deal"])[2:]), seats(market))


def deal_of(tx, index: int = 0) -> tuple[str, bytes]:
    """(id, deal) of a transaction's `index`-th Matched event: what every lifecycle call takes back
    (`market.start(*deal, {...})`), the packed bytes verbatim."""
    event = tx.events["Matched"][index]
    return str(event["id"]), bytes.fromhex(str(event["deal"])[2:])


def marketplace_tariffs(path: Path | None = None) -> dict[str, int]:
    """Each transit account's tariff per Gbps-hour, by account name, from the marketplace file (what the
    service routes over: which account is paid each topology operator's transit) and the transit price of
    that operator in the network file it names. An account paid for several operators publishes the
    highest of their prices (one tariff per account: no domain is carried below its price)."""
    import yaml  # brownie's env has PyYAML (brownie reads its config with it)

    path = path or Path(os.environ.get("SUANWANG_MARKETPLACE_FILE", "") or DEFAULT_MARKETPLACE)
    marketplace = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    network = yaml.safe_load((path.parent / marketplace["network"]).read_text(encoding="utf-8")) or {}
    prices = {
        str(entry.get("name") or Path(entry["topology"]).stem): int(
            entry.get("transit_price_per_gbps_hour", DEFAULT_TRANSIT_PRICE_PER_GBPS_HOUR)
        )
        for entry in network.get("operators", ())
    }
    tariffs: dict[str, int] = {}
    for operator, account in (marketplace.get("transit_accounts") or {}).items():
        if operator in prices:
            tariffs[account] = max(tariffs.get(account, 0), prices[operator])
    return tariffs


def deploy(stage: int = 1, out: Path | None = None, quiet: bool = False) -> dict:
    """Deploys everything from account 0 on the connected network; returns (and writes) the record."""
    import brownie
    from brownie import Federation, NodeRegistry, SettlementToken, accounts, chain, web3

    Market = getattr(brownie, "Market", None)

    if stage not in (1, 2, 3):
        raise SystemExit(f"SUANWANG_STAGE must be 1, 2 or 3, got {stage}")
    deployer = accounts[0]
    tx = {"from": deployer, "required_confs": 1}
    if quiet:
        tx["silent"] = True
    start_block = web3.eth.block_number
    federation = Federation.deploy("CERNET operator", PLATFORM_FEE_BPS, tx)
    registry = NodeRegistry.deploy(federation, MIN_STAKE_PER_TIER, tx)
    token = SettlementToken.deploy("Suanwang Settlement Token", "SWT", tx)
    market = None
    if Market is not None:
        market = Market.deploy(federation, registry, token, TERMS, tx)
        # The Federation first: it seats the operators, which every node the registry pushes names.
        federation.setMarket(market, tx)
        registry.setMarket(market, tx)

    members = [m for m in DEMO_MEMBERS if m[3] <= stage]
    for index, name, roles, since in members:
        mask = role_mask(roles)
        account = accounts[index]
        if index == 0:
            federation.setRoles(account, mask, tx)
        elif since == 1:
            federation.admit(account, mask, name, tx)
    for s in range(2, stage + 1):
        federation.advanceStage(s, tx)
        for index, name, roles, since in members:
            if since != s:
                continue
            mask = role_mask(roles)
            if "operator" in roles:
                # Stage 3: a new operator is admitted by a majority of the existing operators; a vote grants
                # OPERATOR alone, and the founder grants its other roles once it is a member.
                proposal = federation.proposeOperator(accounts[index], name, tx).return_value
                needed = federation.getProposal(proposal)[4]
                voters = [accounts[i] for i, _, r, w in members if "operator" in r and w < s and i != 0]
                for voter in voters[: max(0, needed - 1)]:
                    federation.vote(proposal, {**tx, "from": voter})
                if mask != ROLE_BITS["operator"]:
                    federation.setRoles(accounts[index], mask, tx)
            else:
                federation.admit(accounts[index], mask, name, tx)
    for index, *_ in members:
        if index != 0:
            token.mint(accounts[index], DEMO_TOKENS, tx)
    token.mint(deployer, DEMO_TOKENS, tx)
    # Transit is priced by the operators: each transit account of the marketplace publishes its tariff
    # (bills must charge exactly it); an operator paid for no domain there keeps the tariff 0.
    tariffs = marketplace_tariffs() if market is not None else {}
    for index, name, roles, _ in members:
        if "operator" in roles and tariffs.get(name):
            market.setTransitTariff(tariffs[name], {**tx, "from": accounts[index]})

    chain_id = chain.id
    record = {
        "chain_id": chain_id,
        "genesis_hash": web3.eth.get_block(0)["hash"].hex() if chain_id else None,
        "deployed_block": start_block + 1,
        "deployer": deployer.address,
        "stage": stage,
        "contracts": {
            "Federation": federation.address,
            "NodeRegistry": registry.address,
            "SettlementToken": token.address,
        },
        "accounts": [],
    }
    if market is not None:
        record["contracts"]["Market"] = market.address
        # The escrow is a module of the Market contract (contracts/Escrow.sol, inherited): one
        # contract holds the tokens, so no cross-contract call per lifecycle step.
        record["contracts"]["Escrow"] = market.address
    if not record["genesis_hash"].startswith("0x"):
        record["genesis_hash"] = "0x" + record["genesis_hash"]
    for index, name, *_ in members:
        account = accounts[index]
        mask = federation.rolesOf(account)
        entry = {"name": name, "address": account.address, "roles": int(mask), "role_names": role_names(mask)}
        if market is not None and mask & ROLE_BITS["operator"]:
            entry["transit_tariff_per_gbps_hour"] = str(market.transitTariffOf(account))
        if chain_id == 31337 and index < len(ANVIL_KEYS):
            entry["private_key"] = ANVIL_KEYS[index]
        record["accounts"].append(entry)

    out = out or Path(os.environ.get("SUANWANG_DEPLOYMENT_FILE", ".state/deployment.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    if not quiet:
        print(f"deployment written to {out}")
    return record


def main() -> None:
    deploy(stage=int(os.environ.get("SUANWANG_STAGE", "1")))

