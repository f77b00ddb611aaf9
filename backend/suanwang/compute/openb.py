"""Loader for the OpenB GPU-cluster trace (Alibaba cluster-trace-gpu-v2023, Weng et al. ATC 2023).

Rows are validated one by one; a bad row raises :class:`~suanwang.errors.InputError` (or
:class:`~suanwang.errors.NotFoundError` for an unknown GPU type) whose ``field`` names the
file, line and column, e.g. ``openb_pod_list_default.csv:17:gpu_milli``.
GPU model names map to catalog codes through ``Catalog.openb_code`` (G2/G3: see catalog.yaml).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from suanwang.compute.catalog import Catalog, default_catalog
from suanwang.compute.units import GPU_MILLI_PER_GPU, NO_GPU_MODEL, GpuModelCode
from suanwang.errors import InputError

# Bounds that no real server or task exceeds; beyond them a value is a data error.
MAX_CPU_MILLI = 4_096_000  # 4,096 vCPUs
MAX_MEMORY_MIB = 64 * 1024 * 1024  # 64 TiB
MAX_GPUS = 64

NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
# Every published pod list has these five columns (the multigpu* lists have only them); the others are
# optional: no ``gpu_spec`` means any GPU type, no ``creation_time`` means the file's order.
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
OPTIONAL_POD_COLUMNS = ("gpu_spec", "creation_time")


@dataclass(frozen=True, slots=True)
class OpenbNode:
    sn: str
    cpu_milli: int
    memory_mib: int
    gpu_count: int
    gpu_model: GpuModelCode
    line: int


@dataclass(frozen=True, slots=True)
class OpenbPod:
    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int  # share of each GPU, 1..1000 when num_gpu >= 1, else 0
    gpu_models: tuple[GpuModelCode, ...]  # allowed types, empty = any
    creation_time: int  # the row's index in the file when the list has no creation_time column
    line: int


def _int(row: dict[str, str], column: str, where: str, low: int, high: int) -> int:
    raw = (row.get(column) or "").strip()
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{column} must be an integer, got {raw!r}", field=f"{where}:{column}") from None
    if not low <= value <= high:
        raise InputError(f"{column} must be in {low}..{high}, got {value}", field=f"{where}:{column}")
    return value


def _rows(
    path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[tuple[int, dict[str, str]]]:
    """The data rows with the line each ends on (a quoted cell may span lines). Unreadable files,
    undecodable bytes and CSV syntax errors are InputErrors naming the file and line."""
    line = 1
    try:
        # utf-8-sig: a byte-order mark (as spreadsheet exports write) is not part of the first column's name.
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fieldnames = reader.fieldnames or []
            missing = [c for c in columns if c not in fieldnames]
            expected = [c for c in (*columns, *optional) if c in fieldnames]
            if missing:
                raise InputError(
                    f"{path.name} lacks column(s) {', '.join(missing)}; it has {', '.join(fieldnames) or 'no header'}",
                    field=f"{path.name}:1",
                )
            rows = []
            for row in reader:
                line = reader.line_num
                # DictReader puts surplus cells under the key None; a short row gets None values.
                if None in row or any(row.get(c) is None for c in expected):
                    cells = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
                    raise InputError(
                        f"row has {cells} cells, expected {len(fieldnames)} (an unclosed quote joins rows)",
                        field=f"{path.name}:{line}",
                    )
                rows.append((line, row))
            return rows
    except FileNotFoundError:
        raise InputError(f"trace file {path} does not exist", field=path.name) from None
    except OSError as exc:
        raise InputError(f"cannot read the trace file {path}: {exc.strerror}", field=path.name) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text after line {line}: {exc.reason}", field=f"{path.name}:{line + 1}") from None
    except csv.Error as exc:
        raise InputError(f"not valid CSV: {exc}", field=f"{path.name}:{line + 1}") from None


def load_nodes(path: Path, catalog: Catalog | None = None) -> list[OpenbNode]:
    """Read an OpenB node list (``sn,cpu_milli,memory_mib,gpu,model``)."""
    catalog = catalog or default_catalog()
    nodes = []
    for line, row in _rows(path, NODE_COLUMNS):
        where = f"{path.name}:{line}"
        gpus = _int(row, "gpu", where, 0, MAX_GPUS)
        model_name = row["model"].strip()
        if gpus and not model_name:
            raise InputError(f"a node with {gpus} GPUs must name its model", field=f"{where}:model")
        if not gpus and model_name:
            raise InputError(f"model {model_name!r} given for a node with no GPU", field=f"{where}:model")
        model = catalog.openb_code(model_name, field=f"{where}:model") if gpus else NO_GPU_MODEL
        nodes.append(
            OpenbNode(
                sn=row["sn"].strip() or f"{path.stem}-{line}",
                cpu_milli=_int(row, "cpu_milli", where, 1, MAX_CPU_MILLI),
                memory_mib=_int(row, "memory_mib", where, 1, MAX_MEMORY_MIB),
                gpu_count=gpus,
                gpu_model=model,
                line=line,
            )
        )
    return nodes


def load_pods(path: Path, catalog: Catalog | None = None) -> list[OpenbPod]:
    """Read an OpenB pod list, in file order (sort by ``creation_time`` to replay).

    Any published layout loads: the five columns ``name,cpu_milli,memory_mib,num_gpu,gpu_milli`` are
    required; ``gpu_spec`` (empty or absent: any GPU type) and ``creation_time`` (absent: the file's
    order) are optional, and other columns (``qos``, ``pod_phase``, ...) are ignored.
    """
    catalog = catalog or default_catalog()
    pods = []
    for index, (line, row) in enumerate(_rows(path, POD_COLUMNS, OPTIONAL_POD_COLUMNS)):
        where = f"{path.name}:{line}"
        num_gpu = _int(row, "num_gpu", where, 0, MAX_GPUS)
        gpu_milli = _int(row, "gpu_milli", where, 0, GPU_MILLI_PER_GPU)
        if num_gpu == 0 and gpu_milli:
            raise InputError(f"gpu_milli {gpu_milli} asked with num_gpu 0", field=f"{where}:gpu_milli")
        if num_gpu == 1 and gpu_milli == 0:
            raise InputError("a one-GPU task must ask for a share in 1..1000", field=f"{where}:gpu_milli")
        if num_gpu > 1 and gpu_milli != GPU_MILLI_PER_GPU:
            raise InputError(
                f"a {num_gpu}-GPU task must take whole GPUs (gpu_milli 1000), got {gpu_milli}",
                field=f"{where}:gpu_milli",
            )
        spec = (row.get("gpu_spec") or "").strip()
        models = (
            tuple(sorted({catalog.openb_code(name.strip(), field=f"{where}:gpu_spec") for name in spec.split("|")}))
            if spec
            else ()
        )
        pods.append(
            OpenbPod(
                name=row["name"].strip() or f"{path.stem}-{line}",
                cpu_milli=_int(row, "cpu_milli", where, 0, MAX_CPU_MILLI),
                memory_mib=_int(row, "memory_mib", where, 0, MAX_MEMORY_MIB),
                num_gpu=num_gpu,
                gpu_milli=gpu_milli,
                gpu_models=models,
                creation_time=_int(row, "creation_time", where, 0, 2**62) if "creation_time" in row else index,
                line=line,
            )
        )
    return pods
