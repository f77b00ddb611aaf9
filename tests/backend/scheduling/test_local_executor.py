"""LocalExecutor: child processes whose state lives in files, so a restarted service still knows them."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from suanwang.errors import InfeasibleError, InputError, NotFoundError
from suanwang.scheduling import Executor, JobSpec, JobState, LocalExecutor, local
from suanwang.scheduling.jobfiles import JobFiles, read_json
from tests.support.slurm import wait_for


@pytest.fixture
def executor(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(tmp_path / "state")


def finished(executor: Executor, job_id: str):
    return wait_for(f"job {job_id} to finish", lambda: (s := executor.status(job_id)).state.is_final and s)


def running(executor: Executor, job_id: str):
    return wait_for(f"job {job_id} to run", lambda: (s := executor.status(job_id)).state is JobState.RUNNING and s)


def test_local_executor_is_an_executor(executor: LocalExecutor) -> None:
    assert isinstance(executor, Executor)
    [node] = executor.nodes()
    assert node.cpus >= 1 and node.memory_mib > 0 and node.gpus == 0


def test_job_runs_and_its_output_is_the_result_file(executor: LocalExecutor, tmp_path: Path) -> None:
    job = executor.submit(
        JobSpec(
            key="lease-1-1",
            command=["sh", "-c", 'echo "hello $WHO"; pwd'],
            env={"WHO": "the market"},
            workdir=str(tmp_path / "wd"),
        )
    )
    status = finished(executor, job)
    assert status.state is JobState.COMPLETED and status.ran_to_end
    assert status.exit_code == 0
    assert status.started_at is not None and status.finished_at is not None
    assert status.finished_at >= status.started_at
    assert status.node == executor.nodes()[0].name
    assert Path(status.result_path or "").read_text() == f"hello the market\n{tmp_path / 'wd'}\n"


def test_shell_script_command_runs_under_bash(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec(key="script", command="for i in 1 2 3; do printf $i; done\n"))
    status = finished(executor, job)
    assert status.state is JobState.COMPLETED
    assert Path(status.result_path or "").read_text() == "123"


def test_failing_job_reports_failed_with_its_exit_code(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec(key="fails", command=["sh", "-c", "echo oops >&2; exit 7"]))
    status = finished(executor, job)
    assert status.state is JobState.FAILED
    assert status.exit_code == 7
    assert "7" in status.reason
    assert status.ran_to_end  # it ran and ended by itself: what it did is delivered (issue 14, attack 7)


def test_second_submit_with_the_same_key_starts_nothing(executor: LocalExecutor, tmp_path: Path) -> None:
    # Files the job shares with the test live in its working directory: as suanwang-job it cannot reach the
    # test's temporary directory (mode 700, root's).
    counter = tmp_path / "wd" / "runs"
    spec = JobSpec(key="lease-31337-42", command=["sh", "-c", "echo run >> runs"], workdir=str(counter.parent))
    first = executor.submit(spec)
    finished(executor, first)
    again = LocalExecutor(executor.root).submit(spec)  # also after a restart
    assert again == first == executor.find("lease-31337-42")
    assert finished(executor, again).state is JobState.COMPLETED
    assert counter.read_text() == "run\n"


def test_concurrent_submits_of_one_key_start_one_job(executor: LocalExecutor, tmp_path: Path) -> None:
    counter = tmp_path / "wd" / "runs"
    spec = JobSpec(key="raced", command=["sh", "-c", "echo run >> runs"], workdir=str(counter.parent))
    others = [LocalExecutor(executor.root) for _ in range(8)]  # as if several service workers got the order
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(lambda ex: ex.submit(spec), others))
    assert ids == {"raced"}
    finished(executor, "raced")
    assert counter.read_text() == "run\n"


def test_restarted_executor_reports_running_then_completed(executor: LocalExecutor, tmp_path: Path) -> None:
    gate = tmp_path / "wd" / "gate"
    job = executor.submit(
        JobSpec(key="long", command=["sh", "-c", "while [ ! -e gate ]; do sleep 0.05; done"], workdir=str(gate.parent))
    )
    running(executor, job)
    restarted = LocalExecutor(executor.root)
    assert restarted.find("long") == job
    assert restarted.status(job).state is JobState.RUNNING
    gate.touch()
    status = finished(restarted, job)
    assert status.state is JobState.COMPLETED and status.exit_code == 0


def test_cancel_stops_a_running_job(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec(key="to-cancel", command=["sleep", "60"]))
    running(executor, job)
    executor.cancel(job)
    status = executor.status(job)
    assert status.state is JobState.CANCELLED and not status.ran_to_end
    assert LocalExecutor(executor.root).status(job).state is JobState.CANCELLED


def test_cancel_after_a_restart_stops_the_job(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec(key="cancel-later", command=["sleep", "60"]))
    running(executor, job)
    restarted = LocalExecutor(executor.root)
    restarted.cancel(job)
    started = read_json(JobFiles(executor.root, job).started) or {}
    assert restarted.status(job).state is JobState.CANCELLED
    wait_for(
        "the job's process to go",
        lambda: (
            not Path(f"/proc/{started['pid']}").exists()
            or Path(f"/proc/{started['pid']}/stat").read_text().split(") ")[1].startswith("Z")
        ),
    )


def test_job_cancelled_before_its_wrapper_ran_never_runs_the_command(executor: LocalExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    JobFiles(executor.root, "early").cancelled.touch()  # the cancel landed between submit and the wrapper's start
    job = executor.submit(JobSpec(key="early", command=["touch", str(marker)]))
    assert finished(executor, job).state is JobState.CANCELLED
    assert not marker.exists()


def test_cancel_of_a_finished_job_changes_nothing(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec(key="done", command=["true"]))
    finished(executor, job)
    executor.cancel(job)
    assert executor.status(job).state is JobState.COMPLETED


def test_time_limit_fails_the_job_with_a_reason(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec(key="too-long", command=["sleep", "30"], time_limit_s=1))
    status = finished(executor, job)
    assert status.state is JobState.FAILED
    assert "time limit" in status.reason
    assert status.ran_to_end  # stopped at its limit, it had the whole time bought


def test_job_killed_without_a_trace_is_lost(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec(key="killed", command=["sleep", "60"]))
    running(executor, job)
    started = read_json(JobFiles(executor.root, job).started) or {}
    os.killpg(int(started["pid"]), signal.SIGKILL)
    status = finished(LocalExecutor(executor.root), job)
    assert status.state is JobState.LOST
    assert "without recording an exit status" in status.reason


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"node": "n9"}, InputError, "node"),
        ({"features": ("gpu_a100",)}, InfeasibleError, "features"),
        ({"gpus": 1}, InfeasibleError, "gpus"),
        ({"cpus": 100000}, InfeasibleError, "cpus"),
        ({"memory_mib": 10**9}, InfeasibleError, "memory_mib"),
        ({"key": "../escape"}, InputError, "key"),
        ({"command": []}, InputError, "command"),
        ({"time_limit_s": 0}, InputError, "time_limit_s"),
    ],
)
def test_impossible_spec_is_refused_naming_the_field(executor: LocalExecutor, change, error, field) -> None:
    spec = JobSpec(**{"key": "bad", "command": ["true"], **change})
    with pytest.raises(error) as caught:
        executor.submit(spec)
    assert caught.value.field == field
    assert executor.find("bad") is None


def test_unknown_job_id_is_not_found(executor: LocalExecutor) -> None:
    with pytest.raises(NotFoundError):
        executor.status("never-submitted")


def test_job_ending_while_its_status_is_read_is_not_lost(
    executor: LocalExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wrapper records the exit status and then ends. A status read that looks at the process while the job
    # is finishing must not call it lost: here the job is made to end during the look at its process.
    go = tmp_path / "wd" / "go"
    job = executor.submit(
        JobSpec(key="ending", command="until [ -e go ]; do sleep 0.05; done; echo done", workdir=str(go.parent))
    )
    running(executor, job)
    look_at_process = local._same_process_alive

    def job_ends_meanwhile(pid: int, proc_start: int) -> bool:
        go.touch()
        executor._children[job].wait(timeout=30)
        return look_at_process(pid, proc_start)

    monkeypatch.setattr(local, "_same_process_alive", job_ends_meanwhile)
    status = executor.status(job)
    assert status.state is JobState.COMPLETED, status
