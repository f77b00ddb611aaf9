"""LocalExecutor holds a job to what was bought (memory as RLIMIT_AS, CPUs by affinity), runs it as the
unprivileged ``suanwang-job`` when root, and meters it from the command's rusage (issue 16)."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from suanwang.errors import InfeasibleError
from suanwang.scheduling import JobSpec, JobState, LocalExecutor
from suanwang.scheduling.base import JobAccounting
from tests.support.slurm import wait_for

MIB = 1024**2
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can run jobs as another user")


@pytest.fixture
def executor(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(tmp_path / "state")


def finished(executor: LocalExecutor, job_id: str):
    return wait_for(f"job {job_id} to finish", lambda: (s := executor.status(job_id)).state.is_final and s)


def output(status) -> str:
    return Path(status.result_path or "").read_text()


@as_root
def test_job_runs_as_the_unprivileged_job_user_and_its_files_stay_readable(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec(key="who", command="id -un; echo kept > made-by-job; cat made-by-job"))
    status = finished(executor, job)
    assert status.state is JobState.COMPLETED, status
    assert output(status) == "suanwang-job\nkept\n"
    workdir = executor.root / "work" / "who"
    assert workdir.stat().st_uid == pwd.getpwnam("suanwang-job").pw_uid
    assert (workdir / "made-by-job").read_text() == "kept\n"  # the executor still reads what the job left


@as_root
def test_one_buyers_job_cannot_read_another_buyers_job() -> None:
    """Both run as suanwang-job: the state directory, where every job's command, output and working
    directory live, is the service's alone, even under a parent anyone may enter (as `.state/` is)."""
    parent = Path(tempfile.mkdtemp(prefix="suanwang-open-"))
    parent.chmod(0o755)  # pytest's own temporary folders are private, which would hide the point
    executor = LocalExecutor(parent / "state")
    first = finished(executor, executor.submit(JobSpec(key="first", command="echo secret-of-the-first; echo x > left")))
    assert output(first) == "secret-of-the-first\n"
    snoop = f"cat {executor.root}/first.out {executor.root}/jobs/first.json {executor.root}/work/first/left; true"
    second = finished(executor, executor.submit(JobSpec(key="second", command=snoop)))
    assert "secret" not in output(second)
    assert (executor.root / "second.err").read_text().count("Permission denied") == 3
    shutil.rmtree(parent)


def test_job_is_limited_to_the_cpus_bought(executor: LocalExecutor) -> None:
    job = executor.submit(
        JobSpec(key="one-cpu", cpus=1, command=["python3", "-c", "import os; print(len(os.sched_getaffinity(0)))"])
    )
    assert output(finished(executor, job)) == "1\n"


def test_job_allocating_more_than_bought_fails_by_its_memory_limit(executor: LocalExecutor) -> None:
    hog = ["python3", "-c", "block = bytearray(300 * 1024 * 1024)"]
    job = executor.submit(JobSpec(key="hog", memory_mib=100, command=hog))
    status = finished(executor, job)
    assert (status.state, status.exit_code, status.ran_to_end) == (JobState.FAILED, 1, True)
    assert "MemoryError" in Path(executor.root / "hog.err").read_text()
    record = executor.accounting(job)
    assert record is not None and record.alloc_tres["mem"] == 100 * MIB
    assert record.max_rss_bytes is not None and record.max_rss_bytes < 100 * MIB


def test_accounting_has_the_figures_of_the_run_also_after_a_restart(executor: LocalExecutor) -> None:
    work = (
        "import time\n"
        "block = bytearray(64 * 1024 * 1024)\n"
        "end = time.process_time() + 0.5\n"
        "while time.process_time() < end: pass"
    )
    job = executor.submit(JobSpec(key="metered", cpus=1, memory_mib=256, command=["python3", "-c", work]))
    assert executor.accounting(job) is None or executor.status(job).state.is_final
    finished(executor, job)
    record = executor.accounting(job)
    assert isinstance(record, JobAccounting)
    assert (record.state, record.scheduler_state, record.exit_code, record.signal) == (
        JobState.COMPLETED,
        "exited",
        0,
        None,
    )
    assert record.cpu_time_s >= 0.5 and record.elapsed_s >= 0.5
    assert record.max_rss_bytes is not None and 64 * MIB <= record.max_rss_bytes < 256 * MIB
    assert dict(record.alloc_tres) == {"cpu": 1, "mem": 256 * MIB, "node": 1}
    assert record.node == executor.node_name
    assert LocalExecutor(executor.root).accounting(job) == record


def test_exit_code_3_is_accounted_and_delivered(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec(key="three", command=["sh", "-c", "exit 3"]))
    status = finished(executor, job)
    assert (status.exit_code, status.ran_to_end) == (3, True)
    record = executor.accounting(job)
    assert record is not None and record.exit_code == 3


def test_gpu_shares_are_refused_naming_the_field(executor: LocalExecutor) -> None:
    with pytest.raises(InfeasibleError) as caught:
        executor.submit(JobSpec(key="share", command=["true"], shards=2))
    assert caught.value.field == "shards"
