"""Units, tiers and codes shared by the compute model, the matcher and the contracts.

- Compute is counted in unsigned integer milli-compute-units (mCU) per class of work
  (seed section 2.2.1): logic (scalar and integer work), parallel (FP32/FP64 vector work)
  and neural (tensor FP16/BF16/INT8 work). One compute unit (1 CU = 1000 mCU) is:

  * logic: one core at 1 GHz base clock (a core-GHz). A hardware thread (vCPU) counts as
    cores x GHz / threads. Accelerators have no logic units: their host CPU does that work.
  * parallel: 1 TFLOPS of FP32-equivalent vector throughput, with
    parallel = 0.5 x FP32 + 1.0 x FP64 (TFLOPS). For a CPU or an HPC GPU whose FP64 rate is
    half its FP32 rate this equals the FP32 rate; a part with little FP64 counts half its FP32.
  * neural: 1 TFLOPS of dense FP16/BF16 tensor throughput, with
    neural = max(FP16, INT8 / 2, FP32) (INT8 TOPS count half, a device without tensor units
    still runs networks at its FP32 rate).

- The composite used for grading is the floating-point capacity parallel + neural (the
  seed grades by floating-point capability; logic is reported but not graded).
- Tier: 0 small, 1 medium, 2 large, 3 super-large (see ``grading``).
- GPU model: a uint16 code into the device catalog (``catalog.yaml``), 0 = none.
- GPU shares: one GPU is 1000 milli-GPU (as in the OpenB trace's ``gpu_milli``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import NewType

MilliCU = NewType("MilliCU", int)
GpuModelCode = NewType("GpuModelCode", int)

NO_GPU_MODEL = GpuModelCode(0)
MAX_GPU_MODEL_CODE = 0xFFFF
MILLI_PER_CU = 1000
GPU_MILLI_PER_GPU = 1000


class Tier(IntEnum):
    """Node grade by floating-point capacity (PRODUCT.md shared data model)."""

    SMALL = 0
    MEDIUM = 1
    LARGE = 2
    SUPER_LARGE = 3


class WorkClass(StrEnum):
    LOGIC = "logic"
    PARALLEL = "parallel"
    NEURAL = "neural"


@dataclass(frozen=True, slots=True)
class ComputeUnits:
    """Compute capacity per class of work, in mCU (unsigned integers)."""

    logic: int = 0
    parallel: int = 0
    neural: int = 0

    def __post_init__(self) -> None:
        if min(self.logic, self.parallel, self.neural) < 0:
            raise ValueError(f"compute units must be non-negative, got {self}")

    @property
    def composite(self) -> int:
        """Floating-point capacity (parallel + neural) in mCU: the quantity tiers grade."""
        return self.parallel + self.neural

    def __add__(self, other: ComputeUnits) -> ComputeUnits:
        return ComputeUnits(self.logic + other.logic, self.parallel + other.parallel, self.neural + other.neural)

    def scaled(self, factor: float) -> ComputeUnits:
        """These units times ``factor`` (e.g. a GPU share), rounded down to whole mCU."""
        if factor < 0:
            raise ValueError(f"scale factor must be non-negative, got {factor}")
        return ComputeUnits(int(self.logic * factor), int(self.parallel * factor), int(self.neural * factor))

    def of(self, work: WorkClass) -> int:
        return {WorkClass.LOGIC: self.logic, WorkClass.PARALLEL: self.parallel, WorkClass.NEURAL: self.neural}[work]
