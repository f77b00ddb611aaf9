"""The running service's shared parts: settings, database, chain connection, deployment, indexer,
marketplace (network), content store, executor and the lifecycle orchestrator.

The deployment may not exist yet when the service starts (``make up`` deploys first, but a user may
start the API on its own): the background threads wait for it and start once it can be read."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from suanwang.chain.contracts import ChainGateway
from suanwang.chain.deployment import Deployment
from suanwang.chain.gateway import connect, connect_probe, contracts
from suanwang.chain.indexer import Indexer, IndexerThread
from suanwang.config import Settings
from suanwang.content import ContentStore, content_store_from_url
from suanwang.errors import InputError, SuanwangError
from suanwang.lifecycle.context import StepContext
from suanwang.lifecycle.jobs import NodeKeys, ServiceOrders
from suanwang.lifecycle.keys import Keyring
from suanwang.lifecycle.market_view import LivenessRule
from suanwang.lifecycle.marketplace import Marketplace, load_marketplace
from suanwang.lifecycle.orchestrator import Orchestrator
from suanwang.live_events import EventBus, wide_integer_args
from suanwang.metrics import Metrics
from suanwang.scheduling import Executor, LocalExecutor, SlurmExecutor
from suanwang.storage.db import make_engine, make_sessionmaker
from suanwang.storage.models import Event


def parse_node_map(text: str) -> dict[int, str]:
    """'1=n1,2=n2' -> {1: 'n1', 2: 'n2'}; a malformed entry names itself."""
    out: dict[int, str] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        node_id, sep, name = entry.partition("=")
        if not sep or not node_id.strip().isdigit() or not name.strip():
            raise InputError(
                f"SUANWANG_SLURM_NODE_MAP entry {entry!r} is not '<chain node id>=<slurm node>'", field="slurm_node_map"
            )
        out[int(node_id)] = name.strip()
    return out


class OrchestratorThread(threading.Thread):
    """Runs one kind of lifecycle pass in the background; a failed pass is logged and the next one retries."""

    def __init__(self, orchestrator: Orchestrator, interval_s: float, kind: str = "match") -> None:
        super().__init__(name=f"suanwang-orchestrator-{kind}", daemon=True)
        self.orchestrator = orchestrator
        self.step = {"match": orchestrator.match_tick, "job": orchestrator.job_tick}.get(kind, orchestrator.deal_tick)
        self.interval_s = interval_s
        self.stopped = threading.Event()
        self.last_error: str | None = None

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.step()
                self.last_error = None
            except Exception as exc:  # RPC outage, executor down: retried on the next pass
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("lifecycle pass failed, retrying: %s", self.last_error, exc_info=True)
            self.stopped.wait(self.interval_s)

    def stop(self) -> None:
        self.stopped.set()


log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    w3: Web3
    probe: Web3  # one short attempt per call, for /health (`connect_probe`)
    bus: EventBus = field(default_factory=EventBus)
    metrics: Metrics = field(default_factory=Metrics)
    deployment: Deployment | None = None
    indexer_thread: IndexerThread | None = None
    orchestrator_thread: OrchestratorThread | None = None  # matching
    deal_thread: OrchestratorThread | None = None  # the deals' later steps, on the same orchestrator
    job_thread: OrchestratorThread | None = None  # the jobs' states, on the same orchestrator
    startup_error: str | None = None
    _marketplace: Marketplace | None = None
    _content: ContentStore | None = None
    _quote_orchestrator: Orchestrator | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _starter: threading.Thread | None = None

    @classmethod
    def create(cls, settings: Settings, metrics: Metrics | None = None) -> Runtime:
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            w3=connect(settings.rpc_url),
            probe=connect_probe(settings.rpc_url),
            metrics=metrics or Metrics(),
        )

    def load_deployment(self) -> Deployment:
        if self.deployment is None:
            self.deployment = Deployment.load(self.settings.deployment_file)
        return self.deployment

    def marketplace(self) -> Marketplace:
        if self._marketplace is None:
            self._marketplace = load_marketplace(self.settings.marketplace_file, self.load_deployment())
        return self._marketplace

    def content(self) -> ContentStore:
        if self._content is None:
            self._content = content_store_from_url(self.settings.ipfs_api_url, self.settings.content_dir)
        return self._content

    def make_executor(self) -> Executor:
        return self.executor_for(self.settings)

    @staticmethod
    def executor_for(settings: Settings) -> Executor:
        if settings.executor == "slurm":
            return SlurmExecutor(settings.executor_dir, slurm_conf=settings.slurm_conf)
        return LocalExecutor(settings.executor_dir)

    def make_orchestrator(self) -> Orchestrator:
        deployment = self.load_deployment()
        chain = ChainGateway.bind(self.w3, deployment, self.settings.build_dir)
        keys = Keyring.for_service(
            self.w3,
            deployment,
            chain.decoder,
            self.settings.matcher_key,
            development=self.settings.service_keys == "development",
        )
        # Said once at start, so an operator (and the agents test) can see whose keys this process holds.
        logging.getLogger("uvicorn.error").info("the service acts with the keys of: %s", ", ".join(keys.addresses))
        node_map = parse_node_map(self.settings.slurm_node_map)
        content = self.content()
        return Orchestrator(
            ctx=StepContext(self.w3, chain, self.sessions, keys, self.settings.confirmations),
            marketplace=self.marketplace(),
            executor=self.make_executor(),
            content=content,
            jobs_source=ServiceOrders(content, NodeKeys(keys, deployment.chain_id)),
            executor_nodes=lambda node: node_map.get(node.node_id),
            auto_confirm=self.settings.auto_confirm,
            matching=self.settings.matching,
            clearing_interval_s=self.settings.clearing_interval_ms / 1000,
            batch_size=self.settings.match_batch_size,
            liveness=LivenessRule.of(self.settings),
        )

    def orchestrator(self) -> Orchestrator:
        """The running orchestrator (its engine answers quotes), or one made for quotes alone."""
        if self.orchestrator_thread is not None:
            return self.orchestrator_thread.orchestrator
        if self._quote_orchestrator is None:
            self._quote_orchestrator = self.make_orchestrator()
        return self._quote_orchestrator

    def start_indexer(self) -> None:
        self._starter = threading.Thread(target=self._start_when_deployed, name="suanwang-indexer-start", daemon=True)
        self._starter.start()

    def _start_when_deployed(self) -> None:
        while not self._stop.is_set():
            try:
                deployment = self.load_deployment()
                bound = contracts(self.w3, deployment, self.settings)
                self.bus.wide = wide_integer_args({name: [dict(e) for e in c.abi] for name, c in bound.items()})
                indexer = Indexer(
                    self.w3,
                    deployment,
                    bound,
                    self.sessions,
                    confirmations=self.settings.confirmations,
                    chunk_blocks=self.settings.log_chunk_blocks,
                    on_events=self._on_events,
                )
                thread = IndexerThread(indexer, self.settings.poll_interval_s)
                thread.start()
                self.indexer_thread = thread
                if self.settings.orchestrator:
                    orchestrator = self.make_orchestrator()
                    worker = OrchestratorThread(orchestrator, self.settings.orchestrator_interval_s, "match")
                    deals = OrchestratorThread(orchestrator, self.settings.orchestrator_interval_s, "deal")
                    jobs = OrchestratorThread(orchestrator, self.settings.orchestrator_interval_s, "job")
                    for pass_thread in (worker, deals, jobs):
                        pass_thread.start()
                    self.orchestrator_thread, self.deal_thread, self.job_thread = worker, deals, jobs
                self.startup_error = None
                return
            except SuanwangError as exc:
                self.startup_error = exc.message
            except Exception as exc:  # the chain is not up yet
                self.startup_error = f"{type(exc).__name__}: {exc}"
            log.info("indexer waiting: %s", self.startup_error)
            self._stop.wait(1.0)

    def _on_events(self, events: list[Event]) -> None:
        for event in events:
            self.metrics.events.labels(event.name).inc()
        self.bus.publish(events)

    def stop(self) -> None:
        self._stop.set()
        if self._starter is not None:
            self._starter.join(timeout=5)
        for worker in (self.orchestrator_thread, self.deal_thread, self.job_thread, self.indexer_thread):
            if worker is not None:
                worker.stop()
                worker.join(timeout=10)
        if self.orchestrator_thread is not None:  # job submissions sent on receipts, before the database goes
            self.orchestrator_thread.orchestrator.close()
        self.engine.dispose()
