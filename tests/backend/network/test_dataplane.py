"""The real SRv6 data plane in Linux network namespaces (needs root; CI runs as root)."""

from __future__ import annotations

import ipaddress
import os

import pytest
from scapy.layers.inet6 import IPv6ExtHdrSegmentRouting
from scapy.layers.l2 import Ether

from suanwang.network.dataplane.demo import arcs, run_demo
from suanwang.network.dataplane.lab import SRv6Lab
from suanwang.network.dataplane.netns import NETNS_RUN_DIR
from suanwang.network.dataplane.probe import srv6_missing
from suanwang.network.model import Network, Operator
from suanwang.network.srv6 import Behavior, split_sid
from suanwang.network.topology import LinkSpec, RouterSpec, Topology

# Probed, not assumed: a machine without root or without SRv6 in its kernel says which, in one line.
MISSING = srv6_missing()
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(MISSING is not None, reason=f"SRv6 data plane unavailable: {MISSING}"),
]


def _ours() -> set[str]:
    return {n for n in os.listdir(NETNS_RUN_DIR) if n.startswith(f"sw-{os.getpid()}-")} if NETNS_RUN_DIR.exists() \
        else set()


@pytest.fixture(autouse=True)
def no_namespace_left_behind():
    before = _ours()
    yield
    assert _ours() == before, "a test left network namespaces behind"


def test_lease_on_a_non_shortest_path_is_followed_and_can_move():
    result = run_demo("Abilene", "New York", "Los Angeles", packets=60)
    checks = result["checks"]
    assert result["lease"]["path"] != result["shortest"]["path"]
    assert checks["lease_followed"] and result["lease"]["received"] == 60
    assert checks["shortest_path_flat"] and checks["shortest_only_hops"]
    assert checks["switch_moved"] and result["switched"]["received"] == 60
    assert checks["srh_matches_encoder"]
    assert checks["namespaces_left"] == []
    # Every hop of the lease saw exactly the probes; nothing else moved anywhere.
    assert set(result["lease"]["rx_delta"].values()) == {60}
    # The captured frame, decoded by scapy, carries the lease's segment list.
    frame = Ether(bytes.fromhex(result["capture"]["frame_hex"]))
    srh = frame[IPv6ExtHdrSegmentRouting]
    assert [str(ipaddress.IPv6Address(a)) for a in reversed(srh.addresses)] == result["lease"]["segments"]
    assert srh.segleft == result["capture"]["segments_left"]


def test_adjacency_sids_steer_packets_including_at_the_headend():
    # A square A-B-C-D-A plus a slow diagonal A-C (10 ms against 1 ms per side): going A -> C over
    # the diagonal needs End.X at A, the headend itself.
    routers = [RouterSpec(x, x, 0.0, 0.0, False) for x in "ABCD"]
    links = [LinkSpec(0, 1, 0, 1.0, 10.0), LinkSpec(1, 2, 0, 1.0, 10.0), LinkSpec(2, 3, 0, 1.0, 10.0),
             LinkSpec(0, 3, 0, 1.0, 10.0), LinkSpec(0, 2, 0, 10.0, 10.0)]
    net = Network([Operator("Lab", Topology("Lab", routers, links, "test"), 1)])
    path = net.make_path([0, 2, 1])  # A -> C over the diagonal, then C -> B
    sids = [ipaddress.IPv6Address(s) for s in path.segments]
    assert split_sid(sids[0])[1] >= Behavior.END_X and sids[0] in net.routers[0].locator.network
    with SRv6Lab(net, "A", "B") as lab:
        lab.install_lease(sids)
        before = lab.rx_packets()
        assert lab.send_udp(20) == 20
        after = lab.rx_packets()
        delta = {k: after[k] - before[k] for k in after if after[k] != before[k]}
        assert delta == {arc: 20 for arc in arcs(path)}
