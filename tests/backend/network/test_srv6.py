"""Locators, SIDs, segment lists (forcing and minimal), and the SRH codec against scapy."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from scapy.layers.inet6 import IPv6, IPv6ExtHdrSegmentRouting
from scapy.packet import Raw

from suanwang.errors import InputError
from suanwang.network.algorithms import k_shortest_paths
from suanwang.network.config import load_network
from suanwang.network.model import router_id
from suanwang.network.srv6 import Behavior, Locator, decode_srh, encode_srh, split_sid


def _forward(net, start, sids):
    """Independent hop-by-hop simulation: follow next hops to each SID's owner; End.X crosses its link."""
    owner = {r.locator.prefix[:6]: r.index for r in net.routers}
    here, visited = start, [start]
    for sid in sids:
        loc, funct, _ = split_sid(sid)
        target = owner[loc.to_bytes(6, "big")]
        while here != target:
            here = int(net._tree(target)[1][here])
            visited.append(here)
        if funct >= Behavior.END_X:
            here = net.adjacency(here)[funct - Behavior.END_X]
            visited.append(here)
    return visited


def test_locator_plan_and_router_ids(world):
    r = world.routers[world.router_index("Geant2012/UK")]
    assert r.operator_number == 2
    assert str(r.locator) == f"fd00:2:{r.index - len(world.operators[0].topology.routers):x}::/48"
    assert r.router_id == router_id("Geant2012", "UK") and len(r.router_id) == 32
    sid = world.sid(r.index, Behavior.END_DT6)
    assert sid in r.locator.network and split_sid(sid)[1] == Behavior.END_DT6
    with pytest.raises(InputError):
        Locator.for_router(0, 1)


@pytest.mark.parametrize("name", ["Abilene", "Geant2012", "Cogentco"])
def test_segment_lists_force_their_paths(name, networks):
    net = networks[name]
    for s, t in [(0, len(net.routers) - 1), (1, len(net.routers) // 2), (3, 7)]:
        for p in k_shortest_paths(net, s, t, 6):
            sids = [ipaddress.IPv6Address(x) for x in p.segments]
            assert _forward(net, s, sids) == list(p.router_indices)
            assert split_sid(sids[-1])[1] == Behavior.END_DT6


def test_shortest_path_needs_one_segment(networks):
    net = networks["Cogentco"]
    assert len(net.path(0, 150).segments) == 1


def test_segment_lists_are_minimal_on_abilene(networks):
    net = networks["Abilene"]
    candidates = [net.sid(r, Behavior.END) for r in range(len(net.routers))]
    candidates += [net.sid(r, Behavior.END_X, n) for r in range(len(net.routers)) for n in net.adjacency(r)]
    for p in k_shortest_paths(net, "New York", "Los Angeles", 8):
        nodes = list(p.router_indices)
        need = len(p.segments) - 1  # the final End.DT6 is always there; count steering SIDs
        for length in range(need):
            for combo in itertools.product(candidates, repeat=length):
                final = [net.sid(nodes[-1], Behavior.END_DT6)]
                assert _forward(net, nodes[0], [*combo, *final]) != nodes


def test_adjacency_sid_is_used_where_the_link_is_not_the_shortest_way(tmp_path):
    # A triangle where the direct a-c link is longer than a-b-c: forcing a->c needs End.X.
    xml = ['<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
           '<key id="l" for="node" attr.name="label" attr.type="string"/>',
           '<key id="la" for="node" attr.name="Latitude" attr.type="double"/>',
           '<key id="lo" for="node" attr.name="Longitude" attr.type="double"/>', '<graph edgedefault="undirected">']
    for nid, lat, lon in [("a", 0.0, 0.0), ("b", 0.0, 1.0), ("c", 0.0, 2.0)]:
        xml.append(f'<node id="{nid}"><data key="l">{nid.upper()}</data><data key="la">{lat}</data>'
                   f'<data key="lo">{lon}</data></node>')
    xml += ['<edge source="a" target="b"/>', '<edge source="b" target="c"/>', '<edge source="a" target="c"/>',
            "</graph></graphml>"]
    f = tmp_path / "Tri.graphml"
    f.write_text("".join(xml))
    net = load_network([str(f)])
    direct = net.make_path([0, 2])
    # a-c equals a-b-c in length on a great circle, so tie-break decides; the list must still force it.
    sids = [ipaddress.IPv6Address(s) for s in direct.segments]
    assert _forward(net, 0, sids) == [0, 2]


def test_srh_encoding_decodes_identically_with_scapy(world):
    p = k_shortest_paths(world, "Cernet/Beijing", "Cogentco/Chicago", 3)[2]
    segs = [ipaddress.IPv6Address(s) for s in p.segments]
    raw = encode_srh(segs, tag=7)
    pkt = IPv6(bytes(IPv6(src="fd10:a::2", dst=str(segs[0]), nh=43) / Raw(raw)))
    srh = pkt[IPv6ExtHdrSegmentRouting]
    assert srh.type == 4 and srh.segleft == len(segs) - 1 and srh.lastentry == len(segs) - 1 and srh.tag == 7
    assert [ipaddress.IPv6Address(a) for a in srh.addresses] == list(reversed(segs))
    assert srh.len == 2 * len(segs) and srh.nh == 41
    back = decode_srh(raw)
    assert back.travel_order == tuple(segs) and back.segments_left == len(segs) - 1
    # and scapy's own encoding of the same header is byte-identical
    ref = IPv6ExtHdrSegmentRouting(addresses=[str(a) for a in reversed(segs)], segleft=len(segs) - 1,
                                   lastentry=len(segs) - 1, tag=7, nh=41)
    assert bytes(ref) == raw


def test_srh_rejects_bad_input():
    with pytest.raises(InputError, match="at least one segment"):
        encode_srh([])
    with pytest.raises(InputError, match="Routing Type"):
        decode_srh(bytes([41, 2, 3, 0, 0, 0, 0, 0]) + bytes(16))
