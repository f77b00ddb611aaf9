"""The provider's follow and complete steps: the jobs' states from the executor into the store (a job is
seen running as soon as the executor says so), the result document of a job that ran to its end into the
content store, and `complete(cid)` for its deal, whatever the job's exit code: the buyer's job ran on
the bought resources, so the deal is delivered and paid for the time used.

The result document carries the executor's accounting record (Slurm's sacct, or the local launcher's
rusage): what the job was given and what it used, as the scheduler metered it. A job's outcome therefore
comes from accounting, which outlives the agent, and not from a file the agent had to write."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suanwang.content import ContentStore
from suanwang.lifecycle.context import StepContext, now
from suanwang.lifecycle.outbox import Outbox
from suanwang.privacy.documents import MAX_RESULT_BYTES, sealer
from suanwang.scheduling.base import Executor, JobAccounting, JobState, JobStatus
from suanwang.states import DealCall
from suanwang.storage.repositories import Repositories

ACCOUNTING_WAIT_S = 60.0  # slurmdbd has a job's record within a second of its end (../shared/docs/SLURM.md)
TAIL_BYTES = 4096  # of standard output and error, readable in the result without fetching the output
MIB = 1024**2


@dataclass
class FollowJobs:
    ctx: StepContext
    executor: Executor
    content: ContentStore

    def tick(self) -> None:
        with self.ctx.sessions() as session:
            jobs = Repositories(session).jobs.open()
        statuses = self.executor.statuses([job.job_id for job in jobs]) if jobs else {}
        # Only the jobs whose state moved are written (a pass sees every pending job, most unchanged).
        moved = [
            (job, status)
            for job in jobs
            if ((status := statuses[job.job_id]).state.value, status.exit_code, status.reason)
            != (job.state, job.exit_code, job.reason)
        ]
        for job, status in moved:
            cid = None
            if status.ran_to_end:
                record = self.executor.accounting(job.job_id)
                if record is None and self._awaits_accounting(status):
                    continue  # the scheduler's record is written seconds after the job ends: a later pass
                cid = self._result(job.deal_id, status, job.sealed_to, record)
            with self.ctx.sessions.begin() as session:
                row = Repositories(session).jobs.get(job.deal_id)
                if row is None or row.job_id != job.job_id:
                    continue  # an undone match's job, dropped (or replaced by the next match's) meanwhile
                row.state, row.exit_code, row.reason, row.updated_at = (
                    status.state.value,
                    status.exit_code,
                    status.reason,
                    now(),
                )
                row.result_cid = cid or row.result_cid
                # Running, or completed before a pass saw it run (a job cancelled while pending has an
                # exit code and a start time from Slurm, so neither says it ran).
                if row.running_at is None and status.state in (JobState.RUNNING, JobState.COMPLETED):
                    row.running_at = row.updated_at

    def _awaits_accounting(self, status: JobStatus) -> bool:
        """Whether to wait for the executor's record of a finished job: only where it keeps one, and not
        forever (a record lost with the accounting database must not hold the deal's completion)."""
        if not getattr(self.executor, "has_accounting", False):  # Slurm says; local records always exist
            return False
        ended = status.finished_at or time.time()
        return time.time() - ended < ACCOUNTING_WAIT_S

    def _result(
        self,
        deal_id: str,
        status: JobStatus,
        sealed_to: list[dict[str, Any]] | None = None,
        record: JobAccounting | None = None,
    ) -> str:
        """The result document of a job that ran to its end: how it ended (exit code, reason), what it was
        given and used by the executor's accounting, the tails of its standard output and error, and the
        CID of its whole output (its standard output, up to MAX_RESULT_BYTES, the limit the quote states:
        what still fits the store once sealed; above it the output is cut there and the document says
        so). The output and the document are each sealed to `sealed_to` (the buyer's result key and the
        node's, from the specification; docs/content.md, Privacy), so the store holds only ciphertext."""
        seal = sealer(sealed_to)
        output = _read(status.result_path, MAX_RESULT_BYTES + 1)
        errors = _tail(str(Path(status.result_path).with_suffix(".err")) if status.result_path else None, TAIL_BYTES)
        kept = output[:MAX_RESULT_BYTES]
        document = {
            "deal": deal_id,
            "exit_code": record.exit_code if record is not None and record.exit_code is not None else status.exit_code,
            "reason": status.reason or None,
            "given": given_of(record),
            "accounting": accounting_of(record),
            "stdout_tail": kept[-TAIL_BYTES:].decode("utf-8", "replace"),
            "stderr_tail": errors[-TAIL_BYTES:].decode("utf-8", "replace"),
            "output": self.content.put(seal(kept)),
            "output_bytes": len(kept),
            "output_truncated": len(output) > len(kept),
        }
        return self.content.put(seal(json.dumps(document, sort_keys=True).encode()))


def _read(path: str | None, limit: int) -> bytes:
    """The first `limit` bytes of a job's file; nothing when the command wrote none."""
    if not path:
        return b""
    try:
        with open(path, "rb") as file:
            return file.read(limit)
    except FileNotFoundError:  # the command wrote nothing (it could not even start)
        return b""


def _tail(path: str | None, size: int) -> bytes:
    """The last `size` bytes of a job's file, read from there (a job may write gigabytes to it)."""
    if not path:
        return b""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - size))
            return file.read(size)
    except FileNotFoundError:
        return b""


def given_of(record: JobAccounting | None) -> dict[str, Any] | None:
    """What the executor allocated to the job, from its own record (Slurm's AllocTRES): the CPUs, memory,
    whole GPUs and GPU shards the buyer can check against what it bought."""
    if record is None:
        return None
    tres = record.alloc_tres
    gpu_types = [name.split(":", 2)[1] for name in tres if name.startswith("gres/gpu:")]
    return {
        "cpus": int(tres.get("cpu", 0)),
        "memory_mib": int(tres.get("mem", 0)) // MIB,
        "gpus": int(tres.get("gres/gpu", 0)),
        "gpu_type": gpu_types[0] if gpu_types else None,
        "shards": int(tres.get("gres/shard", 0)),
    }


def accounting_of(record: JobAccounting | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "state": record.scheduler_state,
        "exit_code": record.exit_code,
        "signal": record.signal,
        "elapsed_s": record.elapsed_s,
        "cpu_time_s": record.cpu_time_s,
        "max_rss_bytes": record.max_rss_bytes,
        "alloc_tres": dict(record.alloc_tres),
        "node": record.node,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    }


@dataclass
class CompleteJobs:
    ctx: StepContext
    outbox: Outbox

    def tick(self) -> None:
        """`complete(cid)` for each started deal of ours whose job ran to its end (it has a result)."""
        with self.ctx.sessions() as session:
            done = Repositories(session).deals.delivered(self.ctx.keys.addresses)
        for deal, cid in done:
            seller = self.ctx.keys.for_address(deal.seller)
            if seller is not None and cid:
                self.outbox.send(seller, DealCall.COMPLETE, deal.deal, cid)
