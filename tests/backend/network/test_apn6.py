"""APN6 attribute encoding and the APN-to-path mapping."""

from __future__ import annotations

import pytest
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.packet import Raw

from suanwang.errors import InfeasibleError
from suanwang.network.apn6 import APN_OPTION_TYPE, ApnAttribute, Sla, path_jitter_ms, path_loss, select_path
from suanwang.network.config import load_network


def test_option_round_trips_and_scapy_reads_the_header():
    attr = ApnAttribute.of(0x0102, 0x0304, Sla(max_latency_ms=12.5, min_bandwidth_gbps=2.0, max_jitter_ms=0.4,
                                               max_loss=1e-5))
    opt = attr.encode_option()
    assert opt[0] == APN_OPTION_TYPE and opt[1] == len(opt) - 2
    assert opt[6:10] == bytes.fromhex("01020304")
    assert ApnAttribute.decode_option(opt) == attr
    hbh = attr.hop_by_hop_header(next_header=17)
    assert len(hbh) % 8 == 0
    pkt = IPv6(bytes(IPv6(nh=0) / Raw(hbh)))
    parsed = pkt[IPv6ExtHdrHopByHop]
    assert parsed.nh == 17
    ours = [o for o in parsed.options if o.otype == APN_OPTION_TYPE]
    assert len(ours) == 1 and bytes(ours[0]) == opt


def test_id_only_attribute_has_no_parameters():
    attr = ApnAttribute.of(1, 2, id_bits=64)
    opt = attr.encode_option()
    assert opt[2] == 2 and opt[3] == 0 and len(opt) == 2 + 4 + 8
    assert ApnAttribute.decode_option(opt) == attr


def test_apn_maps_to_a_path_that_honours_the_sla():
    net = load_network(["Cogentco"])
    free = net.path("Boston", "Chicago", srv6=False)
    net.reserve(net.make_path(free.router_indices[2:5], srv6=False), 8.0)  # congest the middle
    sla = Sla(max_latency_ms=100.0, min_bandwidth_gbps=4.0, max_jitter_ms=2.0, max_loss=5e-5)
    p = select_path(net, "Boston", "Chicago", ApnAttribute.of(9, 1, sla))
    assert p.latency_ms <= sla.max_latency_ms and p.bandwidth_gbps >= 4.0
    assert path_jitter_ms(p) <= 2.0 and path_loss(p) <= 5e-5
    assert p.segments  # a forcing segment list comes with it


def test_impossible_sla_says_which_parameter(networks):
    net = networks["Abilene"]
    with pytest.raises(InfeasibleError, match="jitter"):
        select_path(net, "New York", "Los Angeles", ApnAttribute.of(1, 1, Sla(max_jitter_ms=0.01)))
    with pytest.raises(InfeasibleError, match=r"within 1\.0 ms"):
        select_path(net, "New York", "Los Angeles", ApnAttribute.of(1, 1, Sla(max_latency_ms=1.0)))
