"""What every agent shares: its key (from a file or an environment variable, never from the service), its
own SQLite store with its own index of the chain, and a loop that runs its steps, writes a heartbeat and
stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from web3 import Web3

from suanwang.agents.heartbeat import sign_heartbeat
from suanwang.chain.contracts import ChainGateway
from suanwang.chain.deployment import Deployment
from suanwang.chain.gateway import connect
from suanwang.chain.indexer import Indexer, IndexerThread
from suanwang.errors import InputError
from suanwang.lifecycle.context import StepContext
from suanwang.lifecycle.keys import Keyring, address_of
from suanwang.storage.db import make_engine, make_sessionmaker

log = logging.getLogger(__name__)


def read_key(key_file: Path | None, env_var: str) -> str:
    """The agent's private key: the first line of `key_file`, else the environment variable `env_var`."""
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise InputError(f"{key_file}: cannot read a private key ({exc})", field="key_file") from None
    else:
        key = os.environ.get(env_var, "").strip()
        if not key:
            raise InputError(f"no key: give --key-file or set {env_var}", field="key")
    try:
        address_of(key)
    except Exception:
        raise InputError("the key is not a 32-byte hex private key", field="key") from None
    return key


@dataclass
class AgentRuntime:
    """The chain, the agent's key, its store and its index."""

    role: str
    rpc_url: str
    deployment_file: Path
    build_dir: Path
    store: Path
    key: str
    poll_interval_s: float = 0.1
    service_url: str | None = None  # where the signed heartbeat goes (None: only the file next to the store)
    w3: Web3 = field(init=False)
    ctx: StepContext = field(init=False)
    deployment: Deployment = field(init=False)

    def __post_init__(self) -> None:
        self.w3 = connect(self.rpc_url)
        self.deployment = Deployment.load(self.deployment_file)
        chain = ChainGateway.bind(self.w3, self.deployment, self.build_dir)
        engine = make_engine(f"sqlite:///{self.store}")
        sessions = make_sessionmaker(engine)
        self.ctx = StepContext(self.w3, chain, sessions, Keyring(self.w3, [self.key], chain.decoder))
        self.indexer = IndexerThread(
            Indexer(self.w3, self.deployment, chain.raw, sessions, confirmations=0), self.poll_interval_s
        )
        self.address = address_of(self.key)
        self.heartbeat_file = self.store.with_suffix(".heartbeat.json")
        self.last_sent = 0.0


def run_agent(
    runtime: AgentRuntime, steps: Sequence[Callable[[], None]], interval_s: float, once: bool = False
) -> None:
    """Indexes the chain into the agent's store and runs `steps` in turn until SIGINT/SIGTERM; a failed
    step is logged and retried on the next pass. Writes a heartbeat file after every pass."""
    stopped = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopped.set())
    runtime.indexer.start()
    log.info("%s agent for %s: store %s", runtime.role, runtime.address, runtime.store)
    passes = 0
    try:
        while not stopped.is_set():
            error = None
            # The block the steps of this pass see: a heartbeat says the agent has acted on the chain up to
            # there (read after the steps, a freshly restarted agent would claim blocks it has not acted on).
            seen = runtime.ctx.indexed_block()
            for step in steps:
                try:
                    step()
                except Exception as exc:  # RPC outage, executor down: retried on the next pass
                    error = f"{type(exc).__name__}: {exc}"
                    log.warning("%s step failed, retrying: %s", runtime.role, error, exc_info=True)
            passes += 1
            _heartbeat(runtime, passes, seen, error)
            if once:
                break
            stopped.wait(interval_s)
    finally:
        runtime.indexer.stop()
        runtime.indexer.join(timeout=10)


HEARTBEAT_EVERY_S = 5.0


def _heartbeat(runtime: AgentRuntime, passes: int, indexed_block: int | None, error: str | None) -> None:
    """The heartbeat file next to the store after every pass; the signed heartbeat to the service every
    HEARTBEAT_EVERY_S (a service that does not answer is logged, never fatal)."""
    document = {
        "role": runtime.role,
        "address": runtime.address,
        "at": int(time.time()),
        "passes": passes,
        "indexed_block": indexed_block,
        "last_error": error,
    }
    tmp = runtime.heartbeat_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(document), encoding="utf-8")
    tmp.replace(runtime.heartbeat_file)
    if runtime.service_url is None or time.monotonic() - runtime.last_sent < HEARTBEAT_EVERY_S:
        return
    runtime.last_sent = time.monotonic()
    try:
        body = sign_heartbeat(
            {k: document[k] for k in ("role", "address", "at", "indexed_block", "last_error")}, runtime.key
        )
        response = httpx.post(runtime.service_url.rstrip("/") + "/api/agents/heartbeat", json=body, timeout=5)
        if response.status_code >= 400:
            log.warning("the service refused the heartbeat: %s", response.text[:300])
    except httpx.HTTPError as exc:
        log.warning("heartbeat not sent: %s", exc)
