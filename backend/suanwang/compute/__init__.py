"""Compute model: device catalog, unified compute units per class of work, tiers, OpenB loader.

Pure domain code (no I/O beyond reading the shipped catalog and trace files it is given).
"""

from suanwang.compute.catalog import Catalog, Device, default_catalog
from suanwang.compute.measure import device_units, grade, node_units, thread_units
from suanwang.compute.units import (
    GPU_MILLI_PER_GPU,
    NO_GPU_MODEL,
    ComputeUnits,
    GpuModelCode,
    MilliCU,
    Tier,
    WorkClass,
)

__all__ = [
    "GPU_MILLI_PER_GPU",
    "NO_GPU_MODEL",
    "Catalog",
    "ComputeUnits",
    "Device",
    "GpuModelCode",
    "MilliCU",
    "Tier",
    "WorkClass",
    "default_catalog",
    "device_units",
    "grade",
    "node_units",
    "thread_units",
]
