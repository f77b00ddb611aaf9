"""The FGD authors' replay protocol and scoring, as their artifact (hkust-adsl/kubernetes-scheduler-simulator)
runs them: every published pod-list layout loads, the workload is tuned to 1.3 x capacity, samples are read as
their analysis reads them, FGD scores are their integers, ties go to the smallest node name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from suanwang.cli import cli
from suanwang.compute.openb import load_pods
from suanwang.errors import InputError
from suanwang.matching import Engine, Node, Order, Placement, Workload
from suanwang.matching.fgd import artifact_score
from suanwang.matching.trace import ArtifactRun, artifact_nodes, artifact_workload
from suanwang.paths import shared_data_dir

FIVE_COLUMNS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"


def test_a_five_column_pod_list_loads_in_file_order_with_any_gpu_type(tmp_path):
    path = tmp_path / "multigpu.csv"
    path.write_text(FIVE_COLUMNS + "p2,12000,16384,8,1000\np1,4000,8192,1,500\np3,8000,100,0,0\n")
    pods = load_pods(path)
    assert [p.name for p in pods] == ["p2", "p1", "p3"]
    assert [p.creation_time for p in pods] == [0, 1, 2]
    assert all(p.gpu_models == () for p in pods)
    assert (pods[0].num_gpu, pods[0].gpu_milli) == (8, 1000)


@pytest.mark.parametrize(
    ("row", "field"),
    [("p1,4000,8192,2,500", "multigpu.csv:3:gpu_milli"), ("p1,4000,8192", "multigpu.csv:3")],
)
def test_a_bad_row_in_a_five_column_list_names_the_file_line_and_field(tmp_path, row, field):
    path = tmp_path / "multigpu.csv"
    path.write_text(FIVE_COLUMNS + "p0,1000,100,1,500\n" + row + "\n")
    with pytest.raises(InputError) as caught:
        load_pods(path)
    assert caught.value.field == field


def _slice(tmp_path, pods: str, rows: int) -> tuple[str, str]:
    data = shared_data_dir() / "openb"
    nodes = (data / "openb_node_list_gpu_node.csv").read_text().splitlines()
    lines = (data / pods).read_text().splitlines()
    node_path, pod_path = tmp_path / "nodes.csv", tmp_path / pods
    node_path.write_text("\n".join([nodes[0], *nodes[1::40]]) + "\n")
    pod_path.write_text("\n".join(lines[: rows + 1]) + "\n")
    return str(node_path), str(pod_path)


def test_match_trace_runs_the_artifact_protocol_on_a_five_column_list(tmp_path):
    node_path, pod_path = _slice(tmp_path, "openb_pod_list_multigpu20.csv", 200)
    assert Path(pod_path).read_text().splitlines()[0] == FIVE_COLUMNS.strip()
    out = CliRunner().invoke(cli, ["match-trace", "--nodes", node_path, "--pods", pod_path, "--policy", "fgd",
                                   "--protocol", "artifact", "--seeds", "42-44", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["seeds"] == [42, 43, 44]
    for point in ("allocation_at_100", "allocation_at_130"):
        figures = report[point]
        assert 30 < figures["min"] <= figures["mean"] <= figures["max"] <= 100


def test_match_trace_refuses_seeds_it_cannot_read(tmp_path):
    node_path, pod_path = _slice(tmp_path, "openb_pod_list_default.csv", 20)
    out = CliRunner().invoke(cli, ["match-trace", "--nodes", node_path, "--pods", pod_path,
                                   "--protocol", "artifact", "--seeds", "forty-two"])
    assert out.exit_code != 0 and "--seeds" in out.output


def _orders(count: int, gpus: int) -> list[Order]:
    return [Order(f"p{i:03d}", 1000, 1024, num_gpu=gpus, gpu_milli=1000) for i in range(count)]


def test_a_short_list_is_tuned_up_to_just_below_1_3_times_capacity():
    pods = artifact_workload(_orders(10, 1), seed=42, capacity_milli=50_000)
    demand = sum(p.gpu_demand_milli for p in pods)
    assert demand == 65_000  # 1.3 x 50 GPUs: appended one-GPU pods stop exactly there
    assert len({p.id for p in pods}) == len(pods)
    assert sorted(p.id for p in pods[:10]) == [f"p{i:03d}" for i in range(10)]


def test_a_long_list_is_tuned_down_and_each_seed_shuffles_its_own_way():
    a = artifact_workload(_orders(100, 1), seed=42, capacity_milli=50_000)
    b = artifact_workload(_orders(100, 1), seed=43, capacity_milli=50_000)
    assert sum(p.gpu_demand_milli for p in a) == 65_000 and len(a) == 65
    assert [p.id for p in a] != [p.id for p in b]
    assert [p.id for p in a] == [p.id for p in artifact_workload(_orders(100, 1), 42, 50_000)]


def test_each_seed_gives_the_nodes_a_random_tie_break_order():
    nodes = [Node(f"n{i}", 8000, 1024, 1, 1) for i in range(20)]
    named = artifact_nodes(nodes, 42)
    assert sorted(n.id.split("-", 1)[1] for n in named) == sorted(n.id for n in nodes)
    assert [n.id for n in named] != [n.id for n in artifact_nodes(nodes, 43)]


def test_the_value_at_a_point_is_the_mean_of_the_samples_that_round_to_it():
    arrived = np.array([994, 996, 1000, 1004, 1006, 1300]) * 10
    allocated = np.array([900, 910, 920, 930, 940, 950]) * 10
    run = ArtifactRun("fgd", 42, 10_000, arrived, allocated, 1.0)
    assert run.allocation_at(100) == 92.0  # 99.6, 100.0, 100.4 round to 100: (91 + 92 + 93) / 3
    assert run.allocation_at(129) == 95.0  # nothing rounds to 129: the samples within 1 point
    assert np.isnan(run.allocation_at(110))


def test_fgd_scores_are_the_artifacts_integers():
    before = np.array([5000.0, 5000.0, 5000.0, 5000.0])
    after = np.array([5000.0, 6000.0, 4000.0, 5030.0])
    assert artifact_score(before, after).tolist() == [50.0, 26.0, 73.0, 49.0]


def test_ties_go_to_the_smallest_node_name_whatever_the_order_of_the_nodes(catalog):
    t4 = catalog.by_name("nvidia-t4").code
    nodes = [Node(name, 8000, 16384, 1, t4) for name in ("0007-b", "0003-c", "0005-a")]
    result = Engine(nodes, profile="fgd").place(Order("o", 1000, 1024, num_gpu=1, gpu_milli=1000))
    assert isinstance(result, Placement) and result.node_id == "0003-c"


def test_typical_task_types_are_the_most_popular_95_percent_cpu_tasks_included():
    orders = ([Order(f"a{i}", 1000, 1, num_gpu=1, gpu_milli=500) for i in range(50)]
              + [Order(f"c{i}", 4000, 1) for i in range(30)]
              + [Order(f"b{i}", 2000, 1, num_gpu=1, gpu_milli=1000) for i in range(15)]
              + [Order(f"r{i}", 3000, 1, num_gpu=2, gpu_milli=1000) for i in range(5)])
    workload = Workload.from_orders(orders)
    assert sorted(zip(workload.cpu.tolist(), workload.popularity.round(4).tolist(), strict=True)) == [
        (1000, round(50 / 95, 4)), (2000, round(15 / 95, 4)), (4000, round(30 / 95, 4))]
    assert len(Workload.from_orders(orders, popularity=1.0)) == 4


def test_a_shared_task_takes_the_first_gpu_with_the_best_fgd_score(catalog):
    t4 = catalog.by_name("nvidia-t4").code
    workload = Workload.from_orders([Order("w", 1000, 1, num_gpu=1, gpu_milli=300)])
    engine = Engine([Node("n", 32000, 65536, 2, t4)], profile="fgd", workload=workload)
    engine.commit(Order("half", 1000, 1, num_gpu=1, gpu_milli=500), 0, (1,))
    # Both GPUs leave no fragment for 300-milli tasks, so both score the same: GPU 0 (best fit takes GPU 1).
    result = engine.place(Order("o", 1000, 1, num_gpu=1, gpu_milli=200))
    assert isinstance(result, Placement) and result.gpu_indices == (0,)
    best_fit = Engine([Node("n", 32000, 65536, 2, t4)], profile="best_fit", workload=workload)
    best_fit.commit(Order("half", 1000, 1, num_gpu=1, gpu_milli=500), 0, (1,))
    other = best_fit.place(Order("o", 1000, 1, num_gpu=1, gpu_milli=200))
    assert isinstance(other, Placement) and other.gpu_indices == (1,)
