"""What a job is given: the resources its signed order bought, mapped onto the executor node that runs it.

Pure: the order's figures, the chain node's registered capacity and the executor node's own size in, the
executor's request out. The chain measures compute in logic mCU (compute/units.py), the executor in CPUs;
a node's mCU per CPU is its registered logic mCU over its executor CPUs, so an order for half a node's
mCU gets half its CPUs, rounded up (a job never gets less than it paid for).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from suanwang.scheduling.base import ExecutorNode

MILLI_GPU = 1000  # an order's gpuMilli is a share of one GPU in thousandths (IMarketTypes.Order)
DEFAULT_SHARDS_PER_GPU = 4  # the test cluster's shard count per GPU when the executor node does not say


@dataclass(frozen=True)
class Bought:
    """The compute an order bought, as the buyer signed it."""

    logic_mcu: int
    memory_mib: int
    gpu_count: int = 0
    gpu_milli: int = 0

    @classmethod
    def of(cls, order: Mapping[str, Any]) -> Bought:
        return cls(
            logic_mcu=int(order["logicMcu"]),
            memory_mib=int(order["memoryMib"]),
            gpu_count=int(order.get("gpuCount", 0)),
            gpu_milli=int(order.get("gpuMilli", 0)),
        )


@dataclass(frozen=True)
class Given:
    """The executor's request for a job: what Slurm's -c, --mem and --gres (or the local limits) get."""

    cpus: int
    memory_mib: int
    gpus: int = 0
    gpu_type: str | None = None
    shards: int = 0


def given_for(bought: Bought, node_logic_mcu: int, executor_node: ExecutorNode | None) -> Given:
    """The request that gives a job what `bought` paid for on a chain node registered with `node_logic_mcu`
    and run on `executor_node` (None: the executor picks; one CPU per whole node's worth is then unknown, so
    the job gets one CPU, the smallest unit an executor schedules)."""
    cpus = 1
    if executor_node is not None and node_logic_mcu > 0:
        cpus = math.ceil(bought.logic_mcu * executor_node.cpus / node_logic_mcu)
        cpus = max(1, min(cpus, executor_node.cpus))
    shards = 0
    if bought.gpu_milli:
        per_gpu = DEFAULT_SHARDS_PER_GPU
        if executor_node is not None and executor_node.shards and executor_node.gpus:
            per_gpu = executor_node.shards // executor_node.gpus
        shards = max(1, math.ceil(bought.gpu_milli * per_gpu / MILLI_GPU))
    gpu_type = executor_node.gpu_type if executor_node is not None and bought.gpu_count else None
    return Given(cpus, bought.memory_mib, bought.gpu_count, gpu_type, shards)
