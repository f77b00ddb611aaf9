"""What a job is given for what its order bought (lifecycle/resources.py): pure, no executor."""

from __future__ import annotations

import pytest

from suanwang.lifecycle.resources import Bought, Given, given_for
from suanwang.scheduling.base import ExecutorNode

CPU_NODE = ExecutorNode("n1", cpus=2, memory_mib=4000)
GPU_NODE = ExecutorNode("n2", cpus=2, memory_mib=4000, gpus=2, gpu_type="a100")


@pytest.mark.parametrize(
    ("logic_mcu", "cpus"),
    [(1, 1), (500, 1), (501, 2), (1000, 2), (5000, 2)],  # the node: 1,000 mCU on 2 CPUs, 500 mCU per CPU
)
def test_cpus_are_the_bought_share_of_the_node_rounded_up(logic_mcu: int, cpus: int) -> None:
    given = given_for(Bought(logic_mcu=logic_mcu, memory_mib=2048), 1000, CPU_NODE)
    assert given == Given(cpus=cpus, memory_mib=2048)


def test_whole_gpus_are_of_the_executor_nodes_model() -> None:
    given = given_for(Bought(logic_mcu=100, memory_mib=512, gpu_count=1), 1000, GPU_NODE)
    assert (given.gpus, given.gpu_type, given.shards) == (1, "a100", 0)


@pytest.mark.parametrize(("gpu_milli", "shards"), [(500, 2), (1, 1), (250, 1), (251, 2), (1000, 4)])
def test_a_gpu_share_is_shards_of_one_gpu_rounded_up(gpu_milli: int, shards: int) -> None:
    given = given_for(Bought(logic_mcu=100, memory_mib=512, gpu_milli=gpu_milli), 1000, GPU_NODE)
    assert (given.gpus, given.gpu_type, given.shards) == (0, None, shards)


def test_without_an_executor_node_the_job_gets_one_cpu_and_its_memory() -> None:
    assert given_for(Bought(logic_mcu=9000, memory_mib=300), 1000, None) == Given(cpus=1, memory_mib=300)
