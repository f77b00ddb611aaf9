"""Measurement functions (device -> compute units per class of work) and node grading.

Definitions of the units are in ``suanwang.compute.units``. Tier thresholds are on the
composite floating-point capacity of a whole node, in CU (1 CU = 1000 mCU):

====================  ===============  ==================================================
tier                  composite CU     typical node (figures from the catalog)
====================  ===============  ==================================================
0 small               < 100            CPU-only servers (2x 40-core Xeon 8380 is ~24 CU);
                                       one T4 inference card (~69 CU)
1 medium              100 .. < 1,000   one to four data-centre GPUs (1x A100 ~331 CU,
                                       4x V100 ~562 CU, 2x L40S ~815 CU)
2 large               1,000 .. < 5,000 8-GPU training servers of the V100/A100 generation
                                       (8x V100 ~1,125 CU, 8x A100 ~2,650 CU, 4x H100)
3 super-large         >= 5,000         8-GPU servers of the H100/H200/MI300X generation
                                       (8x H100 ~8,456 CU, 8x MI300X ~11,770 CU)
====================  ===============  ==================================================

Why these cuts: each tier is roughly a decade of floating-point capacity, and each cut
falls between hardware generations or server classes, so that a buyer choosing a tier
chooses a class of job: "small" runs services and CPU batch work, "medium" fine-tuning
and inference, "large" training of mid-sized models, "super-large" large-model training.
"""

from __future__ import annotations

from suanwang.compute.catalog import Catalog, Device
from suanwang.compute.units import MILLI_PER_CU, ComputeUnits, Tier

TIER_THRESHOLDS_CU: tuple[tuple[Tier, float], ...] = (
    (Tier.SUPER_LARGE, 5000.0),
    (Tier.LARGE, 1000.0),
    (Tier.MEDIUM, 100.0),
)


def _cu(value: float) -> int:
    return round(value * MILLI_PER_CU)


def device_units(device: Device) -> ComputeUnits:
    """Compute units of one whole device (all its cores, for a CPU)."""
    fp64 = device.fp64 or 0.0
    fp32 = device.fp32 or 0.0
    fp16 = device.fp16 or 0.0
    int8 = device.int8 or 0.0
    logic = device.cores * device.base_ghz if device.kind == "cpu" else 0.0
    parallel = 0.5 * fp32 + fp64
    neural = max(fp16, int8 / 2.0, fp32)
    return ComputeUnits(logic=_cu(logic), parallel=_cu(parallel), neural=_cu(neural))


def thread_units(device: Device) -> ComputeUnits:
    """Compute units of one hardware thread (a vCPU) of a CPU."""
    if device.kind != "cpu" or device.threads <= 0:
        raise ValueError(f"{device.name} is not a CPU with a thread count")
    whole = device_units(device)
    return ComputeUnits(whole.logic // device.threads, whole.parallel // device.threads, whole.neural // device.threads)


def node_units(
    catalog: Catalog, *, cpu_model: int, vcpus: float, gpu_model: int = 0, gpu_count: int = 0
) -> ComputeUnits:
    """Compute units of a node with ``vcpus`` threads of ``cpu_model`` and ``gpu_count`` accelerators."""
    units = thread_units(catalog.by_code(cpu_model)).scaled(vcpus)
    if gpu_count:
        units = units + device_units(catalog.by_code(gpu_model)).scaled(gpu_count)
    return units


def grade(units: ComputeUnits) -> Tier:
    """The tier of a node with these compute units (thresholds in the module docstring)."""
    composite_cu = units.composite / MILLI_PER_CU
    for tier, threshold in TIER_THRESHOLDS_CU:
        if composite_cu >= threshold:
            return tier
    return Tier.SMALL
