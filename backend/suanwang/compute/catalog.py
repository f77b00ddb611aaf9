"""The device catalog: real devices with their vendor peak figures, each citing its spec sheet.

The catalog (``catalog.yaml`` beside this module) is the one source of device names and of
GPU model codes (a stable uint16, 0 = none). Load it once with :func:`default_catalog`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from suanwang.compute.units import MAX_GPU_MODEL_CODE, NO_GPU_MODEL, GpuModelCode
from suanwang.errors import InputError, NotFoundError

DeviceKind = Literal["cpu", "gpu", "npu", "fpga"]
_KINDS = ("cpu", "gpu", "npu", "fpga")
CATALOG_PATH = Path(__file__).with_name("catalog.yaml")


@dataclass(frozen=True, slots=True)
class Device:
    """One device model. Throughput in TFLOPS (TOPS for int8), dense; None = not published."""

    code: GpuModelCode
    name: str
    vendor: str
    kind: DeviceKind
    fp64: float | None
    fp32: float | None
    fp16: float | None
    int8: float | None
    memory_gib: float | None
    source: str
    basis: str = ""
    cores: int = 0
    threads: int = 0
    base_ghz: float = 0.0

    @property
    def is_accelerator(self) -> bool:
        return self.kind != "cpu"


class Catalog:
    """Devices by code and by name, plus the OpenB trace's model-name mapping."""

    def __init__(self, devices: Iterable[Device], openb_models: Mapping[str, str], openb_cpu: str) -> None:
        self._by_code: dict[int, Device] = {}
        self._by_name: dict[str, Device] = {}
        for device in devices:
            if device.code in self._by_code:
                raise InputError(f"device code {device.code} is used twice", field=f"catalog:{device.name}:code")
            if device.name in self._by_name:
                raise InputError(f"device name {device.name!r} is used twice", field=f"catalog:{device.name}")
            self._by_code[device.code] = device
            self._by_name[device.name] = device
        self.openb_models: dict[str, GpuModelCode] = {
            trace_name: self.by_name(name).code for trace_name, name in openb_models.items()
        }
        self.openb_cpu = self.by_name(openb_cpu)

    def __iter__(self) -> Any:
        return iter(sorted(self._by_code.values(), key=lambda d: d.code))

    def __len__(self) -> int:
        return len(self._by_code)

    @property
    def max_code(self) -> int:
        return max(self._by_code)

    def by_code(self, code: int) -> Device:
        try:
            return self._by_code[code]
        except KeyError:
            raise NotFoundError(
                f"no device has code {code}; codes run 1..{self.max_code} (0 means none)", field="gpu_model"
            ) from None

    def by_name(self, name: str) -> Device:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFoundError(
                f"no device is named {name!r}; known: {', '.join(sorted(self._by_name))}", field="gpu_model"
            ) from None

    def openb_code(self, trace_model: str, *, field: str = "model") -> GpuModelCode:
        """The catalog code of an OpenB GPU model name (A10, P100, T4, V100M16, V100M32, G2, G3)."""
        try:
            return self.openb_models[trace_model]
        except KeyError:
            raise NotFoundError(
                f"unknown GPU type {trace_model!r}; the OpenB trace knows {', '.join(sorted(self.openb_models))}",
                field=field,
            ) from None

    def openb_name(self, code: int) -> str:
        """The OpenB model name of a catalog code (the catalog name if the trace has none)."""
        for trace_name, trace_code in self.openb_models.items():
            if trace_code == code:
                return trace_name
        return self.by_code(code).name if code != NO_GPU_MODEL else ""


def _optional_float(entry: Mapping[str, Any], key: str, name: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or value < 0:
        raise InputError(
            f"{key} of {name} must be a non-negative number or null, got {value!r}", field=f"catalog:{name}:{key}"
        )
    return float(value)


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    devices = []
    for entry in data["devices"]:
        name = str(entry["name"])
        code = entry["code"]
        if not isinstance(code, int) or not 1 <= code <= MAX_GPU_MODEL_CODE:
            raise InputError(f"code of {name} must be in 1..{MAX_GPU_MODEL_CODE}", field=f"catalog:{name}:code")
        if entry["kind"] not in _KINDS:
            raise InputError(f"kind of {name} must be one of {_KINDS}", field=f"catalog:{name}:kind")
        if not entry.get("source"):
            raise InputError(f"{name} cites no spec sheet", field=f"catalog:{name}:source")
        devices.append(
            Device(
                code=GpuModelCode(code),
                name=name,
                vendor=str(entry["vendor"]),
                kind=entry["kind"],
                fp64=_optional_float(entry, "fp64", name),
                fp32=_optional_float(entry, "fp32", name),
                fp16=_optional_float(entry, "fp16", name),
                int8=_optional_float(entry, "int8", name),
                memory_gib=_optional_float(entry, "memory_gib", name),
                source=str(entry["source"]),
                basis=str(entry.get("basis", "")),
                cores=int(entry.get("cores", 0)),
                threads=int(entry.get("threads", 0)),
                base_ghz=float(entry.get("base_ghz", 0.0)),
            )
        )
    return Catalog(devices, data["openb_models"], data["openb_cpu"])


@cache
def default_catalog() -> Catalog:
    """The shipped catalog (parsed once per process)."""
    with CATALOG_PATH.open(encoding="utf-8") as f:
        return parse_catalog(yaml.safe_load(f))
