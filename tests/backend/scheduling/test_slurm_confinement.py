"""What was bought is what a Slurm job gets, is held to, and is metered by (issue 16), on the real cluster.

The cluster (tests/support/slurm.py) confines jobs with task/cgroup when the host allows it, accounts
them in slurmdbd, and emulates n2's two A100s as character devices 195:0 and 195:1 with 8 shards.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from suanwang.errors import InfeasibleError
from suanwang.scheduling import JobSpec, JobState, SlurmExecutor
from suanwang.scheduling.base import JobAccounting
from suanwang.scheduling.slurm import _sbatch_error
from tests.support.slurm import SlurmCluster, wait_for

pytestmark = pytest.mark.slurm
MIB = 1024**2
# Holds 64 MiB for 3 s (longer than the cluster's 2 s JobAcctGatherFrequency, so MaxRSS is sampled) while
# spinning a CPU, then reports how many CPUs it may run on.
WORKLOAD = (
    "python3 -c 'import os, time\n"
    "block = bytearray(64 * 1024 * 1024)\n"
    "end = time.time() + 3\n"
    "while time.time() < end: pass\n"
    "print(len(os.sched_getaffinity(0)))'"
)


@pytest.fixture
def executor(slurm_cluster: SlurmCluster, tmp_path: Path) -> SlurmExecutor:
    return SlurmExecutor(tmp_path / "state", slurm_conf=slurm_cluster.slurm_conf)


@pytest.fixture
def confined(slurm_cluster: SlurmCluster) -> None:
    if slurm_cluster.confinement is None:
        pytest.skip(f"the test cluster has no cgroup confinement here: {slurm_cluster.confinement_detail}")


def finished(executor: SlurmExecutor, job_id: str):
    return wait_for(f"job {job_id} to finish", lambda: (s := executor.status(job_id)).state.is_final and s)


def accounted(executor: SlurmExecutor, job_id: str) -> JobAccounting:
    return wait_for(f"the accounting record of job {job_id}", lambda: executor.accounting(job_id))


def sacct_alloc_tres(cluster: SlurmCluster, job_id: str) -> set[str]:
    out = subprocess.run(
        ["sacct", "-j", job_id, "-X", "-P", "-n", "--format=AllocTRES"],
        capture_output=True,
        text=True,
        env={**os.environ, "SLURM_CONF": str(cluster.slurm_conf)},
        timeout=30,
    ).stdout.strip()
    return {item for item in out.split(",") if not item.startswith("billing=")}


def forgotten_by_slurm(cluster: SlurmCluster, job_id: str) -> None:
    wait_for(
        f"Slurm to forget job {job_id} (MinJobAge)",
        lambda: "Invalid job id" in cluster.scontrol("show", "job", job_id).stderr,
    )


@pytest.mark.parametrize(
    ("bought", "tres"),
    [
        ({"node": "n1", "cpus": 2, "memory_mib": 2048}, {"cpu=2", "mem=2G", "node=1"}),
        (
            {"node": "n2", "cpus": 1, "memory_mib": 512, "gpus": 1, "gpu_type": "a100"},
            {"cpu=1", "mem=512M", "node=1", "gres/gpu=1"},
        ),
        ({"node": "n2", "cpus": 1, "memory_mib": 512, "shards": 4}, {"cpu=1", "mem=512M", "node=1", "gres/shard=4"}),
    ],
    ids=["cpus-and-memory", "whole-gpu", "half-a-gpu-in-shards"],
)
def test_job_is_allocated_exactly_what_was_bought_and_metered(
    executor: SlurmExecutor, slurm_cluster: SlurmCluster, bought: dict, tres: set[str]
) -> None:
    job = executor.submit(JobSpec(key="bought", command=WORKLOAD, **bought))
    status = finished(executor, job)
    assert status.state is JobState.COMPLETED, status
    record = accounted(executor, job)
    assert sacct_alloc_tres(slurm_cluster, job) == tres
    expected = {"cpu": bought["cpus"], "mem": bought["memory_mib"] * MIB, "node": 1}
    expected |= {"gres/gpu": 1} if bought.get("gpus") else {}
    expected |= {"gres/shard": 4} if bought.get("shards") else {}
    assert dict(record.alloc_tres) == expected
    assert (record.state, record.scheduler_state, record.exit_code, record.node) == (
        JobState.COMPLETED,
        "COMPLETED",
        0,
        bought["node"],
    )
    assert record.elapsed_s >= 3 and record.cpu_time_s >= 1.5
    assert record.max_rss_bytes is not None and 64 * MIB <= record.max_rss_bytes < bought["memory_mib"] * MIB
    assert record.started_at is not None and record.finished_at is not None
    if slurm_cluster.confinement is not None:  # ConstrainCores: the job sees the CPUs it bought, no more
        assert Path(status.result_path or "").read_text() == f"{bought['cpus']}\n"


def test_job_that_exits_3_ran_to_its_end_with_exit_code_3(executor: SlurmExecutor) -> None:
    job = executor.submit(JobSpec(key="exits-3", node="n1", command=["sh", "-c", "exit 3"]))
    status = finished(executor, job)
    assert (status.state, status.exit_code, status.ran_to_end) == (JobState.FAILED, 3, True)
    record = accounted(executor, job)
    assert (record.exit_code, record.signal, record.scheduler_state) == (3, None, "FAILED")


def test_job_over_its_memory_is_stopped_by_its_confinement(
    confined: None, executor: SlurmExecutor, slurm_cluster: SlurmCluster
) -> None:
    hog = "python3 -c 'import time; block = bytearray(300 * 1024 * 1024); time.sleep(1)'"
    job = executor.submit(JobSpec(key="hog", node="n1", memory_mib=100, command=hog))
    # Not asked while Slurm lists it: the answer after it forgot comes from accounting, not from the exit file
    # (which says only that the command exited 137).
    wait_for("the job's end in the accounting", lambda: executor.accounting(job))
    forgotten_by_slurm(slurm_cluster, job)
    status = SlurmExecutor(executor.root, slurm_conf=slurm_cluster.slurm_conf).status(job)
    assert status.state is JobState.FAILED
    assert status.ran_to_end  # it ran on what was bought, and was stopped by its own bought limit
    assert status.reason == "stopped by its memory limit (100 MiB bought)"
    record = executor.accounting(job)
    assert record is not None and record.scheduler_state == "OUT_OF_MEMORY"
    assert record.alloc_tres["mem"] == 100 * MIB


@pytest.mark.parametrize(("gpus", "expected"), [(1, ["ENXIO", "EPERM"]), (0, ["EPERM", "EPERM"])])
def test_job_can_open_only_the_gpu_devices_it_was_given(
    confined: None, executor: SlurmExecutor, slurm_cluster: SlurmCluster, gpus: int, expected: list[str]
) -> None:
    # ENXIO: the device may be opened, and there is no driver behind the emulated GPU; EPERM: the job's device
    # cgroup denies it. Which of the two GPUs a one-GPU job gets is Slurm's choice, so the order is not checked.
    devices = sorted((slurm_cluster.dir / "dev" / "n2").iterdir())
    probe = (
        "import errno, os, sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        os.close(os.open(path, os.O_RDONLY))\n"
        "        print('OPENED')\n"
        "    except OSError as exc:\n"
        "        print(errno.errorcode[exc.errno])\n"
    )
    spec = JobSpec(
        key=f"devices-{gpus}",
        node="n2",
        gpus=gpus,
        gpu_type="a100" if gpus else None,
        command=["python3", "-c", probe, *map(str, devices)],
    )
    status = finished(executor, executor.submit(spec))
    assert status.state is JobState.COMPLETED, status
    assert sorted(Path(status.result_path or "").read_text().split()) == sorted(expected)


@pytest.mark.parametrize(
    ("change", "words"),
    [({"node": "n2", "shards": 5}, "at most 4 shards on one GPU"), ({"node": "n1", "shards": 1}, "at most 0")],
)
def test_share_larger_than_one_gpu_is_refused(executor: SlurmExecutor, change: dict, words: str) -> None:
    with pytest.raises(InfeasibleError) as caught:
        executor.submit(JobSpec(key="too-many-shards", command=["true"], **change))
    assert caught.value.field == "shards"
    assert words in caught.value.message


def test_sbatch_refusals_of_cpus_and_shards_name_their_field() -> None:
    cpus = _sbatch_error(JobSpec(key="k", command=["true"], cpus=3), "error: CPU count per node can not be satisfied")
    shards = _sbatch_error(
        JobSpec(key="k", command=["true"], shards=9), "error: Invalid generic resource (gres) specification"
    )
    assert (cpus.field, shards.field) == ("cpus", "shards")


def test_accounting_survives_a_restart_after_slurm_forgot_the_job(
    executor: SlurmExecutor, slurm_cluster: SlurmCluster
) -> None:
    job = executor.submit(JobSpec(key="remembered", node="n1", command=WORKLOAD))
    first = (finished(executor, job), accounted(executor, job))
    forgotten_by_slurm(slurm_cluster, job)
    restarted = SlurmExecutor(executor.root, slurm_conf=slurm_cluster.slurm_conf)
    assert restarted.accounting(job) == first[1]
    assert restarted.status(job) == first[0]
