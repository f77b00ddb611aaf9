"""`suanwang agent operator`: a network operator's own agent. With the operator's key alone it publishes its
transit tariff, keeps a lease for each live deal that pays it transit (the path delivery issue gives the
lease a data plane to program), and withdraws its transit credits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from suanwang.agents.base import AgentRuntime
from suanwang.agents.provider import Withdraw
from suanwang.states import FINAL_DEAL_STATUSES
from suanwang.storage.models import Lease
from suanwang.storage.repositories import Repositories

log = logging.getLogger(__name__)


@dataclass
class PublishTariff:
    """Sets the tariff on chain when it differs from `per_gbps_hour` (None: keep what is published)."""

    runtime: AgentRuntime
    per_gbps_hour: int | None
    done: bool = False

    def tick(self) -> None:
        if self.done or self.per_gbps_hour is None:
            return
        market, sender = self.runtime.ctx.chain.market, self.runtime.ctx.keys.only_or_matcher()
        if market.transit_tariff_of(sender.address) != self.per_gbps_hour:
            sender.send(market.set_transit_tariff(self.per_gbps_hour))
            log.info("published a transit tariff of %d per Gbps-hour", self.per_gbps_hour)
        self.done = True


@dataclass
class KeepLeases:
    """One lease row per deal whose bill pays this operator transit, released when the deal is final."""

    runtime: AgentRuntime

    def tick(self) -> None:
        me = self.runtime.address.lower()
        with self.runtime.ctx.sessions.begin() as session:
            repos = Repositories(session)
            leases = repos.leases.by_deal()
            for deal in repos.deals.all():
                lines = zip(deal.deal.get("transitOperators", ()), deal.deal.get("transitFees", ()), strict=False)
                paid = [int(fee) for operator, fee in lines if str(operator).lower() == me]
                if not paid:
                    continue
                lease = leases.get(deal.id)
                final = deal.status in FINAL_DEAL_STATUSES
                if lease is None and not final:
                    repos.leases.add(Lease(deal_id=deal.id, path={"deal": deal.id}, bandwidth_gbps=0.0))
                    log.info("lease for deal %s (transit %d)", deal.id, paid[0])
                elif lease is not None and final and not lease.released:
                    lease.released = True
                    log.info("lease for deal %s released (%s)", deal.id, deal.status)


def operator_steps(runtime: AgentRuntime, tariff: int | None, withdraw: bool = True) -> list[Callable[[], None]]:
    steps: list[Callable[[], None]] = [PublishTariff(runtime, tariff).tick, KeepLeases(runtime).tick]
    if withdraw:
        steps.append(Withdraw(runtime).tick)
    return steps
