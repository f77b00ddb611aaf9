"""The data-plane proof: program a lease on a path that is NOT the shortest, show from interface
counters that the packets took it (and the shortest path stayed flat), capture one packet to check
its SRH against our encoder, move the lease to another path and show the move."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from suanwang.errors import InfeasibleError
from suanwang.network.algorithms import k_shortest_paths
from suanwang.network.config import load_network
from suanwang.network.dataplane.lab import SRv6Lab
from suanwang.network.dataplane.netns import NETNS_RUN_DIR
from suanwang.network.model import Network, Path
from suanwang.network.srv6 import IPPROTO_ROUTING, decode_srh, encode_srh, split_sid

ETH_HEADER = 14
ETHERTYPE_IPV6 = b"\x86\xdd"


def arcs(path: Path) -> list[tuple[int, int]]:
    """(router, previous router) for every hop: the interface whose RX counter a packet bumps."""
    nodes = path.router_indices
    return [(nodes[i + 1], nodes[i]) for i in range(len(nodes) - 1)]


def active_segment(net: Network, path: Path, hop: int) -> int:
    """Index (travel order) of the segment in the destination address while crossing hop ``hop``
    (the link from path position ``hop`` to ``hop + 1``)."""
    nodes = path.router_indices
    pos = 0
    for i, sid in enumerate(path.segments):
        loc = split_sid(ipaddress.IPv6Address(sid))[0]
        owner = next(r.index for r in net.routers if int.from_bytes(r.locator.prefix[:6], "big") == loc)
        pos = nodes.index(owner, pos)
        if pos >= hop + 1:
            return i
    return len(path.segments) - 1


@dataclass(slots=True)
class Measurement:
    path: list[str]
    segments: list[str]
    sent: int
    received: int
    rx_delta: dict[str, int] = field(default_factory=dict)  # "prev->router" -> packets

    def on(self, net: Network, path: Path) -> list[int]:
        return [self.rx_delta.get(_arc_name(net, a), 0) for a in arcs(path)]


def _arc_name(net: Network, arc: tuple[int, int]) -> str:
    return f"{net.routers[arc[1]].label}->{net.routers[arc[0]].label}"


def _measure(lab: SRv6Lab, path: Path, packets: int) -> Measurement:
    lab.install_lease([ipaddress.IPv6Address(s) for s in path.segments])
    before = lab.rx_packets()
    received = lab.send_udp(packets)
    after = lab.rx_packets()
    delta = {_arc_name(lab.net, k): after[k] - before[k] for k in after if after[k] != before[k]}
    return Measurement(list(path.routers), list(path.segments), packets, received, delta)


def choose_paths(net: Network, src: str, dst: str, k: int = 8) -> tuple[Path, Path, Path]:
    """(shortest, lease, switch): the lease path is the lowest-latency alternative whose transit
    routers avoid the shortest path's; the switch path is the next alternative that uses a link
    the lease path does not."""
    paths = k_shortest_paths(net, src, dst, k)
    shortest = paths[0]
    inner = set(shortest.router_indices[1:-1])
    lease = next((p for p in paths[1:] if not inner & set(p.router_indices[1:-1])), None)
    if lease is None:
        raise InfeasibleError(
            f"no path from {src} to {dst} avoids the shortest path's transit routers among the {len(paths)} shortest",
            field="path",
        )
    switch = next((p for p in paths[1:] if p is not lease and set(p.links) - set(lease.links)), None)
    if switch is None:
        raise InfeasibleError(f"no second alternative path from {src} to {dst}", field="path")
    return shortest, lease, switch


def _check_capture(lab: SRv6Lab, path: Path, hop: int, frames: Sequence[bytes]) -> dict[str, Any]:
    """Compare the SRH of the first captured probe with what our encoder produces for this hop."""
    net = lab.net
    seg = [ipaddress.IPv6Address(s) for s in path.segments]
    active = active_segment(net, path, hop)
    expected = encode_srh(seg, segments_left=len(seg) - 1 - active)
    for frame in frames:
        if frame[12:14] != ETHERTYPE_IPV6 or frame[ETH_HEADER + 6] != IPPROTO_ROUTING:
            continue
        ip6 = frame[ETH_HEADER:]
        srh_len = (ip6[41] + 1) * 8
        srh = ip6[40 : 40 + srh_len]
        decoded = decode_srh(srh)
        return {
            "interface": _arc_name(net, arcs(path)[hop]),
            "frame_hex": frame.hex(),
            "srh_hex": srh.hex(),
            "outer_destination": str(ipaddress.IPv6Address(ip6[24:40])),
            "expected_destination": str(seg[active]),
            "segments_left": decoded.segments_left,
            "srh_matches_encoder": srh == expected,
        }
    return {
        "interface": _arc_name(net, arcs(path)[hop]),
        "srh_matches_encoder": False,
        "error": f"no SRv6 frame among {len(frames)} captured",
    }


def run_demo(
    topology: str = "Abilene",
    src: str = "New York",
    dst: str = "Los Angeles",
    packets: int = 100,
    network: Network | None = None,
) -> dict[str, Any]:
    """Build the topology as namespaces, run the proof, tear down; returns what was measured."""
    net = network or load_network([topology])
    shortest, lease, switch = choose_paths(net, src, dst)
    started = time.monotonic()
    lab = SRv6Lab(net, src, dst)
    prefix = lab.prefix
    with lab:
        built = time.monotonic() - started
        hop = len(lease.links) // 2
        cap = lab.open_capture(*arcs(lease)[hop])
        try:
            first = _measure(lab, lease, packets)
            frames = lab.drain(cap)
        finally:
            cap.close()
        capture = _check_capture(lab, lease, hop, frames)
        second = _measure(lab, switch, packets)
    left = [n for n in os.listdir(NETNS_RUN_DIR) if n.startswith(prefix)] if NETNS_RUN_DIR.exists() else []

    shortest_only = [a for a in arcs(shortest) if a not in set(arcs(lease))]
    lease_only = [a for a in arcs(lease) if a not in set(arcs(switch))]
    followed = all(v >= packets for v in first.on(net, lease))
    shortest_flat = all(first.rx_delta.get(_arc_name(net, a), 0) == 0 for a in shortest_only)
    moved = all(v >= packets for v in second.on(net, switch)) and all(
        second.rx_delta.get(_arc_name(net, a), 0) == 0 for a in lease_only
    )
    return {
        "topology": [op.name for op in net.operators],
        "routers": len(net.routers),
        "links": len(net.links),
        "namespaces": len(net.routers) + 2,
        "build_seconds": round(built, 3),
        "ingress": net.routers[lab.ingress].name,
        "egress": net.routers[lab.egress].name,
        "shortest": {
            "path": list(shortest.routers),
            "latency_ms": shortest.latency_ms,
            "segments": list(shortest.segments),
        },
        "lease": {"latency_ms": lease.latency_ms, **dataclasses.asdict(first)},
        "switched": {"latency_ms": switch.latency_ms, **dataclasses.asdict(second)},
        "capture": capture,
        "checks": {
            "lease_followed": followed and first.received == packets,
            "shortest_path_flat": shortest_flat,
            "shortest_only_hops": [_arc_name(net, a) for a in shortest_only],
            "switch_moved": moved and second.received == packets,
            "lease_only_hops_after_switch": [_arc_name(net, a) for a in lease_only],
            "srh_matches_encoder": bool(capture.get("srh_matches_encoder")),
            "namespaces_left": left,
        },
    }
