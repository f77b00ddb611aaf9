"""The injector: applies a plan's faults to a running market at their planned times and heals them."""

from __future__ import annotations

import contextlib
import threading
import time

from hexbytes import HexBytes

from suanwang.devstack import rpc
from tests.faults.checks import RunReport
from tests.faults.plan import CHAIN_FAULTS, HEALED, SLURM_NODES, Fault, Plan, fault_label
from tests.faults.stack import Stack


class Injector:
    """Applies a plan's faults to a stack and heals them; counts what it actually did."""

    def __init__(self, stack: Stack, plan: Plan, floor_block: int, report: RunReport) -> None:
        self.stack, self.plan, self.floor, self.report = stack, plan, floor_block, report
        self.broken: set[str] = set()  # resources now down: a second fault on them is skipped
        self._restart: threading.Thread | None = None
        self._restart_error: Exception | None = None

    def run(self, started: float) -> None:
        """Faults at their planned times, each healed after its hold; returns with everything healed."""
        events: list[tuple[float, int, str, Fault]] = []
        for index, fault in enumerate(self.plan.faults):
            events.append((fault.at_s, index, "apply", fault))
        events.sort(key=lambda e: (e[0], e[1]))
        heals: list[tuple[float, int, Fault]] = []
        while events or heals:
            next_apply = events[0][0] if events else float("inf")
            next_heal = min(heals, key=lambda h: h[0])[0] if heals else float("inf")
            at = min(next_apply, next_heal)
            delay = started + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if next_heal <= next_apply:
                heal = min(heals, key=lambda h: h[0])
                heals.remove(heal)
                self.heal(heal[2])
                self.report.trace.append(f"chaos {time.monotonic() - started:5.1f} s {heal[2].kind} healed")
                continue
            _, index, _, fault = events.pop(0)
            applied = self.apply(fault)
            done = "applied" if applied else "skipped"
            self.report.trace.append(f"chaos {time.monotonic() - started:5.1f} s {fault.kind} {done}")
            if applied:
                self.report.faults[fault_label(fault, self.plan.confirmations)] += 1
                if fault.kind in HEALED:
                    heals.append((fault.at_s + fault.hold_s, index, fault))
        self.wait_for_restart()

    def apply(self, fault: Fault) -> bool:
        stack = self.stack
        if fault.kind in CHAIN_FAULTS:
            return self._reorg(fault)
        if fault.kind in self.broken:
            return False
        if fault.kind == "rpc_outage":
            stack.rpc_proxy.cut()
        elif fault.kind == "ipfs_outage":
            stack.kubo_proxy.cut()
        elif fault.kind == "service_kill":
            stack.kill_service()
        elif fault.kind in ("provider_agent_kill", "operator_agent_kill"):
            agents = self.agents_of(fault)
            if not agents:
                return False
            for name in agents:
                stack.kill_agent(name)
        elif fault.kind == "slurm_node_down":
            node = self.node_of(fault)
            down = stack.slurm("scontrol", "update", f"nodename={node}", "state=down", "reason=fault-campaign")
            if down.returncode != 0:
                raise RuntimeError(f"could not set {node} down: {down.stderr}")
        elif fault.kind == "slurm_job_kill":
            live = stack.live_jobs()
            if not live:
                return False
            stack.slurm("scancel", live[int(fault.pick * len(live))])
            return True
        self.broken.add(fault.kind)
        return True

    def heal(self, fault: Fault) -> None:
        stack = self.stack
        if fault.kind == "rpc_outage":
            stack.rpc_proxy.restore()
        elif fault.kind == "ipfs_outage":
            stack.kubo_proxy.restore()
        elif fault.kind == "service_kill":
            # In the background: the service may not answer until the chain is back, and the heal of an
            # RPC outage planned meanwhile must not wait behind the restart.
            self._restart = threading.Thread(target=self._restart_service, name="fault-restart", daemon=True)
            self._restart.start()
            return  # still broken until the restart is done
        elif fault.kind == "slurm_node_down":
            stack.slurm("scontrol", "update", f"nodename={self.node_of(fault)}", "state=resume")
        elif fault.kind in ("provider_agent_kill", "operator_agent_kill"):
            for name in self.agents_of(fault):
                stack.restart_agent(name)
        self.broken.discard(fault.kind)

    def _restart_service(self) -> None:
        try:
            self.stack.start_service()
        except Exception as exc:
            self._restart_error = exc
        finally:
            self.broken.discard("service_kill")

    def wait_for_restart(self) -> None:
        if self._restart is not None:
            self._restart.join()
        if self._restart_error is not None:
            raise self._restart_error

    def agents_of(self, fault: Fault) -> list[str]:
        """The agent an agent kill hits: the provider's, or one of the operators' (picked)."""
        role = fault.kind.removesuffix("_agent_kill")
        named = sorted(name for name in self.stack.agents if name.split("-")[0] == role)
        return [named[int(fault.pick * len(named))]] if named else []

    @staticmethod
    def node_of(fault: Fault) -> str:
        return SLURM_NODES[int(fault.pick * len(SLURM_NODES))]

    def _reorg(self, fault: Fault) -> bool:
        with self.stack.block_lock:  # never while a block is mined (Stack.block_lock)
            return self._reorg_now(fault)

    def _reorg_now(self, fault: Fault) -> bool:
        url = self.stack.chain.anvil.url
        w3 = self.stack.chain.w3
        head = w3.eth.block_number
        depth = min(fault.depth, head - self.floor)
        if depth < 1 or (fault.depth > self.plan.confirmations) != (depth > self.plan.confirmations):
            return False  # too close to the set-up blocks for this depth
        dropped: list[str] = []
        if fault.resend:
            for number in range(head - depth + 1, head + 1):
                for tx_hash in w3.eth.get_block(number)["transactions"]:
                    raw = rpc(url, "eth_getRawTransactionByHash", [HexBytes(tx_hash).to_0x_hex()])
                    dropped.append(str(raw))
        if fault.kind == "reorg":
            rpc(url, "anvil_reorg", [depth, []])
        else:
            rpc(url, "anvil_rollback", [depth])
        for raw in dropped:  # as a node returns the transactions of dropped blocks to its mempool
            with contextlib.suppress(Exception):
                rpc(url, "eth_sendRawTransaction", [raw])
        return True
