"""One operator's topology, imported from an Internet Topology Zoo GraphML file.

Link latency is the propagation delay over the great-circle distance between the two ends at
5 microseconds per km of fibre (light in silica travels at about c/1.47, i.e. ~204,000 km/s; ITU-T
G.114 uses 5 us/km for planning). Bandwidth comes from the edge's LinkSpeedRaw (bit/s) where the file
has it, else ``DEFAULT_LINK_GBPS``. What the loader had to repair (missing coordinates, duplicate or
missing labels, parallel edges, self loops) is reported in ``Topology.report``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from suanwang.errors import InputError

FIBRE_US_PER_KM = 5.0
EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
DEFAULT_LINK_GBPS = 10.0
_GRAPHML_NS = "{http://graphml.graphdrawing.org/xmlns}"


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two (latitude, longitude) points in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def fibre_latency_ms(km: float) -> float:
    """One-way propagation delay of ``km`` of fibre, in milliseconds."""
    return km * FIBRE_US_PER_KM / 1000.0


@dataclass(frozen=True, slots=True)
class RouterSpec:
    """A router as imported: its unique label, the GraphML node id, and where it stands."""

    label: str
    graphml_id: str
    latitude: float
    longitude: float
    coordinates_imputed: bool


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """An undirected link between router positions ``a`` < ``b`` in ``Topology.routers``."""

    a: int
    b: int
    km: float
    latency_ms: float
    capacity_gbps: float
    parallel_edges: int = 1


@dataclass(slots=True)
class Topology:
    """One operator's routers and links, plus what the import did to make them usable."""

    operator: str
    routers: list[RouterSpec]
    links: list[LinkSpec]
    source: str
    report: list[str] = field(default_factory=list)

    def index_of(self, label: str) -> int:
        for i, router in enumerate(self.routers):
            if router.label == label:
                return i
        raise InputError(
            f"{self.operator} has no router labelled {label!r}; it has {len(self.routers)} routers, "
            f"e.g. {', '.join(r.label for r in self.routers[:8])}",
            field="router",
        )


def _data(element: ET.Element, keys: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in element.findall(f"{_GRAPHML_NS}data"):
        name = keys.get(d.get("key", ""))
        if name is not None and d.text is not None:
            out[name] = d.text.strip()
    return out


def _float(value: str | None, where: str, low: float, high: float) -> float | None:
    """A number the file gives, or None when it gives none (the Zoo leaves some out; the loader repairs
    those). A value that is there but is not a number in low..high is an error naming where it is."""
    if value is None or value == "":
        return None
    try:
        result = float(value)
    except ValueError:
        result = math.nan
    if not (math.isfinite(result) and low <= result <= high):
        raise InputError(f"{where} is {value!r}: expected a number in {low:g}..{high:g}", field="topology")
    return result


def load_graphml(path: str | Path, operator: str | None = None) -> Topology:
    """Read a Topology Zoo GraphML file; the operator name defaults to the file's stem.

    Repairs, each reported: a node without coordinates is placed at the mean latitude/longitude of
    its neighbours that have them (repeated until no more can be placed; still-unplaced nodes of a
    component without any coordinates get latitude 0, longitude 0 and so zero-length links); a
    missing or repeated label becomes ``<label>#<graphml id>`` (``node#<id>`` when missing) for every
    router sharing it (the Zoo's "None" counts as missing); parallel edges are merged into one link
    whose capacity is their sum (they are parallel circuits between the same two points); self loops
    are dropped. A coordinate or LinkSpeedRaw that is present but not a number in range (a latitude
    of 500, a speed of "fast") is not repaired but refused, naming the node or edge.
    """
    path = Path(path)
    name = operator or path.stem
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise InputError(f"topology file {path} does not exist", field="topology") from None
    except OSError as exc:
        raise InputError(f"cannot read the topology file {path}: {exc.strerror}", field="topology") from None
    except ET.ParseError as exc:
        raise InputError(f"{path} is not well-formed XML: {exc}", field="topology") from None
    graph = root.find(f"{_GRAPHML_NS}graph")
    if root.tag != f"{_GRAPHML_NS}graphml" or graph is None:
        raise InputError(
            f"{path} is not GraphML: expected a <graphml> root in namespace "
            f"{_GRAPHML_NS[1:-1]} holding a <graph>, found <{root.tag}>",
            field="topology",
        )
    keys = {k.get("id", ""): k.get("attr.name", "") for k in root.findall(f"{_GRAPHML_NS}key")}
    report: list[str] = []

    node_ids: list[str] = []
    raw_labels: list[str | None] = []
    coords: list[tuple[float, float] | None] = []
    for node in graph.findall(f"{_GRAPHML_NS}node"):
        nid = node.get("id")
        if nid is None:
            raise InputError(f"{path}: a <node> has no id attribute", field="topology")
        d = _data(node, keys)
        node_ids.append(nid)
        label = d.get("label")
        raw_labels.append(label if label and label != "None" else None)  # the Zoo writes "None" for unnamed
        lat = _float(d.get("Latitude"), f"{path}: node {nid!r} Latitude", -90, 90)
        lon = _float(d.get("Longitude"), f"{path}: node {nid!r} Longitude", -180, 180)
        coords.append((lat, lon) if lat is not None and lon is not None else None)
    if not node_ids:
        raise InputError(f"{path}: the graph has no nodes", field="topology")
    position = {nid: i for i, nid in enumerate(node_ids)}
    if len(position) != len(node_ids):
        raise InputError(f"{path}: node ids repeat", field="topology")

    # Edges: merge parallels, drop loops.
    merged: dict[tuple[int, int], list[float | None]] = {}
    loops = 0
    for edge in graph.findall(f"{_GRAPHML_NS}edge"):
        s, t = edge.get("source"), edge.get("target")
        if s not in position or t not in position:
            raise InputError(
                f"{path}: edge {s!r} -> {t!r} names a node that does not exist "
                f"(node ids are {node_ids[0]!r} .. {node_ids[-1]!r})",
                field="topology",
            )
        a, b = sorted((position[s], position[t]))
        if a == b:
            loops += 1
            continue
        raw = _float(_data(edge, keys).get("LinkSpeedRaw"), f"{path}: edge {s!r} -> {t!r} LinkSpeedRaw", 0, 1e15)
        merged.setdefault((a, b), []).append(raw / 1e9 if raw else None)
    if loops:
        report.append(f"dropped {loops} self-loop edge(s)")
    parallels = {k: v for k, v in merged.items() if len(v) > 1}
    if parallels:
        pairs = ", ".join(f"{node_ids[a]}-{node_ids[b]} x{len(v)}" for (a, b), v in sorted(parallels.items()))
        report.append(
            f"merged {sum(len(v) - 1 for v in parallels.values())} parallel edge(s) into one "
            f"link each, capacities summed: {pairs}"
        )

    # Coordinates: impute from neighbours.
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(node_ids))}
    for a, b in merged:
        neighbours[a].append(b)
        neighbours[b].append(a)
    missing = [i for i, c in enumerate(coords) if c is None]
    imputed: set[int] = set()
    while True:
        placed: dict[int, tuple[float, float]] = {}
        for i in missing:
            if coords[i] is not None:
                continue
            known = [c for j in neighbours[i] if (c := coords[j]) is not None]
            if known:
                placed[i] = (sum(c[0] for c in known) / len(known), sum(c[1] for c in known) / len(known))
        if not placed:
            break
        for i, c in placed.items():
            coords[i] = c
            imputed.add(i)
    unplaced = [i for i in missing if coords[i] is None]
    for i in unplaced:
        coords[i] = (0.0, 0.0)
    if imputed:
        report.append(
            f"{len(imputed)} router(s) had no coordinates and were placed at the mean of their neighbours': "
            + ", ".join(f"{raw_labels[i] or node_ids[i]} (id {node_ids[i]})" for i in sorted(imputed))
        )
    if unplaced:
        report.append(
            f"{len(unplaced)} router(s) had no coordinates and no placed neighbour; put at 0,0 "
            f"(their links have zero latency): " + ", ".join(node_ids[i] for i in unplaced)
        )

    # Labels: unique, or suffixed with the GraphML id.
    counts: dict[str | None, int] = {}
    for label in raw_labels:
        counts[label] = counts.get(label, 0) + 1
    labels: list[str] = []
    renamed: list[str] = []
    for i, label in enumerate(raw_labels):
        if label is None:
            labels.append(f"node#{node_ids[i]}")
            renamed.append(labels[-1])
        elif counts[label] > 1:
            labels.append(f"{label}#{node_ids[i]}")
            renamed.append(labels[-1])
        else:
            labels.append(label)
    if renamed:
        report.append(
            f"{len(renamed)} router label(s) were missing or repeated and got their GraphML id: " + ", ".join(renamed)
        )

    routers = []
    for i in range(len(node_ids)):
        c = coords[i]
        assert c is not None
        routers.append(RouterSpec(labels[i], node_ids[i], c[0], c[1], i in imputed or i in unplaced))
    links: list[LinkSpec] = []
    defaulted = 0
    for (a, b), speeds in sorted(merged.items()):
        km = haversine_km(routers[a].latitude, routers[a].longitude, routers[b].latitude, routers[b].longitude)
        capacity = 0.0
        for gbps in speeds:
            if gbps is None:
                defaulted += 1
                capacity += DEFAULT_LINK_GBPS
            else:
                capacity += gbps
        links.append(LinkSpec(a, b, km, fibre_latency_ms(km), capacity, len(speeds)))
    if defaulted:
        report.append(f"{defaulted} edge(s) had no LinkSpeedRaw and got the default {DEFAULT_LINK_GBPS:g} Gbps")
    return Topology(name, routers, links, str(path), report)
