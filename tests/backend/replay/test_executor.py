"""The replay's simulated executor: a job runs on the replay's clock for its time limit, is lost when the
scenario fails its node, and a failed node takes no more jobs."""

from __future__ import annotations

import pytest

from suanwang.errors import InfeasibleError
from suanwang.replay.executor import SimulatedExecutor
from suanwang.scheduling.base import Executor, JobSpec, JobState


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def spec(key: str, node: str = "node-1", seconds: int = 600) -> JobSpec:
    return JobSpec(key=key, command=["true"], node=node, time_limit_s=seconds)


def test_a_job_runs_for_its_time_limit_on_the_replay_clock() -> None:
    clock = Clock()
    executor = SimulatedExecutor(clock, lambda: ["node-1"])
    assert isinstance(executor, Executor)
    job = executor.submit(spec("deal-a"))
    assert executor.submit(spec("deal-a")) == job  # one job per key
    clock.now += 599
    assert executor.status(job).state == JobState.RUNNING
    clock.now += 1
    done = executor.status(job)
    assert (done.state, done.exit_code, done.ran_to_end) == (JobState.COMPLETED, 0, True)


def test_a_node_failure_loses_its_running_jobs_and_refuses_new_ones() -> None:
    clock = Clock()
    executor = SimulatedExecutor(clock, lambda: ["node-1", "node-2"])
    finished = executor.submit(spec("deal-short", seconds=60))
    running = executor.submit(spec("deal-long"))
    elsewhere = executor.submit(spec("deal-other", node="node-2"))
    clock.now += 120
    executor.fail_node("node-1")
    clock.now += 600
    states = executor.statuses([finished, running, elsewhere])
    assert states[finished].state == JobState.COMPLETED  # it ended before the failure
    assert states[running].state == JobState.LOST and not states[running].ran_to_end
    assert states[elsewhere].state == JobState.COMPLETED
    with pytest.raises(InfeasibleError):
        executor.submit(spec("deal-late"))
