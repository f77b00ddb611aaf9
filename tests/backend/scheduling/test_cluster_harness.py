"""tools/slurm/cluster.py without a cluster: node specs, the generated configuration, missing packages."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[3] / "tools" / "slurm" / "cluster.py"
spec = importlib.util.spec_from_file_location("slurm_cluster_harness", HARNESS)
assert spec is not None and spec.loader is not None
cluster = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = cluster  # dataclasses look their module up by name
spec.loader.exec_module(cluster)


def test_node_spec_with_gpus_gets_gpu_features() -> None:
    node = cluster.parse_node("n2:cpus=2,mem=4000,gpu=a100:2,features=ssd+fast")
    assert (node.name, node.cpus, node.memory_mib, node.gpu_type, node.gpus) == ("n2", 2, 4000, "a100", 2)
    assert node.all_features() == ("gpu", "gpu_a100", "ssd", "fast")


@pytest.mark.parametrize("text", ["N1:cpus=2", "n1:cpu=2", "n1:cpus=x", "n1:cpus=0", "n1:gpu=A100:1"])
def test_bad_node_spec_is_refused_with_the_accepted_form(text: str) -> None:
    with pytest.raises(cluster.ClusterError):
        cluster.parse_node(text)


def test_configuration_gives_each_node_its_port_features_and_fake_gpus(tmp_path: Path) -> None:
    nodes = [
        cluster.parse_node("n1:cpus=2,mem=2000"),
        cluster.parse_node("n2:cpus=2,mem=2000,gpu=a100:2,shards=8"),
        cluster.parse_node("n3:gpu=h100:1"),
    ]
    info = cluster.ClusterInfo(
        dir=str(tmp_path),
        cluster_name="swtest",
        base_port=23000,
        slurm_conf=str(tmp_path / "slurm.conf"),
        munge_socket=str(tmp_path / "m.sock"),
        min_job_age_s=2,
        nodes=nodes,
    )
    conf = cluster.render_slurm_conf(info, "host")
    assert "SlurmctldPort=23000" in conf and "MinJobAge=2" in conf
    assert "AuthInfo" not in conf  # slurmdbd connections use munge's default socket whatever it says
    assert "NodeName=n1 NodeHostname=host NodeAddr=127.0.0.1 Port=23001" in conf
    assert "Port=23002" in conf and "Feature=gpu,gpu_a100 Gres=gpu:a100:2,shard:8" in conf
    assert "GresTypes=gpu,shard" in conf and "SelectTypeParameters=CR_Core_Memory" in conf
    assert "AccountingStorageType=accounting_storage/slurmdbd" in conf and "AccountingStoragePort=23004" in conf
    assert cluster.render_gres_conf(info).splitlines() == [
        f"NodeName=n2 Name=gpu Type=a100 File={tmp_path}/dev/n2/nvidia[0-1]",
        "NodeName=n2 Name=shard Count=8",
        f"NodeName=n3 Name=gpu Type=h100 File={tmp_path}/dev/n3/nvidia[2-2]",  # minors distinct across nodes
    ]


def test_confinement_probe_names_what_it_found() -> None:
    found = cluster.confinement.probe()
    assert found.plugin in ("cgroup/v1", "cgroup/v2", None)
    assert found.detail
    if found.plugin is None:
        assert found.cgroup_conf() is None and "TaskPlugin=task/none" in found.slurm_conf_lines
    else:
        assert "ConstrainRAMSpace=yes" in (found.cgroup_conf() or "")
        assert "TaskPlugin=task/cgroup" in found.slurm_conf_lines


@pytest.mark.parametrize("text", ["n1:gpu=a100:2,shards=3", "n1:shards=4"])
def test_shards_must_split_evenly_over_gpus(text: str) -> None:
    with pytest.raises(cluster.ClusterError):
        cluster.parse_node(text)


def test_missing_slurm_is_reported_with_the_packages_to_install(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "start", "--dir", str(tmp_path), "--nodes", "n1"],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},
        timeout=60,
    )
    assert proc.returncode == 2
    assert "apt-get install -y slurm-wlm munge slurmdbd mariadb-server" in proc.stderr
    assert "sbatch" in proc.stderr
