import json

import pytest
from click.testing import CliRunner

from suanwang.cli import cli
from suanwang.compute import Tier
from suanwang.compute.openb import load_nodes, load_pods
from suanwang.errors import InputError, NotFoundError
from suanwang.matching import Engine, Node, Order, Placement, Profile, StagePolicy, Unplaced, Workload
from suanwang.matching.trace import openb_nodes, openb_orders, replay
from suanwang.paths import shared_data_dir


def test_an_order_lands_on_a_node_with_room_and_release_gives_it_back(small_market, network):
    engine = Engine(small_market, network=network)
    result = engine.place(Order("o1", 4000, 8192, num_gpu=2, gpu_milli=1000))
    assert isinstance(result, Placement) and len(result.gpu_indices) == 2
    index = result.node_index
    assert engine.cluster.full_gpus[index] == small_market[index].gpu_count - 2
    engine.release(result)
    assert engine.cluster.full_gpus[index] == small_market[index].gpu_count
    assert engine.cluster.cpu_free[index] == engine.cluster.cpu_cap[index]


def test_unmatched_order_explains_each_rejection_in_plain_sentences(small_market, network, catalog):
    a100 = catalog.by_name("nvidia-a100-sxm4-80gb").code
    engine = Engine(small_market, network=network)
    order = Order("o2", 4000, 8192, num_gpu=1, gpu_milli=1000, gpu_models=(a100,), access_point=9,
                  max_latency_ms=10.0, max_price_per_hour=25 * 10**16)
    result = engine.place(order)
    assert isinstance(result, Unplaced)
    text = result.explanation.text
    assert "3 nodes lack the GPU you asked for (nvidia-a100-sxm4-80gb)" in text
    assert "1 node is farther than 10 ms" in text
    assert "1 node is over your price" in text
    assert sum(r.count for r in result.explanation.rejections) == len(small_market)
    assert result.explanation.reason_for("op-t4").startswith("rejected by gpu_type")


def test_latency_sla_picks_the_near_node_and_price_prefers_the_cheaper(small_market, network):
    engine = Engine(small_market, network=network, profile="cheapest")
    near = engine.place(Order("near", 1000, 1024, num_gpu=1, gpu_milli=1000, access_point=0, max_latency_ms=6.0))
    assert isinstance(near, Placement) and near.node_id in {"op-a100", "op-t4"}
    cheap = engine.place(Order("cheap", 1000, 1024, num_gpu=1, gpu_milli=500))
    assert isinstance(cheap, Placement) and cheap.node_id == "prov-t4"


def test_stage_one_serves_only_the_operators_nodes(small_market, network):
    engine = Engine(small_market, network=network, stage=StagePolicy(stage=1, operator="operator"))
    for i in range(6):
        result = engine.place(Order(f"o{i}", 1000, 1024, num_gpu=1, gpu_milli=1000))
        assert isinstance(result, Placement) and result.node_id.startswith("op-")
    stage2 = Engine(small_market, stage=StagePolicy(stage=2, operator="operator", cloud="cloud"))
    assert {small_market[i].owner for i in stage2.feasible(Order("x", 1000, 1024))} == {"operator", "cloud"}


def test_minimum_tier_and_reliability_floor_filter_nodes(small_market):
    profile = Profile("strict", ("reliability", "tier", "resource_fit"), (("fgd", 1.0),),
                      {"reliability": {"min_reliability": 0.9}})
    engine = Engine(small_market, profile=profile)
    ids = {small_market[i].id for i in engine.feasible(Order("t", 1000, 1024, min_tier=Tier.LARGE))}
    assert ids == {"op-a100", "cloud-a100"}
    explanation = engine.explain(Order("t", 1000, 1024, min_tier=Tier.LARGE))
    assert "1 node has a delivery record below 90%" in explanation.text


def test_a_failed_bind_undoes_the_reservation(small_market):
    from suanwang.errors import InfeasibleError

    def refuse(placement):
        raise InfeasibleError("the node's scheduler is down")

    engine = Engine(small_market, bind=refuse)
    result = engine.place(Order("o", 1000, 1024, num_gpu=1, gpu_milli=1000))
    assert isinstance(result, Unplaced) and "scheduler is down" in result.explanation.text
    assert engine.cluster.gpu_allocated_milli() == 0 and not engine.placements


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (Order("bad", -1, 10), "bad:cpu_milli"),
        (Order("bad", 1000, 10, num_gpu=1, gpu_milli=0), "bad:gpu_milli"),
        (Order("bad", 1000, 10, num_gpu=2, gpu_milli=500), "bad:gpu_milli"),
        (Order("bad", 10**9, 10), "bad:cpu_milli"),
        (Order("bad", 1000, 10, max_latency_ms=5.0), "bad:access_point"),
        (Order("bad", 1000, 10, num_gpu=1, gpu_models=(0,)), "bad:gpu_models"),
    ],
)
def test_bad_orders_are_refused_naming_the_field(small_market, order, field):
    with pytest.raises(InputError) as caught:
        Engine(small_market).place(order)
    assert caught.value.field == field


def test_unknown_gpu_model_names_the_known_codes(small_market):
    with pytest.raises(NotFoundError, match=r"codes run 1\.\."):
        Engine(small_market).place(Order("x", 1000, 10, num_gpu=1, gpu_models=(4242,)))


def test_unknown_plugin_in_a_profile_is_refused():
    with pytest.raises(NotFoundError, match="unknown plugin"):
        Profile("p", ("resource_fit",), (("magic", 1.0),))


def test_fgd_avoids_leaving_a_share_that_the_workload_cannot_use(catalog):
    t4 = catalog.by_name("nvidia-t4").code
    nodes = [Node("whole", 32000, 65536, 1, t4), Node("half-used", 32000, 65536, 1, t4)]
    workload = Workload.from_orders([Order(f"w{i}", 1000, 1024, num_gpu=1, gpu_milli=1000) for i in range(3)]
                                    + [Order("h", 1000, 1024, num_gpu=1, gpu_milli=500)])
    engine = Engine(nodes, profile="fgd", workload=workload)
    engine.commit(Order("first", 1000, 1024, num_gpu=1, gpu_milli=500), 1, (0,))
    result = engine.place(Order("second", 1000, 1024, num_gpu=1, gpu_milli=500))
    assert isinstance(result, Placement) and result.node_id == "half-used"


def _trace_slice(tmp_path, rows=300):
    data = shared_data_dir() / "openb"
    nodes = (data / "openb_node_list_all_node.csv").read_text().splitlines()
    pods = (data / "openb_pod_list_default.csv").read_text().splitlines()
    node_path, pod_path = tmp_path / "nodes.csv", tmp_path / "pods.csv"
    node_path.write_text("\n".join([nodes[0], *nodes[1:: 1523 // 80]]) + "\n")
    pod_path.write_text("\n".join(pods[: rows + 1]) + "\n")
    return node_path, pod_path


@pytest.mark.parametrize("policy", ["random", "best_fit", "dot_product", "gpu_packing", "fgd", "default"])
def test_replay_of_a_trace_slice_reports_an_allocation_rate(tmp_path, policy):
    node_path, pod_path = _trace_slice(tmp_path)
    result = replay(openb_nodes(load_nodes(node_path)), openb_orders(load_pods(pod_path)), policy)
    assert 0.3 < result.allocation_rate <= 1.0
    assert result.arrived_gpu_milli >= result.gpu_capacity_milli


def test_match_trace_cli_prints_json(tmp_path):
    node_path, pod_path = _trace_slice(tmp_path, rows=100)
    out = CliRunner().invoke(cli, ["match-trace", "--nodes", str(node_path), "--pods", str(pod_path),
                                   "--policy", "fgd", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert {"allocation_rate", "fragmentation_rate", "placements_per_s"} <= set(report)


def test_match_trace_cli_names_a_bad_row(tmp_path):
    node_path, pod_path = _trace_slice(tmp_path, rows=5)
    lines = pod_path.read_text().splitlines()
    lines[3] = lines[3].replace(",1,", ",1,", 1).rsplit(",", 7)[0].rsplit(",", 1)[0] + ",-7," + ",".join(
        lines[3].split(",")[4:])
    pod_path.write_text("\n".join(lines) + "\n")
    out = CliRunner().invoke(cli, ["match-trace", "--nodes", str(node_path), "--pods", str(pod_path)])
    assert out.exit_code != 0 and "pods.csv:4:" in out.output


def test_batch_candidates_look_past_nodes_earlier_orders_filled(catalog):
    # One GPU per node; every order's cheapest node is the same, yet with K = 1 all are matched.
    t4 = catalog.by_name("nvidia-t4").code
    nodes = [Node(f"n{i}", 8000, 32 * 1024, 1, t4, price_per_cu_hour=(i + 1) * 10**15) for i in range(6)]
    orders = [Order(f"o{i}", 1000, 1024, num_gpu=1) for i in range(6)]
    result = Engine(nodes).clear_batch(orders, k=1)
    assert result.matched == 6
    assert sorted(p.node_id for p in result.placements) == [f"n{i}" for i in range(6)]
