"""Job executors behind one interface: ``Executor`` (base), ``LocalExecutor`` and ``SlurmExecutor``."""

from suanwang.scheduling.base import (
    Executor,
    ExecutorNode,
    JobAccounting,
    JobSpec,
    JobState,
    JobStatus,
    NodeState,
)
from suanwang.scheduling.local import LocalExecutor
from suanwang.scheduling.slurm import SchedulerUnavailableError, SlurmExecutor

__all__ = [
    "Executor",
    "ExecutorNode",
    "JobAccounting",
    "JobSpec",
    "JobState",
    "JobStatus",
    "LocalExecutor",
    "NodeState",
    "SchedulerUnavailableError",
    "SlurmExecutor",
]
