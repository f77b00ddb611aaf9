"""A run's plan: its orders, their jobs' outcomes, and the faults with their times, all from the seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests.support.slurm import NODES

CHAIN_FAULTS = ("reorg", "rollback")
AGENT_FAULTS = ("provider_agent_kill", "operator_agent_kill")
OTHER_FAULTS = ("rpc_outage", "ipfs_outage", "service_kill", "slurm_job_kill", "slurm_node_down", *AGENT_FAULTS)
KINDS = CHAIN_FAULTS + OTHER_FAULTS
HEALED = ("rpc_outage", "ipfs_outage", "service_kill", "slurm_node_down", *AGENT_FAULTS)  # undone after hold_s
# The provider's chain node is backed by the whole cluster (no node map): Slurm places each job.
SLURM_NODES = tuple(spec.split(":")[0] for spec in NODES)
CHAOS_S = 6.0  # faults strike within this many seconds of the orders' submission


@dataclass(frozen=True)
class Fault:
    at_s: float
    kind: str
    hold_s: float = 0.0  # how long an outage lasts / a killed process stays down
    depth: int = 0  # reorgs and rollbacks
    resend: bool = False  # reorgs and rollbacks: the dropped transactions are sent again
    pick: float = 0.0  # which running job a job kill hits (a fraction of the list)


@dataclass(frozen=True)
class Plan:
    seed: int
    confirmations: int
    job_seconds: tuple[float, ...]  # one job per order: how long it runs
    job_exit: tuple[int, ...]  # and its exit code (non-zero: a Slurm job failure)
    faults: tuple[Fault, ...]

    @property
    def orders(self) -> int:
        return len(self.job_seconds)


def plan_run(seed: int) -> Plan:
    """Everything random about a run, from its seed alone."""
    rng = random.Random(seed)
    confirmations = rng.randint(1, 3)
    orders = rng.randint(20, 24)
    job_seconds = tuple(round(rng.uniform(0.05, 0.4), 2) for _ in range(orders))
    job_exit = tuple(3 if rng.random() < 0.12 else 0 for _ in range(orders))
    faults = []
    for number in range(rng.randint(4, 7)):
        kind = rng.choice(CHAIN_FAULTS) if number == 0 else rng.choice(KINDS)  # a chain fault in every run
        deep = rng.random() < 0.5
        faults.append(
            Fault(
                at_s=round(rng.uniform(0.2, CHAOS_S), 2),
                kind=kind,
                hold_s=round(rng.uniform(0.3, 2.5), 2),
                depth=rng.randint(confirmations + 1, confirmations + 3) if deep else rng.randint(1, confirmations),
                resend=rng.random() < 0.5,
                pick=rng.random(),
            )
        )
    return Plan(seed, confirmations, job_seconds, job_exit, tuple(sorted(faults, key=lambda f: f.at_s)))


def fault_label(fault: Fault, confirmations: int) -> str:
    """The kind as counted: chain faults split by depth against the confirmation depth."""
    if fault.kind in CHAIN_FAULTS:
        return f"{fault.kind}_{'deep' if fault.depth > confirmations else 'shallow'}"
    return fault.kind
