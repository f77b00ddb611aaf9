"""SlurmExecutor on a real one-host Slurm cluster (tools/slurm/cluster.py) with five emulated nodes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from suanwang.errors import InfeasibleError, InputError, NotFoundError
from suanwang.scheduling import Executor, JobSpec, JobState, NodeState, SlurmExecutor
from suanwang.scheduling.slurm import _sbatch_error
from tests.support.slurm import SlurmCluster, wait_for

pytestmark = pytest.mark.slurm


@pytest.fixture
def executor(slurm_cluster: SlurmCluster, tmp_path: Path) -> SlurmExecutor:
    return SlurmExecutor(tmp_path / "state", slurm_conf=slurm_cluster.slurm_conf)


def finished(executor: Executor, job_id: str):
    return wait_for(f"job {job_id} to finish", lambda: (s := executor.status(job_id)).state.is_final and s)


def running(executor: Executor, job_id: str):
    return wait_for(f"job {job_id} to run", lambda: (s := executor.status(job_id)).state is JobState.RUNNING and s)


def forgotten_by_slurm(cluster: SlurmCluster, job_id: str) -> None:
    wait_for(
        f"Slurm to forget job {job_id} (MinJobAge)",
        lambda: "Invalid job id" in cluster.scontrol("show", "job", job_id).stderr,
    )


def squeue_ids(cluster: SlurmCluster, key: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "--states=all", f"--name={key}", "-o", "%i"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SLURM_CONF": str(cluster.slurm_conf)},
    ).stdout
    return out.split()


def test_nodes_lists_the_cluster_with_gpus_features_and_state(executor: SlurmExecutor) -> None:
    assert isinstance(executor, Executor)
    nodes = {n.name: n for n in executor.nodes()}
    assert set(nodes) == {"n1", "n2", "n3", "n4", "n5"}
    assert (nodes["n2"].gpus, nodes["n2"].gpu_type) == (2, "a100")
    assert {"gpu", "gpu_a100"} <= set(nodes["n2"].features)
    assert nodes["n3"].features == ("ssd",)
    assert (nodes["n1"].cpus, nodes["n1"].memory_mib, nodes["n1"].gpus) == (2, 4000, 0)
    assert (nodes["n2"].shards, nodes["n1"].shards) == (8, 0)
    assert nodes["n1"].state is NodeState.UP


def test_job_lands_on_the_requested_node_with_its_gpus(executor: SlurmExecutor) -> None:
    job = executor.submit(
        JobSpec(
            key="lease-31337-1",
            node="n2",
            gpus=1,
            gpu_type="a100",
            command='echo "$SLURM_JOB_NODELIST $SLURM_GPUS_ON_NODE $HOME_MARKET"',
            env={"HOME_MARKET": "suanwang"},
        )
    )
    status = finished(executor, job)
    assert status.state is JobState.COMPLETED, status
    assert status.exit_code == 0
    assert status.node == "n2"
    assert Path(status.result_path or "").read_text() == "n2 1 suanwang\n"


def test_features_choose_the_node_that_offers_them(executor: SlurmExecutor) -> None:
    job = executor.submit(JobSpec(key="needs-ssd", features=("ssd",), command=["hostname"]))
    status = finished(executor, job)
    assert status.state is JobState.COMPLETED
    assert status.node == "n3"


def test_failing_job_reports_failed_with_its_exit_code(executor: SlurmExecutor) -> None:
    job = executor.submit(JobSpec(key="fails", node="n1", command=["sh", "-c", "exit 7"]))
    status = finished(executor, job)
    assert status.state is JobState.FAILED
    assert status.exit_code == 7


def test_second_submit_with_the_same_key_returns_the_first_job(
    executor: SlurmExecutor, slurm_cluster: SlurmCluster
) -> None:
    first = executor.submit(JobSpec(key="lease-31337-42", node="n1", command=["echo", "first"]))
    again = executor.submit(JobSpec(key="lease-31337-42", node="n1", command=["echo", "second"]))
    after_restart = SlurmExecutor(executor.root, slurm_conf=slurm_cluster.slurm_conf).submit(
        JobSpec(key="lease-31337-42", command=["echo", "third"])
    )
    assert first == again == after_restart
    status = finished(executor, first)
    assert Path(status.result_path or "").read_text() == "first\n"
    assert squeue_ids(slurm_cluster, "lease-31337-42") in ([first], [])


def test_status_is_known_after_a_restart_and_after_slurm_forgot_the_job(
    executor: SlurmExecutor, slurm_cluster: SlurmCluster
) -> None:
    ok = executor.submit(JobSpec(key="remembered-ok", node="n1", command=["echo", "done"]))
    bad = executor.submit(JobSpec(key="remembered-bad", node="n1", command=["sh", "-c", "exit 3"]))
    restarted = SlurmExecutor(executor.root, slurm_conf=slurm_cluster.slurm_conf)
    assert restarted.find("remembered-ok") == ok
    finished(restarted, ok)
    finished(restarted, bad)
    forgotten_by_slurm(slurm_cluster, ok)
    forgotten_by_slurm(slurm_cluster, bad)
    again = SlurmExecutor(executor.root, slurm_conf=slurm_cluster.slurm_conf)
    ok_status, bad_status = again.status(ok), again.status(bad)
    assert (ok_status.state, ok_status.exit_code, ok_status.node) == (JobState.COMPLETED, 0, "n1")
    assert (bad_status.state, bad_status.exit_code) == (JobState.FAILED, 3)
    assert again.submit(JobSpec(key="remembered-ok", command=["echo", "twice"])) == ok
    assert Path(ok_status.result_path or "").read_text() == "done\n"


def test_job_found_by_its_name_when_the_service_lost_its_record(
    executor: SlurmExecutor, slurm_cluster: SlurmCluster
) -> None:
    job = executor.submit(JobSpec(key="unrecorded", node="n1", command=["sleep", "30"]))
    (executor.root / "jobs" / "unrecorded.json").unlink()  # as if the service died right after sbatch
    (executor.root / "ids" / f"{job}.json").unlink()
    restarted = SlurmExecutor(executor.root, slurm_conf=slurm_cluster.slurm_conf)
    assert restarted.find("unrecorded") == job
    assert restarted.submit(JobSpec(key="unrecorded", command=["true"])) == job
    restarted.cancel(job)
    assert finished(restarted, job).state is JobState.CANCELLED


def test_cancel_stops_a_running_job_and_stays_cancelled_after_slurm_forgets(
    executor: SlurmExecutor, slurm_cluster: SlurmCluster
) -> None:
    job = executor.submit(JobSpec(key="to-cancel", node="n1", command=["sleep", "60"]))
    running(executor, job)
    executor.cancel(job)
    assert finished(executor, job).state is JobState.CANCELLED
    forgotten_by_slurm(slurm_cluster, job)
    assert SlurmExecutor(executor.root, slurm_conf=slurm_cluster.slurm_conf).status(job).state is JobState.CANCELLED


def test_job_for_a_down_node_stays_pending_with_the_reason(
    executor: SlurmExecutor, slurm_cluster: SlurmCluster
) -> None:
    assert slurm_cluster.scontrol("update", "nodename=n4", "state=down", "reason=maintenance").returncode == 0
    try:
        assert {n.name: n for n in executor.nodes()}["n4"].state is NodeState.DOWN
        job = executor.submit(JobSpec(key="on-down-node", node="n4", command=["true"]))
        status = wait_for(
            "the pending reason", lambda: (s := executor.status(job)).reason != "" and "n4" in s.reason and s
        )
        assert status.state is JobState.PENDING
        assert "node n4 is down (maintenance" in status.reason
        executor.cancel(job)
        assert finished(executor, job).state is JobState.CANCELLED
    finally:
        slurm_cluster.scontrol("update", "nodename=n4", "state=resume")


def test_running_job_fails_when_its_node_goes_down(executor: SlurmExecutor, slurm_cluster: SlurmCluster) -> None:
    job = executor.submit(JobSpec(key="node-dies", node="n5", command=["sleep", "60"]))
    running(executor, job)
    try:
        assert slurm_cluster.scontrol("update", "nodename=n5", "state=down", "reason=test").returncode == 0
        status = finished(executor, job)
        assert status.state is JobState.FAILED
        assert "n5" in status.reason
        forgotten_by_slurm(slurm_cluster, job)
        assert "n5" in executor.status(job).reason  # Slurm's last word was saved before it forgot
    finally:
        slurm_cluster.scontrol("update", "nodename=n5", "state=resume")


@pytest.mark.parametrize(
    ("change", "error", "field", "words"),
    [
        ({"node": "n9"}, InputError, "node", "no node 'n9'"),
        ({"features": ("gpu_h100",)}, InfeasibleError, "features", "gpu_h100"),
        ({"node": "n1", "features": ("gpu_a100",)}, InfeasibleError, "features", "node n1"),
        ({"cpus": 8}, InfeasibleError, "cpus", "at most 2"),
        ({"node": "n3", "memory_mib": 1500}, InfeasibleError, "memory_mib", "at most 1000"),
        ({"gpus": 1, "gpu_type": "h100"}, InfeasibleError, "gpu_type", "a100"),
        ({"node": "n2", "gpus": 3}, InfeasibleError, "gpus", "at most 2"),
        ({"features": ("ssd",), "cpus": 2}, InfeasibleError, "cpus", "nodes with ssd (n3) has at most 1"),
        ({"cpus": 2, "memory_mib": 1500, "gpus": 1, "gpu_type": "a100"}, None, None, None),
    ],
)
def test_impossible_spec_is_refused_naming_the_field(executor: SlurmExecutor, change, error, field, words) -> None:
    if error is None:  # the control: the same checks let a spec through that one node (n2) meets in full
        job = executor.submit(JobSpec(**{"key": "possible", "command": ["true"], **change}))
        assert finished(executor, job).node == "n2"
        return
    with pytest.raises(error) as caught:
        executor.submit(JobSpec(**{"key": "impossible", "command": ["true"], **change}))
    assert caught.value.field == field
    assert words in caught.value.message
    assert executor.find("impossible") is None


@pytest.mark.parametrize(
    ("stderr", "error", "field"),
    [
        ("sbatch: error: Batch job submission failed: Invalid feature specification", InfeasibleError, "features"),
        ("sbatch: error: Batch job submission failed: Invalid node name specified", InputError, "node"),
        ("sbatch: error: Memory specification can not be satisfied", InfeasibleError, "memory_mib"),
        (
            "sbatch: error: Batch job submission failed: Requested node configuration is not available",
            InfeasibleError,
            "node",
        ),
    ],
)
def test_sbatch_refusals_become_errors_naming_the_field(stderr, error, field) -> None:
    """The texts are sbatch's own (Slurm 22.05), seen on the test cluster when the pre-checks are bypassed."""
    spec = JobSpec(key="k", command=["true"], node="n9", features=("gpu_h100",))
    err = _sbatch_error(spec, stderr)
    assert isinstance(err, error) and err.field == field
    assert stderr.split("error: ")[-1] in err.message


def test_refusal_from_sbatch_itself_is_passed_on_naming_the_field(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    executor = SlurmExecutor(tmp_path / "state", slurm_conf=slurm_cluster.slurm_conf, partition="nosuchpartition")
    with pytest.raises(InputError) as caught:
        executor.submit(JobSpec(key="wrong-partition", command=["true"]))
    assert caught.value.field == "partition"
    assert "Invalid partition name specified" in caught.value.message


def test_unknown_job_id_is_not_found(executor: SlurmExecutor) -> None:
    with pytest.raises(NotFoundError):
        executor.status("999999")


def test_statuses_of_many_jobs_in_one_query_equal_their_single_statuses(executor: SlurmExecutor) -> None:
    ok = executor.submit(JobSpec(key="many-ok", command=["true"], node="n1"))
    bad = executor.submit(JobSpec(key="many-bad", command=["sh", "-c", "exit 4"], node="n1"))
    slow = executor.submit(JobSpec(key="many-slow", command=["sleep", "30"], node="n1"))
    finished(executor, ok)
    finished(executor, bad)
    together = executor.statuses([ok, bad, slow])
    assert together[ok] == executor.status(ok)
    assert together[bad] == executor.status(bad)
    assert (together[ok].state, together[bad].state, together[bad].exit_code) == (
        JobState.COMPLETED,
        JobState.FAILED,
        4,
    )
    assert together[slow].state in (JobState.PENDING, JobState.RUNNING)
    executor.cancel(slow)
