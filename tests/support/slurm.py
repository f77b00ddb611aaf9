"""A real one-host Slurm cluster for the tests (tools/slurm/cluster.py), started once per session and stopped after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tools" / "slurm" / "cluster.py"
NODES = [
    "n1:cpus=2,mem=4000",
    "n2:cpus=2,mem=4000,gpu=a100:2,shards=8",  # 4 shards per GPU
    "n3:cpus=1,mem=1000,features=ssd",
    "n4:cpus=1,mem=1000",  # set DOWN before a submit
    "n5:cpus=1,mem=1000",  # set DOWN under a running job
]
MIN_JOB_AGE_S = 2  # Slurm forgets finished jobs quickly, so the tests see status answered from the exit files
SLURM_BINARIES = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "scontrol",
    "scancel",
    "sinfo",
    "sacct",
    "slurmdbd",
    "mariadbd",
)
INSTALL = "apt-get install -y slurm-wlm munge slurmdbd mariadb-server"

T = TypeVar("T")


@dataclass(frozen=True)
class SlurmCluster:
    dir: Path
    slurm_conf: Path
    confinement: str | None = None
    """The cgroup plugin the harness found usable (``cgroup/v1``, ``cgroup/v2``), or None."""
    confinement_detail: str = ""
    """What the harness probed: why there is no confinement when there is none."""

    def scontrol(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["scontrol", *args],
            env={**os.environ, "SLURM_CONF": str(self.slurm_conf)},
            capture_output=True,
            text=True,
            timeout=30,
        )


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 60.0) -> T:
    """Polls ``probe`` until it returns something truthy; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; last value {value!r}")
        time.sleep(0.2)


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HARNESS), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [b for b in SLURM_BINARIES if shutil.which(b, path=path) is None]
    if missing:
        pytest.fail(
            f"Slurm tests need {', '.join(missing)}: install them with `{INSTALL}` (make test does this as root)",
            pytrace=False,
        )
    if os.geteuid() != 0:
        pytest.fail("Slurm tests run an emulated cluster whose slurmd runs as root; run them as root", pytrace=False)
    directory = tmp_path_factory.mktemp("slurm")
    started = None
    for attempt in range(8):
        base_port = 20000 + (os.getpid() * 7 + attempt * 97) % 20000
        started = _harness(
            "start",
            "--dir",
            str(directory),
            "--base-port",
            str(base_port),
            "--min-job-age",
            str(MIN_JOB_AGE_S),
            "--nodes",
            *NODES,
        )
        if started.returncode == 0 or "in use" not in started.stderr:
            break
    assert started is not None
    if started.returncode != 0:
        _harness("stop", "--dir", str(directory))
        pytest.fail(f"the test Slurm cluster did not start: {started.stderr.strip()}", pytrace=False)
    try:
        info = json.loads(started.stdout)
        confined = None if str(info["confinement"]).startswith("none") else str(info["confinement"])
        yield SlurmCluster(directory, Path(info["slurm_conf"]), confined, str(info["confinement_detail"]))
    finally:
        stopped = _harness("stop", "--dir", str(directory))
        left = json.loads(_harness("status", "--dir", str(directory)).stdout)
        assert stopped.returncode == 0, stopped.stderr
        assert not left["running"], f"Slurm processes of {directory} still run after stop"
