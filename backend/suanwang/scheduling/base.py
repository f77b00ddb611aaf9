"""The executor interface: how a matched order becomes a running job on a node, and how its outcome comes back.

An executor runs jobs on executor-side nodes (a local machine, a Slurm cluster's nodes). Every job carries a
caller-chosen idempotency key (``lease-31337-42``): submitting the same key twice, even after the service
restarted, returns the first job's id and never starts a second job. Job state lives on disk in a directory
the service owns, so an executor object created after a restart answers ``status`` like the one before it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from suanwang.errors import InputError

KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class JobState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"
    """The executor can no longer say what happened (no process, no scheduler record, no exit file)."""

    @property
    def is_final(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING)


class NodeState(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    DRAIN = "drain"


@dataclass(frozen=True)
class JobSpec:
    """What to run, where, with which resources.

    ``command`` is either an argv list (run without a shell) or a shell script text (run by ``/bin/bash``).
    ``node`` is the executor-side node name the matcher chose (``n2``); ``features`` are node features that
    must all be present (``gpu_a100``); either, both or neither may be given.
    """

    key: str
    command: list[str] | str
    node: str | None = None
    features: tuple[str, ...] = ()
    cpus: int = 1
    memory_mib: int = 256
    gpus: int = 0
    """Whole GPUs (Slurm GRES ``gpu``)."""
    gpu_type: str | None = None
    """The type of the whole GPUs (``a100``); None = any type. Shards have no type in Slurm."""
    shards: int = 0
    """A share of one GPU as Slurm ``shard`` GRES: the node's shards split evenly over its GPUs, and a share
    is taken from one GPU. Shards schedule and account a GPU share; they fence nothing on the GPU."""
    time_limit_s: int | None = None
    workdir: str | None = None
    """Working directory of the job; by default a directory per key under the executor's state directory."""
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    exit_code: int | None = None
    started_at: float | None = None
    """Unix time in seconds."""
    finished_at: float | None = None
    reason: str = ""
    """Why the job is pending, failed, cancelled or lost, in words (empty when there is nothing to say)."""
    result_path: str | None = None
    """The file holding the job's output bytes (its standard output)."""
    node: str | None = None
    """The node the job runs or ran on, when known."""
    ran_to_end: bool = False
    """The command ran and ended by itself, whatever its exit code, or was stopped at its time limit (it had
    the whole time bought): what it did is delivered. Not so for a job cancelled, lost, or stopped by a
    signal from elsewhere (a node failure, an administrator)."""


@dataclass(frozen=True)
class JobAccounting:
    """What a finished job was given and used, as the executor metered it (Slurm: sacct; local: rusage).

    ``alloc_tres`` is what was allocated, in Slurm's TRES names: ``cpu``, ``mem`` (bytes), ``node``,
    ``gres/gpu``, ``gres/shard`` (only those allocated). ``max_rss_bytes`` is the peak resident memory of
    the job's largest process (Slurm samples it every JobAcctGatherFrequency seconds, so a step shorter
    than that may show less); ``cpu_time_s`` is user plus system time of all its processes.
    """

    state: JobState
    scheduler_state: str
    """The executor's own word for the end: Slurm's state (``COMPLETED``, ``OUT_OF_MEMORY``, ...), or for a
    local job ``exited`` / ``signaled``."""
    exit_code: int | None
    signal: int | None
    elapsed_s: float
    cpu_time_s: float
    max_rss_bytes: int | None
    alloc_tres: Mapping[str, int]
    node: str | None
    started_at: float | None
    """Unix time in seconds."""
    finished_at: float | None


@dataclass(frozen=True)
class ExecutorNode:
    name: str
    cpus: int
    memory_mib: int
    gpus: int = 0
    gpu_type: str | None = None
    features: tuple[str, ...] = ()
    shards: int = 0
    """GPU shares (Slurm ``shard`` GRES) the node offers, spread evenly over its GPUs."""
    state: NodeState = NodeState.UP
    reason: str = ""


@runtime_checkable
class Executor(Protocol):
    """Runs jobs on executor-side nodes. Implementations: ``LocalExecutor``, ``SlurmExecutor``."""

    def submit(self, spec: JobSpec) -> str:
        """Starts the job unless one with ``spec.key`` exists; returns the job id (the existing one if so).

        Raises ``InputError`` for a malformed spec and ``InfeasibleError`` / ``NotFoundError`` when no node
        of the executor can run it; ``field`` names the spec field at fault.
        """
        ...

    def status(self, job_id: str) -> JobStatus:
        """The job's state; raises ``NotFoundError`` for an id this executor never issued."""
        ...

    def cancel(self, job_id: str) -> None:
        """Stops the job (a no-op for a finished one); its state becomes ``cancelled``."""
        ...

    def find(self, key: str) -> str | None:
        """The id of the job submitted with ``key``, or None."""
        ...

    def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """``status`` of many jobs at once (one scheduler query where the scheduler allows it)."""
        ...

    def nodes(self) -> list[ExecutorNode]:
        """The executor-side nodes, so the marketplace can map its chain nodes onto them."""
        ...

    def accounting(self, job_id: str) -> JobAccounting | None:
        """What the finished job was allocated and used; None while the record is not final yet (poll).

        Raises ``NotFoundError`` for an id this executor never issued.
        """
        ...


def validate_spec(spec: JobSpec) -> None:
    """Checks what every executor needs; raises ``InputError`` naming the field."""
    validate_key(spec.key)
    if isinstance(spec.command, str):
        if not spec.command.strip():
            raise InputError("command is an empty script; give a shell script text or an argv list", field="command")
    elif not spec.command or not all(isinstance(a, str) for a in spec.command):
        raise InputError(f"command must be a non-empty list of strings, got {spec.command!r}", field="command")
    for name, value, minimum in (
        ("cpus", spec.cpus, 1),
        ("memory_mib", spec.memory_mib, 1),
        ("gpus", spec.gpus, 0),
        ("shards", spec.shards, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}", field=name)
    if spec.gpu_type is not None and spec.gpus == 0:
        raise InputError(
            f"gpu_type {spec.gpu_type!r} given with gpus=0; ask for at least one whole GPU (shards have no type "
            "in Slurm: choose a node or a feature such as gpu_a100 for them)",
            field="gpu_type" if spec.shards else "gpus",
        )
    if spec.gpu_type is not None and not re.match(r"^[A-Za-z0-9_.-]{1,64}$", spec.gpu_type):
        raise InputError(f"gpu_type {spec.gpu_type!r} must be a GPU type name such as 'a100'", field="gpu_type")
    if spec.time_limit_s is not None and (not isinstance(spec.time_limit_s, int) or spec.time_limit_s < 1):
        raise InputError(f"time_limit_s must be a positive integer, got {spec.time_limit_s!r}", field="time_limit_s")
    for name in spec.env:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise InputError(f"environment variable name {name!r} is not valid", field=f"env.{name}")


def validate_key(key: str) -> None:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise InputError(
            f"key {key!r} must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (it names files and Slurm jobs), e.g. 'lease-31337-42'",
            field="key",
        )
