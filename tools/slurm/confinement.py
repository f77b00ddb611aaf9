"""Which cgroup confinement the emulated nodes' slurmd can use on this host, probed rather than assumed.

Slurm confines a job (cores, RAM, devices) through cgroups: ``ProctrackType=proctrack/cgroup`` and
``TaskPlugin=task/cgroup`` with cgroup.conf's ``Constrain*`` options (cgroup.conf(5)). Its cgroup/v1
plugin needs the cpuset, memory, devices and freezer hierarchies mounted and writable; cgroup/v2 needs a
pure cgroup2 mount with the cpuset and memory controllers, and, without systemd, ``IgnoreSystemd=yes``
(cgroup.conf(5), 22.05). A hybrid mount (v1 controllers plus a controller-less cgroup2) is v1 to Slurm:
forcing cgroup/v2 there fails with "Hybrid mode is not supported" (../shared/docs/SLURM.md).

When neither works (a container without a writable cgroup tree), the cluster falls back to
``task/none``: the executor then limits memory with setrlimit in the job wrapper (RLIMIT_AS), and cores
and devices are not confined. ``probe`` says exactly what failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpuset", "memory", "devices", "freezer")
V2_CONTROLLERS = ("cpuset", "memory")


@dataclass(frozen=True)
class Confinement:
    plugin: str | None
    """``cgroup/v1``, ``cgroup/v2``, or None when neither is usable."""
    detail: str
    """What the probe found: the plugin's evidence, or every failure in words."""

    @property
    def slurm_conf_lines(self) -> list[str]:
        if self.plugin is None:
            return ["ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none"]
        return ["ProctrackType=proctrack/cgroup", "TaskPlugin=task/cgroup"]

    def cgroup_conf(self) -> str | None:
        if self.plugin is None:
            return None
        lines = [
            f"CgroupPlugin={self.plugin}",
            f"CgroupMountpoint={CGROUP_ROOT}",
            "ConstrainCores=yes",
            "ConstrainRAMSpace=yes",
            "AllowedRAMSpace=100",
            # RAM plus swap capped at the RAM bought: with swap on the host, a job could otherwise page out.
            "ConstrainSwapSpace=yes",
            "AllowedSwapSpace=0",
            "ConstrainDevices=yes",
        ]
        if self.plugin == "cgroup/v2":
            lines.append("IgnoreSystemd=yes")  # no systemd here to delegate a scope to slurmd
        return "\n".join(lines) + "\n"


def probe(root: Path = CGROUP_ROOT) -> Confinement:
    failures = []
    if _mount_type(root) == "cgroup2":
        problem = _writable(root, V2_CONTROLLERS, v2=True)
        if problem is None:
            return Confinement("cgroup/v2", f"{root} is a cgroup2 mount with {', '.join(V2_CONTROLLERS)}")
        failures.append(f"cgroup/v2: {problem}")
    else:
        problem = _writable(root, V1_CONTROLLERS, v2=False)
        if problem is None:
            return Confinement("cgroup/v1", f"v1 hierarchies {', '.join(V1_CONTROLLERS)} under {root} are writable")
        failures.append(f"cgroup/v1: {problem}")
        if _mount_type(root / "unified") == "cgroup2":
            failures.append(f"cgroup/v2: {root}/unified is the cgroup2 half of a hybrid mount (Slurm refuses hybrid)")
    return Confinement(None, "; ".join(failures))


def _mount_type(path: Path) -> str | None:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    found = None
    for line in mounts:
        fields = line.split()
        if len(fields) >= 3 and fields[1] == str(path):
            found = fields[2]  # the last mount on a path is the visible one
    return found


def _writable(root: Path, controllers: tuple[str, ...], *, v2: bool) -> str | None:
    """None when a cgroup can be made in each place Slurm needs; else what failed."""
    if v2:
        try:
            offered = (root / "cgroup.controllers").read_text().split()
        except OSError as exc:
            return f"cannot read {root}/cgroup.controllers ({exc.strerror})"
        missing = [c for c in controllers if c not in offered]
        if missing:
            return f"controllers {', '.join(missing)} are not offered in {root}/cgroup.controllers"
        places = [root]
    else:
        missing = [c for c in controllers if _mount_type(root / c) != "cgroup"]
        if missing:
            return f"{', '.join(str(root / c) for c in missing)} not mounted as cgroup v1"
        places = [root / c for c in controllers]
    for place in places:
        trial = place / f"suanwang-probe-{os.getpid()}"
        try:
            trial.mkdir()
            trial.rmdir()
        except OSError as exc:
            return f"cannot create a cgroup in {place} ({exc.strerror})"
    return None
