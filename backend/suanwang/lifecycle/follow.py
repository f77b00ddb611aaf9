"""The provider's follow and complete steps: the jobs' states from the executor into the store (a job is
seen running as soon as the executor says so), the result document of a job that ran to its end into the
content store, and `complete(cid)` for its deal, whatever the job's exit code: the buyer's job ran on
the bought resources, so the deal is delivered and paid for the time used."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suanwang.content import ContentStore
from suanwang.lifecycle.context import StepContext, now
from suanwang.lifecycle.outbox import Outbox
from suanwang.privacy.documents import sealer
from suanwang.scheduling.base import Executor, JobState, JobStatus
from suanwang.states import DealCall
from suanwang.storage.repositories import Repositories


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
            cid = self._result(job.deal_id, status, job.sealed_to) if status.ran_to_end else None
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

    def _result(self, deal_id: str, status: JobStatus, sealed_to: list[dict[str, Any]] | None = None) -> str:
        """The result document of a job that ran to its end: how it ended (exit code, reason) and the CID
        of its whole output (its standard output; the content store takes it whatever its size up to its
        MAX_CONTENT_BYTES). `output_truncated` stays in the document, always false, for its readers.
        The output and the document are each sealed to `sealed_to` (the buyer's result key and the node's,
        from the specification; docs/content.md, Privacy), so the store holds only ciphertext."""
        seal = sealer(sealed_to)
        try:
            output = Path(status.result_path).read_bytes() if status.result_path else b""
        except FileNotFoundError:  # the command wrote nothing (it could not even start)
            output = b""
        document = {
            "deal": deal_id,
            "exit_code": status.exit_code,
            "reason": status.reason or None,
            "output": self.content.put(seal(output)),
            "output_bytes": len(output),
            "output_truncated": False,
        }
        return self.content.put(seal(json.dumps(document, sort_keys=True).encode()))


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
