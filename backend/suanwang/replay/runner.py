"""Replays a scenario against a chain with the real contracts, the market engine and the network.

Time runs in rounds of ``scenario.step`` seconds of chain time (Anvil's clock is set at the start of
every round: ``epoch + t``). In each round, in this order: the events due, timeouts, arbitration,
settlement or disputes of completed deals, completion of started deals whose duration has passed,
matching the orders that arrive in the round (engine placement, exact bill, ``matchSignedBatch``),
starting accepted deals, then one sample of the figures. A failed node never starts or completes
its deals (they time out and the seller is slashed); a failed link is removed from the network, the
leases crossing it are re-routed and the engine re-reads the routes.

The runner holds the replay's state; each part of a round lives in its own module as functions of the
runner: draws (the seed's nodes and orders), members (admissions, tariffs, node registration,
stakes), matching (the match round and its bills), deals (the lifecycle calls), events (the
scenario's timed events, link failures and re-routing) and accounting (holdings, conservation,
figures).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from web3 import Web3

from suanwang.chain.contracts import ChainGateway
from suanwang.chain.deployment import Deployment
from suanwang.chain.errors import ChainRevert
from suanwang.compute.catalog import default_catalog
from suanwang.lifecycle.billing import Biller
from suanwang.lifecycle.keys import Keyring, address_of
from suanwang.lifecycle.marketplace import RoutedCost
from suanwang.matching.market import MarketEngine
from suanwang.matching.model import StagePolicy
from suanwang.replay.accounting import conservation_checks, figures, sample, token_balances
from suanwang.replay.chain import ReplayError, build_dir, party_key, rpc, set_time
from suanwang.replay.deals import DealSteps
from suanwang.replay.draws import draw_nodes, draw_orders
from suanwang.replay.events import apply_event
from suanwang.replay.inputs import build_network
from suanwang.replay.matching import billing, match_round, transit_estimate
from suanwang.replay.members import setup
from suanwang.replay.records import (
    CLOUD,
    FINAL,
    OPERATOR,
    PROVIDER,
    DealState,
    NodeState,
    Party,
    Plan,
    ReplayResult,
    Sample,
)
from suanwang.replay.scenario import Scenario

__all__ = ["DealState", "NodeState", "Party", "Plan", "Replay", "ReplayResult", "Sample"]


class Replay:
    def __init__(
        self,
        scenario: Scenario,
        w3: Web3,
        deployment: Deployment,
        founder_key: str,
        store: Path,
        *,
        extra_accounts: dict[str, str] | None = None,
        progress: bool = True,
    ) -> None:
        self.s = scenario
        self.w3 = w3
        self.chain = ChainGateway.bind(w3, deployment, build_dir())
        self.addresses = dict(deployment.contracts)
        self.market = self.chain.market
        self.errors = self.chain.decoder
        self.chain_id = int(w3.eth.chain_id)
        self.progress = progress
        self.rng = np.random.default_rng(scenario.seed)
        self.catalog = default_catalog()
        self.log: list[str] = []
        self.gas: dict[str, list[int]] = defaultdict(list)
        self.extra_accounts = dict(extra_accounts or {})  # other holders of the token (demo accounts)
        keys = {
            spec.name: founder_key if spec.founder else party_key(scenario.name, spec.name) for spec in scenario.parties
        }
        # One Keyring holds every party's key: the replay simulates all the parties of a development chain
        # at once, where each party's own agent would hold its own key alone. The founder is the matcher,
        # who sends what anyone may (timeouts).
        self.keys = Keyring(w3, keys.values(), self.errors)
        self.parties: dict[str, Party] = {}
        for spec in scenario.parties:
            sender = self.keys.for_address(address_of(keys[spec.name]))
            assert sender is not None
            self.parties[spec.name] = Party(spec.name, spec.roles, keys[spec.name], sender.address, sender)
        self.founder = self.parties[scenario.founder.name]
        self.keys.matcher = self.founder.sender
        self.by_address = {p.address: p.name for p in self.parties.values()}
        self.failed_links: list[tuple[str, str]] = []
        self.network = build_network(self.s, self.failed_links)
        self.paid_to = {op.name: op.paid_to for op in scenario.operators}
        self.nodes: list[NodeState] = draw_nodes(scenario, self.network, self.catalog, self.rng)
        self.plans: list[Plan] = draw_orders(scenario, self.network, self.catalog, self.rng)
        self.deals: dict[str, DealState] = {}
        self.stage = self.chain.federation.stage()
        self.epoch = self.chain.federation.epoch()  # signed orders name it
        self.fee_bps = self.chain.federation.platform_fee_bps()
        # Each operator party's published transit tariff per Gbps-hour (what bills must charge), once it
        # publishes: the highest price of the topologies it is paid for.
        self.tariffs: dict[str, int] = {}
        self.engine = MarketEngine(
            [], RoutedCost(self.network), self._policy(), self.fee_bps, transit_fee=partial(transit_estimate, self)
        )
        self.transit_cache: dict[tuple[Any, ...], int] = {}  # the engine's transit estimates, per match round
        self.biller = Biller(self.market, billing(self))
        self.plan_by_id: dict[str, Plan] = {}  # by order id, once its match round signs it
        self.node_by_id: dict[int, NodeState] = {}  # the registered nodes by their on-chain id
        self.pending_disputes: dict[str, list[tuple[str, bool, int]]] = defaultdict(list)
        self.samples: list[Sample] = []
        self.counts: Counter[str] = Counter()
        self.now = 0
        self.chain_now = scenario.epoch  # the chain time of the round: the simulated executor's clock
        self.deal_steps = DealSteps(self, deployment, store)

    def tx(
        self, party: str, step: str | None, call: Any, *, reuse_estimate: bool = False, gas: int | None = None
    ) -> Any:
        """Sends `call` from `party` and waits for it (automine: the next block); its gas is recorded under
        `step` (unless None). A call the chain would refuse is a ReplayError naming the contract's error."""
        sender = self.parties[party].sender
        try:
            receipt = sender.wait(sender.submit(call, reuse_estimate=reuse_estimate, gas=gas))
        except ChainRevert as exc:
            raise ReplayError(f"{call.fn_name} from {party} ({sender.address}) was refused: {exc.message}") from None
        if step is not None:
            self.gas[step].append(int(receipt["gasUsed"]))
        return receipt

    def _policy(self) -> StagePolicy:
        seller_roles = CLOUD | PROVIDER | OPERATOR if getattr(self, "stage", 1) >= 3 else CLOUD
        sellers = frozenset(p.address for p in self.parties.values() if p.member and p.roles & seller_roles)
        return StagePolicy(stage=3, operator=self.founder.address, admitted=sellers)

    def refresh_engine(self) -> None:
        """The members changed: who may sell, and whose topologies a path may cross."""
        self.engine.stage = self._policy()
        self.engine.network_changed()
        self.biller.marketplace = billing(self)

    def note(self, text: str) -> None:
        self.log.append(f"t={self.now // 60:>4} min: {text}")

    def run(self) -> ReplayResult:
        started = time.perf_counter()
        latest = int(self.w3.eth.get_block("latest")["timestamp"])
        epoch = self.s.epoch if self.s.epoch > latest else (latest // 86400 + 2) * 86400
        if epoch != self.s.epoch:
            self.log.append(f"chain time is past the scenario's epoch; starting at {epoch} instead (order ids differ)")
        # Each block one second after the last, whatever the wall clock does: fees are prorated by the
        # seconds a deal ran, so a replay is deterministic only if block times are.
        rpc(self.w3, "anvil_setBlockTimestampInterval", [1])
        set_time(self.w3, epoch)
        setup(self)
        self.node_by_id = {n.node_id: n for n in self.nodes if n.registered}
        start_block = int(self.w3.eth.block_number)
        before_tokens = token_balances(self)
        supply_before = self.chain.token.total_supply()
        sample(self)
        events = list(self.s.events)
        next_plan = 0
        last_arrival = max((p.at for p in self.plans), default=0)
        last_event = max((e.at for e in events), default=0)
        rounds = math.ceil((max(last_arrival, last_event) + 4 * 3600) / self.s.step) + 1
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(self.plans), desc=f"replay {self.s.name}", unit="order", leave=False)
        t = 0
        while True:
            self.now = t
            chain_now = self.chain_now = set_time(self.w3, epoch + t)
            while events and events[0].at <= t:
                e = events.pop(0)
                apply_event(self, e.kind, e.args)
                self.node_by_id = {n.node_id: n for n in self.nodes if n.registered}
            self.deal_steps.close_deals()
            arrivals = []
            while next_plan < len(self.plans) and self.plans[next_plan].at < t + self.s.step:
                arrivals.append(self.plans[next_plan])
                next_plan += 1
            match_round(self, arrivals, chain_now)
            self.deal_steps.start_deals()
            if bar is not None:
                bar.update(len(arrivals))
            sample(self)
            open_deals = any(d.status not in FINAL for d in self.deals.values())
            if next_plan >= len(self.plans) and not events and not open_deals:
                break
            if t > max(self.s.max_time, rounds * self.s.step):
                self.log.append(f"stopped at t={t} s with deals still open (max_time)")
                break
            t += self.s.step
        if bar is not None:
            bar.close()
        self.deal_steps.close()
        end_block = int(self.w3.eth.block_number)
        rpc(self.w3, "anvil_removeBlockTimestampInterval", [])
        after_tokens = token_balances(self)
        supply_after = self.chain.token.total_supply()
        conservation = conservation_checks(self, before_tokens, after_tokens, supply_before, supply_after)
        result = ReplayResult(
            scenario=self.s,
            figures={},
            samples=self.samples,
            gas=dict(self.gas),
            deals=list(self.deals.values()),
            plans=self.plans,
            log=self.log,
            conservation=conservation,
            before=self.samples[0].holdings,
            after=self.samples[-1].holdings,
            start_block=start_block,
            end_block=end_block,
            addresses={n: p.address for n, p in self.parties.items()},
            contracts=dict(self.addresses),
            seconds=time.perf_counter() - started,
        )
        result.figures = figures(self, result)
        result.outcomes = [
            (e.text(), f"{self.s.path}:{e.line}", result.figures.get(e.key), e.holds(result.figures.get(e.key, 0)))
            for e in self.s.expect
        ]
        return result
