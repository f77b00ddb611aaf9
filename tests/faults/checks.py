"""A run's report, and the checks of a run against the chain: the service's index is the chain's logs;
every deal matched once and ended once; money moved exactly as the settlements say (withdrawals by the
agents included); every order final; and every job ran once, however often its agent was killed."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hexbytes import HexBytes
from sqlalchemy import func, select

from suanwang.chain.projections import DEAL_STATUS_NAMES, FINAL_DEAL_STATUSES
from suanwang.storage.db import make_engine, make_sessionmaker
from suanwang.storage.models import ChainCursor, Deal, Event, Job, OrderRecord, Settlement
from tests.support.stack import Chain


@dataclass
class RunReport:
    seed: int
    orders: int = 0
    planned_job_failures: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    checks: dict[str, bool] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    refund_causes: Counter[str] = field(default_factory=Counter)
    warps: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)  # how the drain went: stages over time

    def lap(self, phase: str, since: float) -> float:
        now = time.monotonic()
        self.phases[phase] = round(now - since, 1)
        return now

    def check(self, name: str, problems: list[str]) -> None:
        self.checks[name] = not problems
        self.failures += [f"{name}: {p}" for p in problems[:5]]

    @property
    def passed(self) -> bool:
        return all(self.checks.values()) and not self.failures


@dataclass(frozen=True)
class Parties:
    """Whose money the checks follow, and where the provider's agent keeps its jobs."""

    provider: str
    buyer: str
    transit: tuple[str, ...]  # the operators the bills pay transit to
    provider_store: Path
    job_ledger: Path  # one line per job that ran: its executor key and Slurm job id (the job writes it)


@dataclass(frozen=True)
class Balances:
    buyer_escrow: int
    provider_escrow: int
    provider_stake: int
    transit_escrow: int
    platform_fees: int

    @classmethod
    def read(cls, chain: Chain, parties: Parties, block: int | str = "latest") -> Balances:
        market = chain.contract("Market").functions
        return cls(
            int(market.balanceOf(parties.buyer).call(block_identifier=block)),
            int(market.balanceOf(parties.provider).call(block_identifier=block)),
            int(market.stakeOf(parties.provider).call(block_identifier=block)),
            sum(int(market.balanceOf(a).call(block_identifier=block)) for a in parties.transit),
            int(market.platformFees().call(block_identifier=block)),
        )


def chain_events(chain: Chain, to_block: int) -> list[Any]:
    addresses = list(chain.deployment.contracts.values())
    return list(
        chain.w3.eth.get_logs({"fromBlock": chain.deployment.deployed_block, "toBlock": to_block, "address": addresses})
    )


def job_runs(ledger: Path) -> Counter[tuple[str, str]]:
    """How often each (executor key, Slurm job id) ran, from the lines the jobs themselves wrote."""
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    return Counter((key, job_id) for key, job_id in (line.split() for line in lines if line.strip()))


def check_run(
    chain: Chain,
    folder: Path,
    confirmed: int,
    order_ids: list[str],
    before: Balances,
    parties: Parties,
    report: RunReport,
) -> None:
    sessions = make_sessionmaker(make_engine(f"sqlite:///{folder / 'service.db'}"))
    market = chain.contract("Market")
    with sessions() as session:
        cursor = session.get(ChainCursor, 1)
        events = list(session.scalars(select(Event)))
        deals = {d.id: d for d in session.scalars(select(Deal))}
        settlements = {s.deal_id: s for s in session.scalars(select(Settlement))}
        orders = {o.id: o for o in session.scalars(select(OrderRecord))}
        rows = session.scalar(select(func.count()).select_from(Event)) or 0
    with make_sessionmaker(make_engine(f"sqlite:///{parties.provider_store}"))() as session:
        jobs = {j.deal_id: j for j in session.scalars(select(Job))}  # the jobs ran at the provider's agent
    logs = chain_events(chain, confirmed)
    by_name: dict[str, list[Any]] = {}
    for entry in logs:
        topic = HexBytes(entry["topics"][0]).to_0x_hex()
        by_name.setdefault(topic, []).append(entry)

    # 1. The index is the chain's logs up to head - confirmations, block hashes included.
    problems = []
    if cursor is None or cursor.block_number != confirmed:
        problems.append(f"cursor at {cursor and cursor.block_number}, chain confirmed to {confirmed}")
    elif cursor.block_hash != HexBytes(chain.w3.eth.get_block(confirmed)["hash"]).to_0x_hex():
        problems.append(f"cursor block {confirmed} hash {cursor.block_hash} is not the chain's")
    indexed = {(e.tx_hash, e.log_index, e.block_number, e.block_hash) for e in events}
    on_chain = {
        (
            HexBytes(e["transactionHash"]).to_0x_hex(),
            int(e["logIndex"]),
            int(e["blockNumber"]),
            HexBytes(e["blockHash"]).to_0x_hex(),
        )
        for e in logs
    }
    problems += [f"indexed but not on chain: {x}" for x in sorted(indexed - on_chain)]
    problems += [f"on chain but not indexed: {x}" for x in sorted(on_chain - indexed)]
    report.check("index_equals_chain", problems)

    # 2. No event stored twice.
    distinct = len({(e.tx_hash, e.log_index) for e in events})
    report.check("no_duplicate_events", [f"{rows} event rows, {distinct} distinct"] if rows != distinct else [])

    # 3. Deals and settlements equal the chain's at the confirmed block; each deal ended exactly once.
    topic = {
        name: HexBytes(market.events[name]().topic).to_0x_hex()
        for name in ("Matched", "Settled", "Refunded", "Slashed", "Withdrawn")
    }
    ids_of = {
        name: Counter(HexBytes(e["topics"][1]).to_0x_hex() for e in by_name.get(t, [])) for name, t in topic.items()
    }
    problems = []
    for deal_id in set(ids_of["Matched"]) | set(deals):
        status, _ = market.functions.statusOf(deal_id).call(block_identifier=confirmed)
        name = DEAL_STATUS_NAMES[int(status)]
        row = deals.get(deal_id)
        if row is None or row.status != name:
            problems.append(f"deal {deal_id[:10]}: database {row and row.status}, chain {name}")
        endings = ids_of["Settled"][deal_id] + ids_of["Refunded"][deal_id]
        if ids_of["Matched"][deal_id] != 1 or endings != (1 if name in FINAL_DEAL_STATUSES else 0):
            problems.append(f"deal {deal_id[:10]} ({name}): matched {ids_of['Matched'][deal_id]}x, ended {endings}x")
    ended = set(ids_of["Settled"]) | set(ids_of["Refunded"])
    if set(settlements) != ended:
        problems.append(f"settlement rows {len(settlements)}, settled or refunded on chain {len(ended)}")
    report.check("deals_and_settlements_equal_chain", problems)

    # 4. Money: the buyer paid, the provider and the transit operators earned, and the provider lost
    # exactly what the settlements say; what an agent withdrew counts as earned.
    after = Balances.read(chain, parties, confirmed)
    paid = earned = transit = slashed = to_buyer = fees = 0
    for entry in by_name.get(topic["Settled"], []):
        args = market.events.Settled().process_log(entry)["args"]
        if not args["valueless"]:
            paid += args["computeFee"] + args["transitTotal"] + args["platformFee"]
            earned += args["computeFee"]
            transit += args["transitTotal"]
            fees += args["platformFee"]
    for entry in by_name.get(topic["Slashed"], []):
        args = market.events.Slashed().process_log(entry)["args"]
        slashed += args["toBuyer"] + args["toPlatform"]
        to_buyer += args["toBuyer"]
        fees += args["toPlatform"]
    withdrawn: Counter[str] = Counter()
    for entry in by_name.get(topic["Withdrawn"], []):
        args = market.events.Withdrawn().process_log(entry)["args"]
        withdrawn[str(args["account"]).lower()] += int(args["amount"])
    provider_got = after.provider_escrow - before.provider_escrow + withdrawn[parties.provider.lower()]
    transit_got = after.transit_escrow - before.transit_escrow + sum(withdrawn[a.lower()] for a in parties.transit)
    problems = []
    if before.buyer_escrow - after.buyer_escrow != paid - to_buyer:
        problems.append(f"buyer paid {before.buyer_escrow - after.buyer_escrow}, settlements say {paid - to_buyer}")
    if provider_got != earned:
        problems.append(f"provider earned {provider_got}, settlements say {earned}")
    if transit_got != transit:
        problems.append(f"transit operators earned {transit_got}, settlements say {transit}")
    if before.provider_stake - after.provider_stake != slashed:
        problems.append(f"provider lost {before.provider_stake - after.provider_stake} stake, slashes say {slashed}")
    if after.platform_fees - before.platform_fees != fees:
        problems.append(f"platform fees grew {after.platform_fees - before.platform_fees}, events say {fees}")
    report.check("money_moved_exactly_once", problems)

    # 5. Every order final: unmatched and never matched on chain, or matched with its deal ended.
    problems = []
    for order_id in order_ids:
        record = orders.get(order_id)
        deal = deals.get(order_id)
        if record is None:
            problems.append(f"order {order_id[:10]} lost from the database")
            continue
        matched = ids_of["Matched"][order_id] > 0
        if record.state == "unmatched" and not matched:
            report.outcomes["unmatched"] += 1
        elif record.state == "on_chain" and deal is not None and deal.status in FINAL_DEAL_STATUSES and matched:
            report.outcomes[deal.status] += 1
            if deal.status == "refunded":
                job = jobs.get(order_id)
                report.refund_causes[f"job {job.state}" if job else "no job"] += 1
        else:
            problems.append(
                f"order {order_id[:10]}: state {record.state}, deal {deal and deal.status}, matched on chain {matched}"
            )
    report.check("orders_final", problems)

    # 6. Every job ran at most once (no key submitted twice by a restarted agent, no Slurm job run twice),
    # and the job of each settled deal ran exactly once.
    runs = job_runs(parties.job_ledger)
    problems = [f"job {key} (Slurm {job_id}) ran {n} times" for (key, job_id), n in sorted(runs.items()) if n > 1]
    per_key = Counter(key for key, _ in runs)
    problems += [f"key {key} ran as {n} Slurm jobs" for key, n in sorted(per_key.items()) if n > 1]
    ran_ids = Counter(job_id for _, job_id in runs.elements())
    for order_id in order_ids:
        deal = deals.get(order_id)
        if deal is not None and deal.status == "settled":
            job = jobs.get(order_id)
            if job is None or ran_ids[job.job_id] != 1:
                problems.append(
                    f"settled deal {order_id[:10]}: its job {job and job.job_id} ran {job and ran_ids[job.job_id]}x"
                )
    report.check("jobs_ran_once", problems)
