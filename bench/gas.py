"""Gas bench: receipt gas of each registry and market step on a fresh deployment from fresh accounts.

Run:  .venv-brownie/bin/python bench/gas.py      (starts its own Anvil on a free port; `make bench-gas`)
Writes bench/results/gas.json and prints each figure as a ratio to
  (a) its lower bound: what the step cannot avoid writing, priced by the EVM's rules
      (post EIP-2929/EIP-2200/EIP-3529, Cancun):
        21,000 per transaction
        22,100 per fresh storage slot (20,000 SSTORE zero->non-zero + 2,100 cold access)
         5,000 per rewritten slot    ( 2,900 SSTORE non-zero->non-zero + 2,100 cold access)
        375 + 375 per topic (topic 0 included) + 8 per data byte, per event
      calldata, hashing, signature recovery and calls between contracts are NOT counted: the bound is
      the storage and log floor, so a ratio of 1.0 is unreachable and ~1.3 is very good;
  (b) iExec PoCo's published averages: matchOrders 760,843 gas; its Boost path about 730,000 for match
      plus result push.
The one-time deposit (buyer funds its escrow balance) is reported apart as `deposit_gas`.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import deploy as d  # noqa: E402

TX = 21_000
FRESH = 22_100
REWRITE = 5_000
IEXEC_MATCH_ORDERS = 760_843
IEXEC_BOOST_MATCH_AND_PUSH = 730_000
CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"  # 59 bytes
BATCH = 50


def log(topics: int, data_bytes: int) -> int:
    """An event: 375 + 375 per topic (topic 0 included) + 8 per data byte."""
    return 375 + 375 * topics + 8 * data_bytes


# Lower bounds, step by step: (formula, value). Each names the slots and events the step cannot avoid.
LOWER_BOUNDS = {
    # A node is 1,424 bits (spec 1,256 with its encryption key + owner 160 + status 8) -> 6 fresh slots; the
    # id counter is a fresh slot on a fresh deployment; NodeRegistered(nodeId, owner indexed; 13-word spec).
    "registerNode": ("21000 + 7*22100 + log(3 topics, 416 B)", TX + 7 * FRESH + log(3, 416)),
    # New price and capacity: 2 rewritten slots; NodeUpdated(nodeId indexed; 13-word spec).
    "updateNode": ("21000 + 2*5000 + log(2, 416)", TX + 2 * REWRITE + log(2, 416)),
    # Status: 1 rewritten slot; NodePauseChanged(nodeId indexed; bool).
    "setPaused": ("21000 + 5000 + log(2, 32)", TX + REWRITE + log(2, 32)),
    "setPaused(resume)": ("21000 + 5000 + log(2, 32)", TX + REWRITE + log(2, 32)),
    # Status: 1 rewritten slot; NodeRetired(nodeId indexed).
    "retireNode": ("21000 + 5000 + log(2, 0)", TX + REWRITE + log(2, 0)),
    # The deal: 1 fresh slot; buyer balance, node reservation and the seller's stake lock (issue 14: each
    # deal locks its compute fee of the seller's stake): 3 rewritten slots; one event with the 8 words the
    # world cannot derive from the signed order (seller, node, 2 fees, 2 operators, 2 fees).
    "match": ("21000 + 22100 + 3*5000 + log(2, 256)", TX + FRESH + 3 * REWRITE + log(2, 256)),
    "start": ("21000 + 5000 + log(2, 0)", TX + REWRITE + log(2, 0)),
    # Deal status (with the seconds used) and capacity release: 2 rewritten slots; the 59-byte CID and the
    # seconds used in an event.
    "complete": ("21000 + 2*5000 + log(2, 91)", TX + 2 * REWRITE + log(2, 91)),
    # Deal status, the staked seller's credit, the platform fee, two transit operators' credits: 5
    # rewritten slots (the seller's escrow slot is live from admission: it holds its roles, which the
    # Federation pushes into the market; a transit operator's credit word is live from the seat it gets
    # then; so a first credit rewrites a slot, the cost of filling it moved to admission; the seller's stake
    # lock is released in the word its credit rewrites); one event with 4 amounts (compute, transit and
    # platform paid, refunded).
    "settle": ("21000 + 5*5000 + log(2, 128)", TX + 5 * REWRITE + log(2, 128)),
    # Escrow credit, escrow token balance, seller token balance: 3 rewritten slots; ERC-20 Transfer.
    "withdraw": ("21000 + 3*5000 + log(3, 32)", TX + 3 * REWRITE + log(3, 32)),
}
LIFECYCLE = ("match", "start", "complete", "settle", "withdraw")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect():
    """Loads the project and connects brownie's development network, which starts an Anvil on
    SUANWANG_CHAIN_PORT (a free port unless set): tools/run_brownie.py puts that port and Anvil's
    settings into brownie's loaded configuration when imported."""
    os.environ.setdefault("SUANWANG_CHAIN_PORT", str(_free_port()))
    sys.path.insert(0, str(ROOT / "tools"))
    importlib.import_module("run_brownie")
    from brownie import network, project

    loaded = project.load(ROOT, name="SuanwangBench")
    network.connect("development")
    return loaded


def run() -> dict:
    p = _connect()
    from brownie import accounts, chain

    founder = accounts[0]
    q = {"from": founder, "silent": True}
    federation = p.Federation.deploy("CERNET operator", d.PLATFORM_FEE_BPS, q)
    registry = p.NodeRegistry.deploy(federation, d.MIN_STAKE_PER_TIER, q)
    token = p.SettlementToken.deploy("Suanwang Settlement Token", "SWT", q)
    market = p.Market.deploy(federation, registry, token, d.TERMS, q)
    federation.setMarket(market, q)  # first: it seats the operators the registry's nodes name
    registry.setMarket(market, q)

    fresh = lambda: accounts.add()  # noqa: E731 (new key, never used on chain)
    seller, buyer, matcher, op1, op2 = (fresh() for _ in range(5))
    federation.admit(seller, d.role_mask(["cloud"]), "cloud team", q)
    federation.admit(buyer, d.role_mask(["buyer"]), "buyer", q)
    federation.admit(matcher, d.role_mask(["matcher"]), "matcher", q)
    federation.admit(op1, d.role_mask(["operator"]), "operator one", q)
    federation.admit(op2, d.role_mask(["operator"]), "operator two", q)

    gas: dict[str, int] = {}

    def measure(name, tx):
        gas[name] = int(tx.gas_used)
        return tx

    # Transit is priced by the operators: each publishes its tariff (per Gbps-hour) before any bill.
    tariffs = {op1: 3 * 10**17, op2: 2 * 10**17}
    for op, tariff in tariffs.items():
        market.setTransitTariff(tariff, {"from": op, "silent": True})

    price = 2 * 10**18
    spec = (4_000_000, 8_000_000, 16_000_000, 65536, 3, 8, 1, price, op1.address, "0x" + "ab" * 32,
            "0x20010db8000100000000000000000000", 48, "0x" + "5e" * 32)
    # Registry steps, each from a fresh account on a fresh node.
    reg_owner = fresh()
    federation.admit(reg_owner, d.role_mask(["cloud"]), "registry bench", q)
    node = measure("registerNode", registry.registerNode(spec, {"from": reg_owner, "silent": True})).return_value
    updated = (5_000_000, *spec[1:7], 3 * 10**18, *spec[8:])
    measure("updateNode", registry.updateNode(node, updated, {"from": reg_owner, "silent": True}))
    measure("setPaused", registry.setPaused(node, True, {"from": reg_owner, "silent": True}))
    measure("setPaused(resume)", registry.setPaused(node, False, {"from": reg_owner, "silent": True}))
    measure("retireNode", registry.retireNode(node, {"from": reg_owner, "silent": True}))

    batch_buyers = [fresh() for _ in range(BATCH)]
    for n, b in enumerate(batch_buyers):  # internal buying teams, admitted in stage 1
        federation.admit(b, d.role_mask(["buyer"]), f"buyer {n}", q)

    # Stage 2: value moves. The seller holds tokens and stakes (setup, reported apart).
    federation.advanceStage(2, q)
    node = registry.registerNode(spec, {"from": seller, "silent": True}).return_value
    token.mint(seller, 10_000 * 10**18, q)
    token.mint(buyer, 10_000 * 10**18, q)
    token.approve(market, 2**256 - 1, {"from": seller, "silent": True})
    # The node's requirement plus enough to lock every deal of the bench (each locks its compute fee).
    staked = d.MIN_STAKE_PER_TIER[1] + 1_000 * 10**18
    market.deposit(staked, {"from": seller, "silent": True})
    stake_gas = int(market.stake(staked, {"from": seller, "silent": True}).gas_used)
    token.approve(market, 2**256 - 1, {"from": buyer, "silent": True})
    deposit_gas = int(market.deposit(1_000 * 10**18, {"from": buyer, "silent": True}).gas_used)

    epoch = federation.epoch()
    # A real job's specification is named by its digest in the signed order: 32 bytes that are not zero.
    spec_digest = "0x" + "5a" * 32

    def transit_of(o):
        return [(op.address, d.transit_fee_of(o, tariff)) for op, tariff in tariffs.items()]

    order = d.make_order(buyer.address, expiry=chain.time() + 86400, epoch=epoch, specDigest=spec_digest)
    bill = d.make_bill(order, node, price, d.PLATFORM_FEE_BPS, transit_of(order))
    sig = d.sign_order(market, order, buyer.private_key)
    tx = measure("match", market.matchSigned(d.entry(market, order, sig, bill), {"from": matcher, "silent": True}))
    deal = d.deal_of(tx)
    measure("start", market.start(*deal, {"from": seller, "silent": True}))
    # The job runs its whole hour: the bill is paid in full, nothing refunded (a shorter run adds the
    # buyer's refund credit to settle: one more rewritten slot).
    chain.sleep(3600)
    measure("complete", market.complete(*deal, CID, {"from": seller, "silent": True}))
    measure("settle", market.settle(*deal, {"from": buyer, "silent": True}))
    measure("withdraw", market.withdraw(market.balanceOf(seller), {"from": seller, "silent": True}))

    # Batch of 50 signed orders from 50 fresh buyers, each with its own deposit, on one node.
    entries = []
    for b in batch_buyers:
        token.mint(b, 100 * 10**18, q)
        token.approve(market, 2**256 - 1, {"from": b, "silent": True})
        market.deposit(100 * 10**18, {"from": b, "silent": True})
        o = d.make_order(b.address, expiry=chain.time() + 86400, logicMcu=1000, parallelMcu=1000, neuralMcu=1000,
                         epoch=epoch, specDigest=spec_digest)
        bl = d.make_bill(o, node, price, d.PLATFORM_FEE_BPS, transit_of(o))
        entries.append(d.entry(market, o, d.sign_order(market, o, b.private_key), bl))
    tx = market.matchSignedBatch(b"".join(entries), {"from": matcher, "silent": True, "gas_limit": 11_000_000})
    if int(tx.return_value) != BATCH:
        raise SystemExit(f"batch matched {tx.return_value} of {BATCH}: {tx.events['MatchFailed']}")
    batch_gas = int(tx.gas_used)

    lifecycle = sum(gas[s] for s in LIFECYCLE)
    lifecycle_bound = sum(LOWER_BOUNDS[s][1] for s in LIFECYCLE)
    steps = {
        name: {
            "gas": g,
            "lower_bound": LOWER_BOUNDS[name][1],
            "lower_bound_formula": LOWER_BOUNDS[name][0],
            "ratio_to_lower_bound": round(g / LOWER_BOUNDS[name][1], 3),
        }
        for name, g in gas.items()
    }
    return {
        "full_lifecycle_gas": lifecycle,
        "full_lifecycle_lower_bound": lifecycle_bound,
        "lower_bound_ratio": round(lifecycle / lifecycle_bound, 3),
        "lifecycle_ratio_to_iexec_match_orders": round(lifecycle / IEXEC_MATCH_ORDERS, 3),
        "lifecycle_ratio_to_iexec_boost": round(lifecycle / IEXEC_BOOST_MATCH_AND_PUSH, 3),
        "match_ratio_to_iexec_match_orders": round(gas["match"] / IEXEC_MATCH_ORDERS, 3),
        "batch50_gas": batch_gas,
        "batch50_gas_per_match": round(batch_gas / BATCH, 1),
        "batch50_ratio_to_iexec_match_orders": round(batch_gas / BATCH / IEXEC_MATCH_ORDERS, 3),
        "deposit_gas": deposit_gas,
        "stake_gas": stake_gas,
        "goals": {"full_lifecycle_gas_max": 270_000, "batch50_gas_per_match_max": 47_500},
        "steps": steps,
    }


def main() -> None:
    results = run()
    out = ROOT / "bench" / "results" / "gas.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'step':<20}{'gas':>10}{'lower bound':>14}{'ratio':>8}")
    for name, s in results["steps"].items():
        print(f"{name:<20}{s['gas']:>10,}{s['lower_bound']:>14,}{s['ratio_to_lower_bound']:>8.2f}")
    print(f"full lifecycle: {results['full_lifecycle_gas']:,} gas = {results['lower_bound_ratio']:.2f}x its lower "
          f"bound {results['full_lifecycle_lower_bound']:,}; {results['lifecycle_ratio_to_iexec_match_orders']:.2f}x "
          f"iExec matchOrders alone, {results['lifecycle_ratio_to_iexec_boost']:.2f}x iExec Boost (goal <= 270,000)")
    print(f"batch of {BATCH}: {results['batch50_gas_per_match']:,} gas per match = "
          f"{results['batch50_ratio_to_iexec_match_orders']:.3f}x iExec matchOrders (goal <= 47,500)")
    print(f"deposit (one time): {results['deposit_gas']:,} gas; stake: {results['stake_gas']:,} gas")
    print(f"wrote {out}")
    importlib.import_module("brownie").network.disconnect()


if __name__ == "__main__":
    main()
