"""The running service's shared parts: settings, database, chain connection, deployment and indexer.

The deployment may not exist yet when the service starts (``make up`` deploys first, but a user may
start the API on its own): the indexer thread waits for it and starts once it can be read."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from suanwang.api.live import EventBus
from suanwang.api.metrics import Metrics
from suanwang.chain.deployment import Deployment
from suanwang.chain.gateway import connect, contracts
from suanwang.chain.indexer import Indexer, IndexerThread
from suanwang.config import Settings
from suanwang.errors import SuanwangError
from suanwang.storage.db import make_engine, make_sessionmaker
from suanwang.storage.models import Event

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    w3: Web3
    bus: EventBus = field(default_factory=EventBus)
    metrics: Metrics = field(default_factory=Metrics)
    deployment: Deployment | None = None
    indexer_thread: IndexerThread | None = None
    startup_error: str | None = None
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
            metrics=metrics or Metrics(),
        )

    def load_deployment(self) -> Deployment:
        if self.deployment is None:
            self.deployment = Deployment.load(self.settings.deployment_file)
        return self.deployment

    def start_indexer(self) -> None:
        self._starter = threading.Thread(target=self._start_when_deployed, name="suanwang-indexer-start", daemon=True)
        self._starter.start()

    def _start_when_deployed(self) -> None:
        while not self._stop.is_set():
            try:
                deployment = self.load_deployment()
                indexer = Indexer(
                    self.w3,
                    deployment,
                    contracts(self.w3, deployment, self.settings),
                    self.sessions,
                    confirmations=self.settings.confirmations,
                    chunk_blocks=self.settings.log_chunk_blocks,
                    on_events=self._on_events,
                )
                thread = IndexerThread(indexer, self.settings.poll_interval_s)
                thread.start()
                self.indexer_thread = thread
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
        if self.indexer_thread is not None:
            self.indexer_thread.stop()
            self.indexer_thread.join(timeout=5)
        self.engine.dispose()
