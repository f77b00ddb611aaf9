"""A provider agent's live node metrics: for each of its nodes, every `node_metrics_interval_s`, the free
CPUs, memory and GPUs, the load and whether the node is up, with the CFN/CATS services it offers, signed
with the provider's own key and posted to the service (POST /api/nodes/metrics), which the matcher reads
to skip nodes that are down or silent and to place service-ID orders (docs/matching.md).

The figures are the CATS metric draft's level 0 (draft-ietf-cats-metric-definition-08): raw, as the
executor and the host give them. The service derives the normalised levels (network/cfn.py,
``cats_level``), so one normalisation serves every provider and no provider can claim a better level than
its raw figures give.

Free figures come from the executor's nodes (`Executor.nodes()`: each node's size and state) less what
this agent's open jobs were given there, worked out with the same rule the jobs were submitted with
(lifecycle/resources.py, `given_for`, from the order the buyer signed): the executor interface has no
"free resources" call (see the report of issue 16)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from suanwang.agents.base import AgentRuntime
from suanwang.agents.heartbeat import sign_heartbeat
from suanwang.chain.signed_orders import match_transaction, signed_orders_in
from suanwang.config import Settings
from suanwang.errors import InputError, SuanwangError
from suanwang.lifecycle.resources import Bought, Given, given_for
from suanwang.scheduling.base import Executor, ExecutorNode, NodeState
from suanwang.storage.models import Deal, Job, Node
from suanwang.storage.repositories import Repositories

log = logging.getLogger(__name__)

ServiceOffers = Mapping[int, list[dict[str, Any]]]  # chain node id -> [{"service_id", "service_time_ms"}]


def parse_node_services(text: str) -> dict[int, list[dict[str, Any]]]:
    """'1=0x<64 hex>:5,2=0x<64 hex>:8' -> {1: [{"service_id": ..., "service_time_ms": 5.0}], ...}: the
    services each node offers (a node may be named more than once), with the idle service time in ms."""
    offers: dict[int, list[dict[str, Any]]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            node, offer = part.split("=", 1)
            service_id, ms = offer.rsplit(":", 1)
            node_id, service_time_ms = int(node), float(ms)
            raw = bytes.fromhex(service_id.strip().removeprefix("0x"))
        except ValueError:
            raise InputError(
                f"{part!r} is not '<node id>=<service id>:<service time ms>'", field="node_services"
            ) from None
        if len(raw) != 32 or not any(raw) or not service_time_ms > 0:
            raise InputError(f"{part!r}: a service id is a non-zero bytes32, its time > 0 ms", field="node_services")
        offers.setdefault(node_id, []).append({"service_id": "0x" + raw.hex(), "service_time_ms": service_time_ms})
    return offers


@dataclass
class ReportNodeMetrics:
    """Posts the signed metrics of the agent's nodes every `interval_s` (a step like Withdraw)."""

    runtime: AgentRuntime
    executor: Executor
    executor_nodes: Callable[[Node], str | None]
    services: ServiceOffers = field(default_factory=dict)
    interval_s: float = 5.0
    _last: float = field(default=-float("inf"))
    _given: dict[str, Given] = field(default_factory=dict)  # by deal id: what its job was given

    @classmethod
    def of(
        cls,
        runtime: AgentRuntime,
        executor: Executor,
        executor_nodes: Callable[[Node], str | None],
        settings: Settings | None = None,
    ) -> ReportNodeMetrics:
        """With the interval and the services from the agent's settings (its options, else SUANWANG_*)."""
        settings = settings or Settings.from_env()
        services = parse_node_services(settings.node_services)
        return cls(runtime, executor, executor_nodes, services, settings.node_metrics_interval_s)

    def tick(self) -> None:
        if self.runtime.service_url is None or time.monotonic() - self._last < self.interval_s:
            return
        self._last = time.monotonic()
        document = self.document()
        if document is None:
            return
        body = sign_heartbeat(document, self.runtime.key)
        try:
            response = httpx.post(self.runtime.service_url.rstrip("/") + "/api/nodes/metrics", json=body, timeout=5)
        except httpx.HTTPError as exc:
            log.warning("node metrics not sent: %s", exc)
            return
        if response.status_code >= 400:
            log.warning("the service refused the node metrics: %s", response.text[:300])

    def document(self) -> dict[str, Any] | None:
        """The unsigned report of the agent's active nodes (None: it has none yet)."""
        address = self.runtime.address.lower()
        with self.runtime.ctx.sessions() as session:
            repos = Repositories(session)
            nodes = [n for n in repos.nodes.by_id().values() if n.owner.lower() == address and n.status == "active"]
            jobs = [(job, repos.deals.get(job.deal_id)) for job in repos.jobs.open()]
        if not nodes:
            return None
        executor_nodes = self.executor.nodes()
        load = os.getloadavg()[0]
        figures = [self._figures(node, executor_nodes, jobs, load) for node in sorted(nodes, key=lambda n: n.node_id)]
        return {"kind": "node_metrics", "reporter": self.runtime.address, "at": int(time.time()), "nodes": figures}

    def _figures(
        self, node: Node, executor_nodes: list[ExecutorNode], jobs: list[tuple[Job, Deal | None]], load: float
    ) -> dict[str, Any]:
        name = self.executor_nodes(node)
        # A node mapped to an executor node is that node; an unmapped one is served by whichever executor
        # node has room (the executor picks), so it has the executor's whole size.
        serving = [n for n in executor_nodes if name is None or n.name == name]
        names = {n.name for n in serving}
        cpus, memory, gpus = (sum(getattr(n, a) for n in serving) for a in ("cpus", "memory_mib", "gpus"))
        used = [0, 0, 0]
        for job, deal in jobs:
            if deal is None or deal.node_id != node.node_id or (name is not None and job.executor_node not in names):
                continue
            given = self._given_for(deal, node, next((n for n in serving if n.name == job.executor_node), None))
            used = [used[0] + given.cpus, used[1] + given.memory_mib, used[2] + given.gpus]
        return {
            "node_id": node.node_id,
            "up": any(n.state == NodeState.UP for n in serving),
            "cpus": cpus,
            "free_cpus": max(0, cpus - used[0]),
            "memory_mib": memory,
            "free_memory_mib": max(0, memory - used[1]),
            "gpus": gpus,
            "free_gpus": max(0, gpus - used[2]),
            "load_1m": round(load, 3),
            "services": list(self.services.get(node.node_id, [])),
        }

    def _given_for(self, deal: Deal, node: Node, executor_node: ExecutorNode | None) -> Given:
        """What the deal's job was given: the dispatch's rule over the order the buyer signed (read once
        from the match transaction); the deal's logic mCU alone when that order cannot be read."""
        given = self._given.get(deal.id)
        if given is None:
            bought = Bought(logic_mcu=int(deal.deal["logicMcu"]), memory_mib=0)
            try:
                market = self.runtime.ctx.chain.market
                tx_hash = match_transaction(market, deal.id, deal.matched_block)
                order = signed_orders_in(market, tx_hash, self.runtime.deployment.chain_id).get(deal.id.lower())
                if order is not None:
                    bought = Bought.of(order)
            except SuanwangError as exc:
                log.info("%s: its signed order is not readable (%s); counting its mCU only", deal.id, exc.message)
            given = self._given[deal.id] = given_for(bought, node.logic_mcu, executor_node)
            if len(self._given) > 4096:  # finished deals' entries: dropped oldest first
                self._given.pop(next(iter(self._given)))
        return given
