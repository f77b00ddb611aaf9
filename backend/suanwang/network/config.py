"""Build a Network from topology files and a peering file (YAML), as the CLI and the services do.

Peering file format (see ``peering/global-research-and-transit.yaml``)::

    operators:
      - topology: Cernet            # a Topology Zoo stem (under <shared data>/topologyzoo) or a path
        name: Cernet                # optional; defaults to the file's stem
        transit_price_per_gbps_hour: "2000000000000000"   # token base units, decimal string or int
    peering:
      - {a: Cernet/Europe, b: Geant2012/UK, capacity_gbps: 10}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from suanwang.errors import InputError, SuanwangError
from suanwang.network.model import Network, Operator, Peering
from suanwang.network.topology import load_graphml
from suanwang.paths import shared_data_dir

DEFAULT_TRANSIT_PRICE_PER_GBPS_HOUR = 10**15  # 0.001 token per Gbps-hour per link
PEERING_DIR = Path(__file__).resolve().parent / "peering"


def resolve_topology(name: str | Path) -> Path:
    """A path as given if it exists, else a Topology Zoo stem or file name in the shared data."""
    path = Path(name)
    if path.exists():
        return path
    zoo = shared_data_dir() / "topologyzoo"
    for candidate in (zoo / path.name, zoo / f"{path.name}.graphml"):
        if candidate.exists():
            return candidate
    available = sorted(p.stem for p in zoo.glob("*.graphml")) if zoo.is_dir() else []
    raise InputError(
        f"topology {str(name)!r} not found (as a path or in {zoo}); available: {', '.join(available) or 'none'}",
        field="topology",
    )


def _price(value: Any, where: str) -> int:
    try:
        price = int(str(value))
    except ValueError:
        raise InputError(
            f"{where}: transit price {value!r} is not an integer of token base units",
            field="transit_price_per_gbps_hour",
        ) from None
    if price < 0:
        raise InputError(f"{where}: transit price must be >= 0", field="transit_price_per_gbps_hour")
    return price


def load_peering_file(path: str | Path) -> Network:
    path = Path(path)
    if not path.exists() and (PEERING_DIR / path.name).exists():
        path = PEERING_DIR / path.name
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        shipped = ", ".join(p.name for p in sorted(PEERING_DIR.glob("*.yaml")))
        raise InputError(f"peering file {path} does not exist; shipped: {shipped}", field="peering") from None
    except OSError as exc:
        raise InputError(f"cannot read the peering file {path}: {exc.strerror}", field="peering") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text: {exc}", field="peering") from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise InputError(f"{path}:{line}: not valid YAML: {exc.problem}", field="peering") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {exc}".replace("\n", " "), field="peering") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("operators"), list):
        raise InputError(
            f"{path}: expected a mapping with an 'operators' list (and optional 'peering')", field="peering"
        )
    operators = []
    for i, entry in enumerate(doc["operators"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("topology"), str):
            raise InputError(
                f"{path}: operators[{i}] needs a 'topology' (a Topology Zoo name or path)", field="peering"
            )
        try:
            topo_path = resolve_topology(entry["topology"])
            name = str(entry.get("name") or topo_path.stem)
            topology = load_graphml(topo_path, name)
        except InputError as exc:
            raise InputError(f"{path}: operators[{i}].topology: {exc.message}", field="peering") from None
        operators.append(
            Operator(
                name,
                topology,
                _price(
                    entry.get("transit_price_per_gbps_hour", DEFAULT_TRANSIT_PRICE_PER_GBPS_HOUR), f"{path}: {name}"
                ),
            )
        )
    peerings = []
    if not isinstance(doc.get("peering") or [], list):
        raise InputError(f"{path}: 'peering' must be a list of {{a, b, capacity_gbps}}", field="peering")
    for i, entry in enumerate(doc.get("peering") or []):
        if not isinstance(entry, dict) or not {"a", "b", "capacity_gbps"} <= set(entry):
            raise InputError(f"{path}: peering[{i}] needs a, b and capacity_gbps", field="peering")
        capacity = entry["capacity_gbps"]
        if isinstance(capacity, bool) or not isinstance(capacity, int | float):
            raise InputError(
                f"{path}: peering[{i}].capacity_gbps is {capacity!r}: expected a number of Gbps", field="peering"
            )
        peerings.append(Peering(str(entry["a"]), str(entry["b"]), float(capacity)))
    try:
        return Network(operators, peerings)
    except SuanwangError as exc:
        raise InputError(f"{path}: {exc.message}", field="peering") from None


def load_network(files: Sequence[str | Path], peering: str | Path | None = None) -> Network:
    """GraphML files (each one operator at the default transit price), or one peering YAML file."""
    if peering is not None:
        if files:
            raise InputError(
                "give either topology files or a peering file, not both (the peering file lists its topologies)",
                field="topology",
            )
        return load_peering_file(peering)
    if len(files) == 1 and str(files[0]).endswith((".yaml", ".yml")):
        return load_peering_file(files[0])
    if not files:
        raise InputError("no topology given", field="topology")
    operators = []
    for f in files:
        p = resolve_topology(f)
        operators.append(Operator(p.stem, load_graphml(p), DEFAULT_TRANSIT_PRICE_PER_GBPS_HOUR))
    return Network(operators)
