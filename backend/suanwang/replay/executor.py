"""The replay's executor: the `Executor` the lifecycle's provider steps drive, with jobs that run on the
replay's simulated clock instead of a machine. A job runs from its submission for its time limit (the
deal's duration, which the scenario drew) and then has run to its end; a job on a node the scenario fails
is lost from the failure on, so its deal is never completed and times out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from suanwang.errors import InfeasibleError, InputError, NotFoundError
from suanwang.scheduling.base import ExecutorNode, JobAccounting, JobSpec, JobState, JobStatus, validate_spec


@dataclass
class SimulatedJob:
    spec: JobSpec
    submitted_at: int  # the clock's second
    cancelled_at: int | None = None


class SimulatedExecutor:
    """Jobs on the replay's nodes, timed by `clock` (the chain time of the round)."""

    def __init__(self, clock: Callable[[], int], nodes: Callable[[], Sequence[str]]) -> None:
        self.clock = clock
        self._nodes = nodes  # the names of the nodes registered so far
        self._jobs: dict[str, SimulatedJob] = {}  # by job id, which is the spec's key
        self._failed: dict[str, int] = {}  # node -> when it failed
        self._lock = threading.Lock()  # ProviderJobs submits from a pool of threads

    def fail_node(self, node: str) -> None:
        """The node fails now: its jobs are lost, and it takes no more."""
        with self._lock:
            self._failed.setdefault(node, self.clock())

    def submit(self, spec: JobSpec) -> str:
        validate_spec(spec)
        if spec.time_limit_s is None:
            raise InputError("a simulated job runs for its time limit; give time_limit_s", field="time_limit_s")
        if spec.node is not None and spec.node not in self._nodes():
            raise NotFoundError(f"no node {spec.node!r} in the replay", field="node")
        with self._lock:
            if spec.key in self._jobs:
                return spec.key
            if spec.node in self._failed:
                raise InfeasibleError(f"node {spec.node} has failed", field="node")
            self._jobs[spec.key] = SimulatedJob(spec, self.clock())
        return spec.key

    def status(self, job_id: str) -> JobStatus:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no simulated job {job_id!r}", field="job_id")
        now = self.clock()
        start = job.submitted_at
        end = start + int(job.spec.time_limit_s or 0)
        failed = self._failed.get(job.spec.node or "")
        node = job.spec.node
        if job.cancelled_at is not None and job.cancelled_at < end:
            return JobStatus(JobState.CANCELLED, None, start, job.cancelled_at, "cancelled", node=node)
        if failed is not None and failed < end:
            return JobStatus(JobState.LOST, None, start, None, f"node {node} failed at {failed}", node=node)
        if now >= end:
            return JobStatus(JobState.COMPLETED, 0, start, end, node=node, ran_to_end=True)
        return JobStatus(JobState.RUNNING, None, start, node=node)

    def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        return {job_id: self.status(job_id) for job_id in job_ids}

    def accounting(self, job_id: str) -> JobAccounting | None:
        """Simulated jobs run nothing, so nothing is metered."""
        if job_id not in self._jobs:
            raise NotFoundError(f"no simulated job {job_id!r}", field="job_id")
        return None

    def cancel(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None and not self.status(job_id).state.is_final:
            job.cancelled_at = self.clock()

    def find(self, key: str) -> str | None:
        return key if key in self._jobs else None

    def nodes(self) -> list[ExecutorNode]:
        return [ExecutorNode(name, cpus=1, memory_mib=1024) for name in self._nodes()]
