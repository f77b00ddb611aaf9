"""The market of a fault run as separate processes, each of which the campaign can break and mend: the
matcher service (the matcher's key only), the provider's, the buyer's and each paid transit operator's
agent (each its own key and store), the chain behind an RPC proxy, content behind a Kubo proxy, and the
one-host Slurm cluster the provider's agent runs its jobs on."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from suanwang.devstack import AgentProcess, ApiServer, StackError, free_port, rpc
from tests.backend.content.fake_kubo import FakeKubo, serve
from tests.backend.lifecycle.test_restarts import server
from tests.faults.plan import SLURM_NODES
from tests.faults.proxy import TcpProxy
from tests.support.slurm import SlurmCluster
from tests.support.stack import BUILD_DIR, Chain

MINE_EVERY_S = 0.25  # a block producer: confirmations need blocks after the last transaction
START_ATTEMPTS = 3  # `suanwang serve` may take more than ApiServer's 30 s to answer on a loaded machine


class Stack:
    def __init__(
        self,
        chain: Chain,
        cluster: SlurmCluster,
        folder: Path,
        marketplace: Path,
        confirmations: int,
        keys: dict[str, str],
    ) -> None:
        """`keys`: the agents to run, by name ("provider", "buyer", "operator-<domain>"), and their keys."""
        self.chain, self.cluster, self.folder = chain, cluster, folder
        self.rpc_proxy = TcpProxy(chain.anvil.port).start()
        self._kubo_cm = contextlib.contextmanager(serve)(FakeKubo())
        kubo = self._kubo_cm.__enter__()
        self.kubo_proxy = TcpProxy(int(kubo.url.rsplit(":", 1)[1])).start()
        self._template = server(chain, folder, marketplace)
        self._template.env.update(
            SUANWANG_RPC_URL=self.rpc_proxy.url,
            SUANWANG_IPFS_API_URL=self.kubo_proxy.url,
            SUANWANG_CONFIRMATIONS=str(confirmations),
            SUANWANG_SERVICE_KEYS="matcher",  # the sellers, operators and the buyer act through their agents
        )
        self.service: ApiServer | None = None
        # Every agent reaches the chain and the content through the same proxies as the service: an outage
        # cuts them all. The provider's agent reads the buyers' job specifications from the content store
        # the service wrote them to (Kubo here; SUANWANG_CONTENT_DIR when there is no Kubo).
        common = {
            "SUANWANG_RPC_URL": self.rpc_proxy.url,
            "SUANWANG_DEPLOYMENT_FILE": str(chain.deployment_file),
            "SUANWANG_BUILD_DIR": str(BUILD_DIR),
            "SUANWANG_CONTENT_DIR": self._template.env["SUANWANG_CONTENT_DIR"],
            "SUANWANG_IPFS_API_URL": self.kubo_proxy.url,
        }
        self.agents: dict[str, AgentProcess] = {}
        for name, key in keys.items():
            role = name.split("-")[0]
            args, env = ["--store", str(self.store_of(name))], dict(common)
            if role == "provider":
                args += ["--executor", "slurm", "--executor-dir", str(self.executor_dir)]
                env["SUANWANG_SLURM_CONF"] = str(cluster.slurm_conf)
            self.agents[name] = AgentProcess(role, key, args, env, folder / f"{name}.log")
        self.down: set[str] = set()  # agents a fault killed and has not restarted yet
        self._mining = threading.Event()
        self._miner = threading.Thread(target=self._mine, name="fault-miner", daemon=True)
        # Anvil (1.7.1) loses blocks for good when anvil_reorg or anvil_rollback runs while it mines one
        # (eth_getBlockByNumber then returns null for a number below the head: measured, a hole in a few
        # hundred rollbacks raced with evm_mine, none when they take turns). A real node's reorg is atomic,
        # so while faults are injected the blocks come only from this producer, under this lock, which a
        # reorg or rollback holds too: the processes' transactions wait in the mempool for the next block.
        self.block_lock = threading.Lock()

    @property
    def executor_dir(self) -> Path:
        return self.folder / "provider-executor"

    def store_of(self, agent: str) -> Path:
        return self.folder / f"{agent}.db"

    def heartbeat_of(self, agent: str) -> Path:
        return self.store_of(agent).with_suffix(".heartbeat.json")

    # -- the service ----------------------------------------------------------------------------------
    def start_service(self) -> None:
        # Each start takes a fresh port: a killed process's port may linger.
        for attempt in range(START_ATTEMPTS):
            service = ApiServer(free_port(), dict(self._template.env), log_file=self.folder / "service.log")
            try:
                self.service = service.start()
                return
            except StackError:
                service.stop()  # a start that did not answer in time is never left running
                if attempt == START_ATTEMPTS - 1:
                    raise

    def kill_service(self) -> None:
        assert self.service is not None and self.service.process is not None
        self.service.process.send_signal(signal.SIGKILL)
        self.service.process.wait()
        self.service = None

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    @property
    def url(self) -> str:
        assert self.service is not None
        return self.service.url

    # -- the agents -----------------------------------------------------------------------------------
    def start_agents(self) -> None:
        for agent in self.agents.values():
            agent.start()

    def kill_agent(self, name: str) -> None:
        """SIGKILL, as a crash: the agent stays down until `restart_agent`. Its last heartbeat goes with
        it, so `idle` waits for the restarted process's first pass, not the dead one's."""
        self.down.add(name)
        self.agents[name].kill()
        self.heartbeat_of(name).unlink(missing_ok=True)

    def restart_agent(self, name: str) -> None:
        """The same agent again, on the same store and executor state."""
        self.agents[name].start()
        self.down.discard(name)

    def exited_agents(self) -> list[str]:
        """Agents that stopped on their own (no fault killed them), with the end of their logs."""
        return [
            f"{name} agent exited: {agent.log_file.read_text(errors='replace')[-1500:]}"
            for name, agent in self.agents.items()
            if name not in self.down and not agent.alive()
        ]

    def idle(self, block: int) -> bool:
        """No job is pending or running, and every agent is up and has run a pass over its index of the
        chain up to `block`: what is not done by then will not be without a change (a deadline passed)."""
        if self.live_jobs():
            return False
        for name, agent in self.agents.items():
            try:
                indexed = json.loads(self.heartbeat_of(name).read_text())["indexed_block"]
            except (OSError, ValueError, KeyError):
                return False
            if name in self.down or not agent.alive() or indexed is None or indexed < block:
                return False
        return True

    def stop_agents(self) -> None:
        for agent in self.agents.values():
            agent.stop()

    # -- blocks ---------------------------------------------------------------------------------------
    def start_mining(self) -> None:
        rpc(self.chain.anvil.url, "evm_setAutomine", [False])
        self._mining.set()
        if not self._miner.is_alive():
            self._miner.start()

    def stop_mining(self) -> None:
        self._mining.clear()
        with self.block_lock:  # the producer's last block is done: a transaction mines itself again
            rpc(self.chain.anvil.url, "evm_setAutomine", [True])

    def _mine(self) -> None:
        while True:
            self._mining.wait()
            with self.block_lock, contextlib.suppress(Exception):
                if self._mining.is_set():
                    rpc(self.chain.anvil.url, "evm_mine")
            time.sleep(MINE_EVERY_S)

    # -- Slurm ----------------------------------------------------------------------------------------
    def slurm(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            env={**os.environ, "SLURM_CONF": str(self.cluster.slurm_conf)},
            capture_output=True,
            text=True,
            timeout=30,
        )

    def live_jobs(self) -> list[str]:
        """The cluster's pending and running jobs."""
        return sorted(self.slurm("squeue", "-h", "-t", "PD,R", "-o", "%i").stdout.split(), key=int)

    def close(self) -> None:
        self.stop_mining()
        self.stop_service()
        self.stop_agents()
        self.slurm("scancel", "--full", "--user=root")
        for node in SLURM_NODES:
            self.slurm("scontrol", "update", f"nodename={node}", "state=resume")
        self.rpc_proxy.stop()
        self.kubo_proxy.stop()
        self._kubo_cm.__exit__(None, None, None)
