"""Reading sacct's records (scheduling/accounting.py) without a cluster: the formats of sacct(1), Slurm 22.05."""

from __future__ import annotations

import time

import pytest

from suanwang.scheduling import JobState
from suanwang.scheduling.accounting import duration_s, parse_sacct, parse_tres, size_bytes

# JobID|JobName|State|ExitCode|Elapsed|TotalCPU|MaxRSS|AllocTRES|NodeList|Start|End, as `-P -n --noconvert` prints.
OOM = (
    "21|hog|OUT_OF_MEMORY|0:125|00:00:07|00:07.208||billing=1,cpu=1,gres/shard=4,mem=300M,node=1|n2|"
    "2026-12-07T10:00:00|2026-12-07T10:00:07\n"
    "21.batch|batch|OUT_OF_MEMORY|0:125|00:00:07|00:07.208|172609536|cpu=1,gres/shard=4,mem=300M,node=1|n2|"
    "2026-12-07T10:00:00|2026-12-07T10:00:07\n"
)


def test_final_record_has_the_allocation_usage_and_end() -> None:
    record = parse_sacct(OOM, "21", "hog")
    assert record is not None
    assert (record.state, record.scheduler_state, record.exit_code, record.signal) == (
        JobState.FAILED,
        "OUT_OF_MEMORY",
        0,
        None,  # sacct's 0:125 is Slurm's mark of an OOM kill, not a signal number
    )
    assert dict(record.alloc_tres) == {"cpu": 1, "gres/shard": 4, "mem": 300 * 1024**2, "node": 1}
    assert (record.elapsed_s, record.cpu_time_s, record.max_rss_bytes, record.node) == (7.0, 7.208, 172609536, "n2")
    assert record.finished_at is not None and record.started_at is not None
    assert record.finished_at - record.started_at == 7


def test_record_of_another_job_name_or_still_running_is_not_final() -> None:
    assert parse_sacct(OOM, "21", "another-key") is None  # ids restart when a cluster is recreated
    running = "22|k|RUNNING|0:0|00:00:01|00:00:00||cpu=1,mem=1M,node=1|n1|2026-12-07T10:00:00|Unknown\n"
    assert parse_sacct(running, "22", "k") is None


def test_ended_job_waits_for_its_batch_step_only_for_a_while() -> None:
    end = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 5))
    job = f"23|k|COMPLETED|3:0|00:00:01|00:00.100||cpu=1,mem=1M,node=1|n1|{end}|{end}\n"
    assert parse_sacct(job, "23", "k") is None  # the step's MaxRSS is written a moment later
    old = "2020-01-01T00:00:00"
    record = parse_sacct(job.replace(end, old), "23", "k")
    assert record is not None and (record.exit_code, record.max_rss_bytes) == (3, None)


@pytest.mark.parametrize(
    ("text", "seconds"), [("00:00:07", 7), ("1-02:03:04", 93784), ("00:07.208", 7.208), ("01:02:03.5", 3723.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_s(text) == pytest.approx(seconds)


def test_sizes_and_tres() -> None:
    assert (size_bytes("168564K"), size_bytes("2G"), size_bytes("1024"), size_bytes("")) == (
        168564 * 1024,
        2 * 1024**3,
        1024,
        None,
    )
    assert parse_tres("billing=2,cpu=2,gres/gpu=1,mem=2048M,node=1") == {
        "cpu": 2,
        "gres/gpu": 1,
        "mem": 2 * 1024**3,
        "node": 1,
    }
