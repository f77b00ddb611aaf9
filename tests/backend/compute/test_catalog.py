from pathlib import Path

import pytest

from suanwang.compute import Tier, default_catalog, device_units, grade, node_units
from suanwang.compute.openb import load_nodes, load_pods
from suanwang.errors import InputError, NotFoundError
from suanwang.paths import shared_data_dir

REQUIRED = [
    "nvidia-tesla-p100-pcie-16gb", "nvidia-tesla-v100-sxm2-16gb", "nvidia-t4", "nvidia-a10",
    "nvidia-a100-sxm4-80gb", "nvidia-l4", "nvidia-l40s", "nvidia-h100-sxm5-80gb", "nvidia-h200-sxm-141gb",
    "amd-instinct-mi250x", "amd-instinct-mi300x", "huawei-ascend-910b", "amd-alveo-u250", "amd-alveo-u280",
]


def test_catalog_lists_at_least_25_cited_devices_with_stable_nonzero_codes():
    catalog = default_catalog()
    devices = list(catalog)
    assert len(devices) >= 25
    assert all(d.source for d in devices)
    codes = [d.code for d in devices]
    assert len(set(codes)) == len(codes) and 0 not in codes and max(codes) <= 0xFFFF
    for name in REQUIRED:
        catalog.by_name(name)
    vendors = {d.vendor.split()[0] for d in devices if d.kind == "cpu"}
    assert {"Intel", "AMD"} <= vendors and any("Arm" in d.vendor for d in devices if d.kind == "cpu")
    assert sum(d.kind == "fpga" for d in devices) >= 2


def test_unknown_device_names_what_exists():
    with pytest.raises(NotFoundError, match="known:"):
        default_catalog().by_name("nvidia-b9000")


def test_newer_gpus_measure_more_neural_units_than_older_ones():
    catalog = default_catalog()
    neural = {n: device_units(catalog.by_name(n)).neural for n in ("nvidia-tesla-p100-pcie-16gb", "nvidia-t4",
                                                                   "nvidia-a100-sxm4-80gb", "nvidia-h100-sxm5-80gb")}
    assert neural["nvidia-tesla-p100-pcie-16gb"] < neural["nvidia-t4"] < neural["nvidia-a100-sxm4-80gb"]
    assert neural["nvidia-a100-sxm4-80gb"] < neural["nvidia-h100-sxm5-80gb"]
    assert device_units(catalog.by_name("nvidia-h100-sxm5-80gb")).logic == 0
    assert device_units(catalog.by_name("intel-xeon-platinum-8380")).logic > 0


def test_nodes_are_graded_into_the_four_tiers():
    catalog = default_catalog()
    cpu = catalog.by_name("intel-xeon-platinum-8380").code

    def tier(gpu: str = "", count: int = 0) -> Tier:
        code = catalog.by_name(gpu).code if gpu else 0
        return grade(node_units(catalog, cpu_model=cpu, vcpus=160, gpu_model=code, gpu_count=count))

    assert tier() is Tier.SMALL
    assert tier("nvidia-a100-sxm4-80gb", 1) is Tier.MEDIUM
    assert tier("nvidia-a100-sxm4-80gb", 8) is Tier.LARGE
    assert tier("nvidia-h100-sxm5-80gb", 8) is Tier.SUPER_LARGE


def test_openb_nodes_load_with_every_gpu_model_mapped():
    nodes = load_nodes(shared_data_dir() / "openb" / "openb_node_list_all_node.csv")
    assert len(nodes) == 1523
    catalog = default_catalog()
    assert sum(n.gpu_count for n in nodes) == 6212
    assert {n.gpu_model for n in nodes if n.gpu_count} == {catalog.openb_code(m) for m in
                                                            ("A10", "G2", "G3", "P100", "T4", "V100M16", "V100M32")}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


POD_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
)


@pytest.mark.parametrize(
    ("row", "field", "error"),
    [
        ("p1,-5,100,0,0,,LS,Running,0,1,0", "pods.csv:3:cpu_milli", InputError),
        ("p1,1000,100,1,1500,,LS,Running,0,1,0", "pods.csv:3:gpu_milli", InputError),
        ("p1,1000,100,1,500,H900,LS,Running,0,1,0", "pods.csv:3:gpu_spec", NotFoundError),
        ("p1,lots,100,0,0,,LS,Running,0,1,0", "pods.csv:3:cpu_milli", InputError),
        ("p1,1000,100,2,500,,LS,Running,0,1,0", "pods.csv:3:gpu_milli", InputError),
        ("p1,1000,100", "pods.csv:3", InputError),
        ("p1,1000,999999999999,0,0,,LS,Running,0,1,0", "pods.csv:3:memory_mib", InputError),
    ],
)
def test_bad_trace_rows_name_the_row_and_field(tmp_path, row, field, error):
    good = "p0,1000,100,1,500,T4,LS,Running,0,1,0\n"
    path = _write(tmp_path, "pods.csv", POD_HEADER + good + row + "\n")
    with pytest.raises(error) as caught:
        load_pods(path)
    assert caught.value.field == field


def test_bad_node_rows_name_the_row_and_field(tmp_path):
    path = _write(tmp_path, "nodes.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,1024,2,X100\n")
    with pytest.raises(NotFoundError) as caught:
        load_nodes(path)
    assert caught.value.field == "nodes.csv:2:model"
    path = _write(tmp_path, "nodes.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,1024,2,\n")
    with pytest.raises(InputError) as caught:
        load_nodes(path)
    assert caught.value.field == "nodes.csv:2:model"
