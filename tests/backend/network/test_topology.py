"""Import of the Topology Zoo files, checked against an independent computation on the raw GraphML."""

from __future__ import annotations

import math
import random

import networkx as nx
import pytest

from suanwang.errors import InputError
from suanwang.network.config import load_network
from suanwang.network.topology import load_graphml
from tests.backend.network.conftest import SHIPPED, zoo


def _great_circle_km(lat1, lon1, lat2, lon2):
    # Vincenty's formula on the sphere (atan2 form): independent of the loader's haversine and
    # well conditioned for short and antipodal links alike.
    p1, p2, dl = map(math.radians, (lat1, lat2, lon2 - lon1))
    y = math.hypot(math.cos(p2) * math.sin(dl),
                   math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl))
    x = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0088 * math.atan2(y, x)


def _independent_graph(name: str) -> nx.Graph:
    """Raw GraphML via networkx, coordinates imputed by the documented rule, latency at 5 us/km."""
    raw = nx.read_graphml(zoo(name))
    g = nx.Graph()
    g.add_nodes_from(raw.nodes)
    g.add_edges_from((u, v) for u, v in raw.edges() if u != v)
    coords = {n: (d["Latitude"], d["Longitude"]) for n, d in raw.nodes(data=True) if "Latitude" in d}
    while True:
        placed = {}
        for n in g.nodes:
            if n not in coords:
                known = [coords[m] for m in g.neighbors(n) if m in coords]
                if known:
                    placed[n] = (sum(c[0] for c in known) / len(known), sum(c[1] for c in known) / len(known))
        if not placed:
            break
        coords.update(placed)
    for u, v in g.edges:
        a, b = coords.get(u, (0.0, 0.0)), coords.get(v, (0.0, 0.0))
        g[u][v]["ms"] = _great_circle_km(*a, *b) * 5e-3
    return g


@pytest.mark.parametrize("name", SHIPPED)
def test_shortest_path_latency_matches_an_independent_computation(name, networks):
    net = networks[name]
    g = _independent_graph(name)
    by_graphml_id = {r.graphml_id: r.index for r in net.routers}
    rng = random.Random(5)
    nodes = list(g.nodes)
    for _ in range(40):
        s, t = rng.sample(nodes, 2)
        if not nx.has_path(g, s, t):
            continue
        expected = nx.shortest_path_length(g, s, t, weight="ms")
        path = net.path(by_graphml_id[s], by_graphml_id[t], srv6=False)
        assert path.latency_ms == pytest.approx(expected, rel=1e-9, abs=1e-9)
        # The path really is a walk over the file's edges, summed link by link.
        ids = [net.routers[i].graphml_id for i in path.router_indices]
        assert sum(g[ids[i]][ids[i + 1]]["ms"] for i in range(len(ids) - 1)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", SHIPPED)
def test_latency_from_equals_networkx_single_source(name, networks):
    net = networks[name]
    g = _independent_graph(name)
    src = net.routers[0]
    expected = nx.single_source_dijkstra_path_length(g, src.graphml_id, weight="ms")
    got = net.latency_from(0)
    for r in net.routers:
        if r.graphml_id in expected:
            assert got[r.index] == pytest.approx(expected[r.graphml_id], rel=1e-9, abs=1e-9)
        else:
            assert math.isinf(got[r.index])


def test_import_reports_every_repair():
    cernet = load_graphml(zoo("Cernet"))
    text = "\n".join(cernet.report)
    assert "parallel edge" in text and "no coordinates" in text and "Shijiazhuang#" in text
    assert len({r.label for r in cernet.routers}) == len(cernet.routers)
    kdl = load_graphml(zoo("Kdl"))
    assert len({r.label for r in kdl.routers}) == len(kdl.routers) == 754
    assert sum(1 for r in kdl.routers if r.coordinates_imputed) == 28


def test_bandwidth_comes_from_linkspeed_where_given():
    geant = load_graphml(zoo("Geant2012"))
    speeds = sorted({ln.capacity_gbps for ln in geant.links})
    assert 0.155 in speeds and 10.0 in speeds and 2.5 in speeds


def test_malformed_graphml_says_what_is_wrong(tmp_path):
    bad = tmp_path / "Bad.graphml"
    bad.write_text("<graphml><graph><node id='a'/></graph")
    with pytest.raises(InputError, match="not well-formed XML"):
        load_graphml(bad)
    wrong = tmp_path / "Wrong.graphml"
    wrong.write_text("<html><body/></html>")
    with pytest.raises(InputError, match="not GraphML"):
        load_graphml(wrong)
    dangling = tmp_path / "Dangling.graphml"
    dangling.write_text('<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph>'
                        '<node id="a"/><edge source="a" target="zz"/></graph></graphml>')
    with pytest.raises(InputError, match="names a node that does not exist"):
        load_graphml(dangling)


def test_unknown_topology_lists_what_exists():
    with pytest.raises(InputError, match="available: Abilene, Cernet, Cogentco, Geant2012, Kdl"):
        load_network(["Atlantis"])
