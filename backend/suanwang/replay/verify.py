"""An independent check of a replay's report against the chain.

Deliberately shares no code path with the replay: plain JSON-RPC over httpx (no web3 contract
objects), balances by ``balanceOf``/``stakeOf`` selectors in ``eth_call``, events by raw ``eth_getLogs``
decoded with ``eth_abi`` from the event signatures in the ABI files. It recomputes the report's
figures (deals matched, settled, refunded, slashed, disputed; compute, platform and per-operator
transit paid; every party's final holdings) and lists every disagreement.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from eth_abi import decode
from eth_utils import keccak

STATUS_DISPUTED = 6
STATUS_REFUNDED = 8


class Rpc:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=60)
        self.id = 0

    def __call__(self, method: str, params: list[Any]) -> Any:
        self.id += 1
        body = self.client.post(
            self.url, json={"jsonrpc": "2.0", "id": self.id, "method": method, "params": params}
        ).json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]


def _selector(signature: str) -> str:
    return keccak(text=signature)[:4].hex()


def _call_uint(rpc: Rpc, to: str, signature: str, address: str) -> int:
    data = "0x" + _selector(signature) + address.lower().removeprefix("0x").rjust(64, "0")
    return int(rpc("eth_call", [{"to": to, "data": data}, "latest"]), 16)


def transit_seats(rpc: Rpc, market: str) -> list[str]:
    """The transit operators by seat (``transitOperators()``): a packed deal names them by seat."""
    data = "0x" + _selector("transitOperators()")
    raw = rpc("eth_call", [{"to": market, "data": data}, "latest"])
    return [str(a).lower() for a in decode(["address[]"], bytes.fromhex(raw[2:]))[0]]


def _type(component: dict[str, Any]) -> str:
    t = str(component["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in component["components"]) + ")" + t[len("tuple") :]
    return t


def _events(abi_file: Path) -> dict[str, dict[str, Any]]:
    """topic0 -> {name, indexed: [(name, type)], data: [(name, type)]} from a brownie build artifact."""
    out = {}
    for entry in json.loads(abi_file.read_text())["abi"]:
        if entry.get("type") != "event":
            continue
        types = [_type(i) for i in entry["inputs"]]
        topic = "0x" + keccak(text=f"{entry['name']}({','.join(types)})").hex()
        out[topic] = {
            "name": entry["name"],
            "indexed": [(i["name"], _type(i)) for i in entry["inputs"] if i.get("indexed")],
            "data": [(i["name"], _type(i)) for i in entry["inputs"] if not i.get("indexed")],
        }
    return out


def market_logs(rpc: Rpc, market: str, build: Path, start: int, end: int) -> list[dict[str, Any]]:
    events = _events(build / "Market.json")
    logs: list[dict[str, Any]] = []
    chunk = 2000
    for lo in range(start, end + 1, chunk):
        hi = min(end, lo + chunk - 1)
        raw = rpc("eth_getLogs", [{"address": market, "fromBlock": hex(lo), "toBlock": hex(hi)}])
        for log in raw:
            spec = events.get(log["topics"][0])
            if spec is None:
                continue
            args: dict[str, Any] = {}
            for (name, typ), topic in zip(spec["indexed"], log["topics"][1:], strict=True):
                args[name] = (
                    decode([typ], bytes.fromhex(topic[2:]))[0]
                    if typ in ("address", "bool") or typ.startswith(("uint", "int", "bytes32"))
                    else topic
                )
            values = decode([t for _, t in spec["data"]], bytes.fromhex(log["data"][2:]))
            args.update({name: v for (name, _), v in zip(spec["data"], values, strict=True)})
            logs.append({"event": spec["name"], "args": args, "block": int(log["blockNumber"], 16)})
    return logs


def _unpack_matched(args: dict[str, Any], seats: list[str]) -> dict[str, Any]:
    """The packed Matched event (`deal` bytes; layout documented in IMarket.sol) as named fields;
    the flat event is returned as it is."""
    data = args.get("deal")
    if not isinstance(data, bytes):
        return args
    out = dict(args)
    # buyer 20 | seller 20 | matcher 20 | nodeId 32 | 3 x mCU 8 | duration 4 | minRunSeconds 4 | maxLatencyMs 4 |
    # valueless 1 | computeFee 16 | platformFee 16 | status 1 | deadline 5 | n 1 | n seats | n fees 16
    offsets = {"nodeId": (60, 92), "computeFee": (129, 145), "platformFee": (145, 161)}
    for name, (lo, hi) in offsets.items():
        out[name] = int.from_bytes(data[lo:hi], "big")
    out["valueless"] = data[128] != 0
    n = data[167]
    fees = data[168 + n : 168 + 17 * n]
    out["transitOperators"] = [seats[seat] for seat in data[168 : 168 + n]]
    out["transitFees"] = [int.from_bytes(fees[16 * i : 16 * i + 16], "big") for i in range(n)]
    return out


def recompute(logs: list[dict[str, Any]], seats: list[str]) -> dict[str, Any]:
    matched: dict[bytes, dict[str, Any]] = {}
    settled: set[bytes] = set()
    refunded: set[bytes] = set()
    slashed: set[bytes] = set()
    disputes = 0
    compute = platform = 0
    transit: dict[str, int] = defaultdict(int)
    last_status: dict[bytes, int] = {}
    for log in logs:
        a = log["args"]
        if log["event"] == "Matched":
            matched[a["id"]] = _unpack_matched(a, seats)
        elif log["event"] == "Settled":
            # A payout: the deal ends Settled, or Refunded when a ruling for the buyer moved it there just before.
            (refunded if last_status.get(a["id"]) == STATUS_REFUNDED else settled).add(a["id"])
            if not a["valueless"]:
                compute += a["computeFee"]
                platform += a["platformFee"]
                deal = matched[a["id"]]
                if a["transitTotal"]:  # none when an SLA breach was reported
                    for op, fee in zip(deal["transitOperators"], deal["transitFees"], strict=True):
                        transit[op.lower()] += fee
        elif log["event"] == "Refunded":
            refunded.add(a["id"])
        elif log["event"] == "Slashed":
            slashed.add(a["id"])
        elif log["event"] == "DealStatusChanged":
            last_status[a["id"]] = a["status"]
            disputes += a["status"] == STATUS_DISPUTED
    return {
        "matched": len(matched),
        "valueless_deals": sum(1 for m in matched.values() if m.get("valueless")),
        "valued_deals": sum(1 for m in matched.values() if not m.get("valueless", False)),
        "settled": len(settled),
        "refunded": len(refunded & set(matched)),
        "slashed": len(slashed),
        "disputes": disputes,
        "compute_paid": compute,
        "platform_fees_accrued": platform,
        "transit": dict(transit),
    }


def verify(
    rpc_url: str,
    contracts: dict[str, str],
    addresses: dict[str, str],
    figures: dict[str, Any],
    start_block: int,
    end_block: int,
    build: Path,
) -> dict[str, Any]:
    """Compares `figures` (the report's) with the chain; returns {ok, rows: [(figure, report, chain, ok)]}."""
    rpc = Rpc(rpc_url)
    token, market = contracts["SettlementToken"], contracts["Market"]
    chain = recompute(market_logs(rpc, market, build, start_block, end_block), transit_seats(rpc, market))
    rows: list[tuple[str, str, str, bool]] = []

    def row(name: str, report: Any, on_chain: Any) -> None:
        rows.append((name, str(report), str(on_chain), str(report) == str(on_chain)))

    for key in ("matched", "valueless_deals", "valued_deals", "settled", "refunded", "slashed", "disputes"):
        row(f"deals {key} (events)", figures[key], chain[key])
    row("compute fees paid (Settled)", figures["compute_paid"], chain["compute_paid"])
    row("platform fees (Settled)", figures["platform_fees_accrued"], chain["platform_fees_accrued"])
    by_name = {v.lower(): k for k, v in addresses.items()}
    chain_transit = {by_name.get(a, a): str(v) for a, v in chain["transit"].items() if v}
    for name in sorted(set(figures["transit_revenue"]) | set(chain_transit)):
        row(
            f"transit paid to {name} (Matched x Settled)",
            figures["transit_revenue"].get(name, "0"),
            chain_transit.get(name, "0"),
        )
    for name, address in addresses.items():
        holding = (
            _call_uint(rpc, token, "balanceOf(address)", address)
            + _call_uint(rpc, market, "balanceOf(address)", address)
            + _call_uint(rpc, market, "stakeOf(address)", address)
        )
        row(f"holdings of {name} (balanceOf + escrow + stake)", figures["final_holdings"][name], holding)
    return {"ok": all(r[3] for r in rows), "rows": rows, "blocks": [start_block, end_block]}
