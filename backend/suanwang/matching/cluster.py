"""Per-node state as numpy arrays, updated incrementally as orders are placed and released.

Every placement touches one node: its free CPU, memory and per-GPU free shares change, and
its ``version`` is bumped so that caches keyed on node state (fragmentation) refresh that
node alone instead of rescoring the world.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from suanwang.compute.catalog import Catalog
from suanwang.compute.measure import device_units, grade, node_units, thread_units
from suanwang.compute.units import GPU_MILLI_PER_GPU, MILLI_PER_CU
from suanwang.errors import InputError
from suanwang.matching.model import Node, validate_node

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class ClusterState:
    """Capacities, free resources and static attributes of every node, index-aligned."""

    def __init__(self, nodes: Sequence[Node], catalog: Catalog) -> None:
        if not nodes:
            raise InputError("the cluster has no nodes", field="nodes")
        seen: set[str] = set()
        for node in nodes:
            validate_node(node, catalog)
            if node.id in seen:
                raise InputError(f"node id {node.id!r} appears twice", field=f"{node.id}:id")
            seen.add(node.id)
        self.nodes = list(nodes)
        self.catalog = catalog
        self.node_ids = [n.id for n in nodes]
        self.size = n = len(nodes)
        self.max_gpus = max(1, max(node.gpu_count for node in nodes))
        self.cpu_cap = np.array([x.cpu_milli for x in nodes], dtype=np.int64)
        self.mem_cap = np.array([x.memory_mib for x in nodes], dtype=np.int64)
        self.gpu_count = np.array([x.gpu_count for x in nodes], dtype=np.int64)
        self.gpu_cap_milli = self.gpu_count * GPU_MILLI_PER_GPU
        self.gpu_model = np.array([x.gpu_model for x in nodes], dtype=np.int64)
        self.router = np.array([-1 if x.router is None else x.router for x in nodes], dtype=np.int64)
        self.price = np.array([float(x.price_per_cu_hour) for x in nodes])
        self.reliability = np.array([x.reliability for x in nodes])
        owners = sorted({x.owner for x in nodes})
        self.owner_names = owners
        owner_index = {name: i for i, name in enumerate(owners)}
        self.owner = np.array([owner_index[x.owner] for x in nodes], dtype=np.int64)

        reference_cpu = catalog.openb_cpu.code
        tiers = np.empty(n, dtype=np.int64)
        self.cpu_cu_per_core = np.empty(n)  # composite CU per 1000 milli-CPU
        self.gpu_cu_per_gpu = np.zeros(n)  # composite CU per whole GPU
        for i, x in enumerate(nodes):
            cpu_model = x.cpu_model or reference_cpu
            units = node_units(
                catalog, cpu_model=cpu_model, vcpus=x.cpu_milli / 1000, gpu_model=x.gpu_model, gpu_count=x.gpu_count
            )
            tiers[i] = int(x.tier) if x.tier is not None else int(grade(units))
            self.cpu_cu_per_core[i] = thread_units(catalog.by_code(cpu_model)).composite / MILLI_PER_CU
            if x.gpu_count:
                self.gpu_cu_per_gpu[i] = device_units(catalog.by_code(x.gpu_model)).composite / MILLI_PER_CU
        self.tier = tiers

        self.cpu_free = self.cpu_cap.copy()
        self.mem_free = self.mem_cap.copy()
        self.gpu_free = np.zeros((n, self.max_gpus), dtype=np.int64)
        for i, x in enumerate(nodes):
            self.gpu_free[i, : x.gpu_count] = GPU_MILLI_PER_GPU
        self.full_gpus = self.gpu_count.copy()
        self.max_gpu_free = self.gpu_free.max(axis=1)
        self.gpu_free_total = self.gpu_free.sum(axis=1)
        self.version = np.zeros(n, dtype=np.int64)

    # ------------------------------------------------------------------ fit
    def fits(self, cpu: int, mem: int, num_gpu: int, share: int) -> BoolArray:
        """Nodes with room for the demand now (vectorised over all nodes)."""
        ok: BoolArray = (self.cpu_free >= cpu) & (self.mem_free >= mem)
        if num_gpu:
            ok &= (self.full_gpus >= num_gpu) if share >= GPU_MILLI_PER_GPU else (self.max_gpu_free >= share)
        return ok

    def choose_gpus(self, index: int, num_gpu: int, share: int) -> tuple[int, ...] | None:
        """The GPUs an order takes on node ``index``: best fit, the fullest GPU that still fits first."""
        if not num_gpu:
            return ()
        row = self.gpu_free[index, : self.gpu_count[index]]
        usable = [(int(free), g) for g, free in enumerate(row) if free >= share]
        if len(usable) < num_gpu:
            return None
        usable.sort()
        return tuple(sorted(g for _, g in usable[:num_gpu]))

    # ------------------------------------------------------------------ change
    def _refresh(self, index: int) -> None:
        row = self.gpu_free[index]
        self.full_gpus[index] = int((row == GPU_MILLI_PER_GPU).sum())
        self.max_gpu_free[index] = int(row.max())
        self.gpu_free_total[index] = int(row.sum())
        self.version[index] += 1

    def take(self, index: int, cpu: int, mem: int, gpus: tuple[int, ...], share: int) -> None:
        if (
            self.cpu_free[index] < cpu
            or self.mem_free[index] < mem
            or any(self.gpu_free[index, g] < share for g in gpus)
        ):
            raise InputError(f"node {self.node_ids[index]} has no room for this placement", field="placement")
        self.cpu_free[index] -= cpu
        self.mem_free[index] -= mem
        for g in gpus:
            self.gpu_free[index, g] -= share
        self._refresh(index)

    def give_back(self, index: int, cpu: int, mem: int, gpus: tuple[int, ...], share: int) -> None:
        if (
            self.cpu_free[index] + cpu > self.cpu_cap[index]
            or self.mem_free[index] + mem > self.mem_cap[index]
            or any(self.gpu_free[index, g] + share > GPU_MILLI_PER_GPU for g in gpus)
        ):
            raise InputError(f"releasing more than node {self.node_ids[index]} has lent", field="placement")
        self.cpu_free[index] += cpu
        self.mem_free[index] += mem
        for g in gpus:
            self.gpu_free[index, g] += share
        self._refresh(index)

    # ------------------------------------------------------------------ metrics
    def gpu_allocated_milli(self) -> int:
        return int(self.gpu_cap_milli.sum() - self.gpu_free_total.sum())

    def active(self) -> BoolArray:
        """Nodes with anything allocated."""
        active: BoolArray = (self.cpu_free < self.cpu_cap) | (self.gpu_free_total < self.gpu_cap_milli)
        return active
