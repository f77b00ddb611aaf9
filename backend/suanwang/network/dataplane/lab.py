"""A real SRv6 data plane: a Network's routers as Linux network namespaces joined by veth links.

Each router gets the network's locator plan (``suanwang.network.srv6``): static routes to every
other router's /48 locator along the network's own shortest-path next hops (standing in for an
IGP), and seg6local SIDs End, End.X (one per adjacency) and End.DT6 (table 254). Two hosts hang
off an ingress and an egress router; a lease is a seg6 encap route at the ingress that steers the
egress host's prefix through a segment list. Proof of path comes from per-interface RX counters.

Addresses: link ``l`` between routers a < b is fd0f:0:0:<l>::/64 with a = ::1, b = ::2; the source
host is fd10:a::2/64 behind the ingress (fd10:a::1), the destination host fd10:b::2/64 behind the
egress (fd10:b::1).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyroute2 import IPRoute, netns

from suanwang.errors import InputError
from suanwang.network.dataplane.netns import require_root, socket_in, write_sysctls
from suanwang.network.model import Network
from suanwang.network.srv6 import Behavior

IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40
NUD_PERMANENT = 0x80
MAX_LAB_ROUTERS = 64
SRC_HOST_ADDR, SRC_GW = "fd10:a::2", "fd10:a::1"
DST_HOST_ADDR, DST_GW = "fd10:b::2", "fd10:b::1"
DST_PREFIX = "fd10:b::/64"
UDP_PORT = 9_999
_ROUTER_SYSCTLS = {
    "net/ipv6/conf/all/forwarding": "1",
    "net/ipv6/conf/all/seg6_enabled": "1",
    "net/ipv6/conf/default/seg6_enabled": "1",
    "net/ipv6/conf/all/accept_dad": "0",
    "net/ipv6/conf/default/accept_dad": "0",
    "net/ipv6/conf/default/router_solicitations": "0",
    # MLD reports repeat at this interval (ms) after an interface joins a group; 1 ms makes them
    # finish during settling instead of trickling into the counters for seconds.
    "net/ipv6/conf/default/mldv1_unsolicited_report_interval": "1",
    "net/ipv6/conf/default/mldv2_unsolicited_report_interval": "1",
}
_HOST_SYSCTLS = {
    "net/ipv6/conf/all/accept_dad": "0",
    "net/ipv6/conf/default/accept_dad": "0",
    "net/ipv6/conf/default/router_solicitations": "0",
}


def _link_addr(link: int, side: int) -> str:
    return f"fd0f:0:0:{link:x}::{side}"


@dataclass(frozen=True, slots=True)
class Capture:
    interface: str
    router: str
    frames: list[bytes]


class SRv6Lab:
    """Builds ``network`` (at most MAX_LAB_ROUTERS routers) as namespaces; use as a context manager
    so every namespace is removed, also on errors."""

    def __init__(self, network: Network, ingress: str | int, egress: str | int, prefix: str | None = None) -> None:
        if len(network.routers) > MAX_LAB_ROUTERS:
            raise InputError(
                f"the lab builds at most {MAX_LAB_ROUTERS} routers; this network has {len(network.routers)}",
                field="topology",
            )
        self.net = network
        self.ingress = network.router_index(ingress)
        self.egress = network.router_index(egress)
        if self.ingress == self.egress:
            raise InputError("ingress and egress must differ", field="egress")
        self.prefix = prefix or f"sw-{os.getpid()}-{time.monotonic_ns() % 100_000}-"
        self.router_ns = [f"{self.prefix}r{i}" for i in range(len(network.routers))]
        self.src_ns, self.dst_ns = f"{self.prefix}ha", f"{self.prefix}hb"
        self._created: list[str] = []
        self._ipr: dict[str, IPRoute] = {}
        self._ifindex: dict[tuple[int, int], int] = {}  # (router, neighbour) -> ifindex in router's ns

    # ---- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> SRv6Lab:
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.teardown()

    def teardown(self) -> None:
        for ipr in self._ipr.values():
            ipr.close()
        self._ipr.clear()
        for name in reversed(self._created):
            with contextlib.suppress(OSError):
                netns.remove(name)
        self._created.clear()

    @staticmethod
    def interface_name(neighbour: int) -> str:
        return f"to{neighbour}"

    def build(self, settle_timeout_s: float = 5.0) -> None:
        require_root()
        for name in [*self.router_ns, self.src_ns, self.dst_ns]:
            netns.create(name)
            self._created.append(name)
            self._ipr[name] = IPRoute(netns=name)
        for name in self.router_ns:
            write_sysctls(name, _ROUTER_SYSCTLS)
        write_sysctls(self.src_ns, _HOST_SYSCTLS)
        write_sysctls(self.dst_ns, _HOST_SYSCTLS)
        for link in self.net.links:
            self._veth(
                self.router_ns[link.a], self.interface_name(link.b), self.router_ns[link.b], self.interface_name(link.a)
            )
        self._veth(self.src_ns, "eth0", self.router_ns[self.ingress], "hosta")
        self._veth(self.dst_ns, "eth0", self.router_ns[self.egress], "hostb")
        for name in [*self.router_ns, self.src_ns, self.dst_ns]:
            ipr = self._ipr[name]
            for ln in ipr.get_links():
                name_attr = ln.get("ifname")
                ipr.link("set", index=ln["index"], state="up")
                if name_attr.startswith("to"):
                    sysctl = f"net/ipv6/conf/{name_attr}/seg6_enabled"
                    write_sysctls(name, {sysctl: "1"})
        for link in self.net.links:
            for side, (here, there) in enumerate(((link.a, link.b), (link.b, link.a)), start=1):
                idx = self._index(self.router_ns[here], self.interface_name(there))
                self._ifindex[(here, there)] = idx
                self._addr(self.router_ns[here], idx, _link_addr(link.index, side), 64)
        self._addr(self.src_ns, self._index(self.src_ns, "eth0"), SRC_HOST_ADDR, 64)
        self._addr(self.dst_ns, self._index(self.dst_ns, "eth0"), DST_HOST_ADDR, 64)
        self._addr(self.router_ns[self.ingress], self._index(self.router_ns[self.ingress], "hosta"), SRC_GW, 64)
        self._addr(self.router_ns[self.egress], self._index(self.router_ns[self.egress], "hostb"), DST_GW, 64)
        self._static_neighbours()
        self._ipr[self.src_ns].route("add", dst="::/0", gateway=SRC_GW)
        self._ipr[self.dst_ns].route("add", dst="::/0", gateway=DST_GW)
        self._install_routing()
        self._settle(settle_timeout_s)

    def _veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        self._ipr[ns_a].link(
            "add", ifname=if_a, kind="veth", peer={"ifname": if_b, "net_ns_fd": str(netns.NETNS_RUN_DIR) + "/" + ns_b}
        )

    def _index(self, ns: str, ifname: str) -> int:
        found = self._ipr[ns].link_lookup(ifname=ifname)
        if not found:
            raise RuntimeError(f"interface {ifname} missing in namespace {ns}")
        return int(found[0])

    def _addr(self, ns: str, index: int, address: str, prefixlen: int) -> None:
        self._ipr[ns].addr("add", index=index, address=address, prefixlen=prefixlen, flags=IFA_F_NODAD)

    def _mac(self, ns: str, index: int) -> str:
        return str(self._ipr[ns].get_links(index)[0].get("IFLA_ADDRESS"))

    def _static_neighbours(self) -> None:
        """Permanent neighbour entries on every link, so no Neighbor Discovery packet crosses a link
        during a measurement and the counters see only the probes."""
        pairs = [
            (
                self.router_ns[ln.a],
                self._ifindex[(ln.a, ln.b)],
                _link_addr(ln.index, 1),
                self.router_ns[ln.b],
                self._ifindex[(ln.b, ln.a)],
                _link_addr(ln.index, 2),
            )
            for ln in self.net.links
        ]
        ing, eg = self.router_ns[self.ingress], self.router_ns[self.egress]
        pairs.append(
            (self.src_ns, self._index(self.src_ns, "eth0"), SRC_HOST_ADDR, ing, self._index(ing, "hosta"), SRC_GW)
        )
        pairs.append(
            (self.dst_ns, self._index(self.dst_ns, "eth0"), DST_HOST_ADDR, eg, self._index(eg, "hostb"), DST_GW)
        )
        for ns1, if1, addr1, ns2, if2, addr2 in pairs:
            self._ipr[ns1].neigh("add", dst=addr2, lladdr=self._mac(ns2, if2), ifindex=if1, state=NUD_PERMANENT)
            self._ipr[ns2].neigh("add", dst=addr1, lladdr=self._mac(ns1, if1), ifindex=if2, state=NUD_PERMANENT)

    def _neighbour_addr(self, here: int, there: int) -> str:
        li = self.net._link_of[(here, there)]
        link = self.net.links[li]
        return _link_addr(li, 1 if link.a == there else 2)

    def _install_routing(self) -> None:
        net = self.net
        for here, name in enumerate(self.router_ns):
            ipr = self._ipr[name]
            any_if = next(iter(self._ifindex[(here, n)] for n in net.adjacency(here)), None)
            if any_if is None:
                continue
            for dest in range(len(net.routers)):
                if dest == here:
                    continue
                nxt = int(net._tree(dest)[1][here])
                if nxt < 0:
                    continue
                ipr.route(
                    "add",
                    dst=str(net.routers[dest].locator),
                    gateway=self._neighbour_addr(here, nxt),
                    oif=self._ifindex[(here, nxt)],
                )
            ipr.route(
                "add",
                dst=f"{net.sid(here, Behavior.END)}/128",
                oif=any_if,
                encap={"type": "seg6local", "action": "End"},
            )
            for nbr in net.adjacency(here):
                ipr.route(
                    "add",
                    dst=f"{net.sid(here, Behavior.END_X, nbr)}/128",
                    oif=self._ifindex[(here, nbr)],
                    encap={"type": "seg6local", "action": "End.X", "nh6": self._neighbour_addr(here, nbr)},
                )
            ipr.route(
                "add",
                dst=f"{net.sid(here, Behavior.END_DT6)}/128",
                oif=any_if,
                encap={"type": "seg6local", "action": "End.DT6", "table": 254},
            )

    def _settle(self, timeout_s: float) -> None:
        """Wait until no address is tentative (link-locals included), so no first packet is dropped."""
        deadline = time.monotonic() + timeout_s
        while True:
            tentative = [
                name
                for name, ipr in self._ipr.items()
                if any(a.get("IFA_FLAGS", 0) & IFA_F_TENTATIVE for a in ipr.get_addr(family=socket.AF_INET6))
            ]
            if not tentative or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.3)

    # ---- leases -------------------------------------------------------------------------------

    def install_lease(self, segments: Sequence[ipaddress.IPv6Address]) -> None:
        """Steer traffic for the destination host through ``segments`` (travel order), replacing any
        earlier lease. pyroute2 wants the SRH's wire order (last segment first)."""
        if not segments:
            raise InputError("a lease needs at least one segment", field="segments")
        first = segments[0]
        here = self.ingress
        owner = next((r.index for r in self.net.routers if ipaddress.IPv6Address(first) in r.locator.network), None)
        if owner is None:
            raise InputError(f"segment {first} is outside every router's locator", field="segments")
        nxt = here if owner == here else int(self.net._tree(owner)[1][here])
        oif = self._ifindex[(here, nxt)] if nxt != here else self._ifindex[(here, self.net.adjacency(here)[0])]
        self._ipr[self.router_ns[here]].route(
            "replace",
            dst=DST_PREFIX,
            oif=oif,
            encap={"type": "seg6", "mode": "encap", "segs": [str(s) for s in reversed(segments)]},
        )

    # ---- measurement --------------------------------------------------------------------------

    def rx_packets(self) -> dict[tuple[int, int], int]:
        """RX packets per (router, neighbour) interface, from IFLA_STATS64."""
        out: dict[tuple[int, int], int] = {}
        for here, name in enumerate(self.router_ns):
            by_index = {idx: nbr for (r, nbr), idx in self._ifindex.items() if r == here}
            for ln in self._ipr[name].get_links():
                nbr = by_index.get(ln["index"])
                if nbr is not None:
                    stats: Any = ln.get("IFLA_STATS64")
                    out[(here, nbr)] = int(stats["rx_packets"])
        return out

    def send_udp(self, count: int, payload: bytes = b"suanwang-srv6-probe", timeout_s: float = 2.0) -> int:
        """Send ``count`` UDP datagrams from the source host to the destination host; returns how many arrived."""
        rx = socket_in(self.dst_ns, socket.AF_INET6, socket.SOCK_DGRAM)
        tx = socket_in(self.src_ns, socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            rx.bind((DST_HOST_ADDR, UDP_PORT))
            rx.settimeout(timeout_s)
            for i in range(count):
                tx.sendto(payload + i.to_bytes(4, "big"), (DST_HOST_ADDR, UDP_PORT))
            got = 0
            deadline = time.monotonic() + timeout_s
            while got < count and time.monotonic() < deadline:
                try:
                    data = rx.recv(2048)
                except TimeoutError:
                    break
                if data.startswith(payload):
                    got += 1
            return got
        finally:
            rx.close()
            tx.close()

    def open_capture(self, router: int, neighbour: int) -> socket.socket:
        """A raw AF_PACKET socket on ``router``'s interface facing ``neighbour`` (all protocols)."""
        sock = socket_in(self.router_ns[router], socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        sock.bind((self.interface_name(neighbour), 0))
        sock.setblocking(False)
        return sock

    @staticmethod
    def drain(sock: socket.socket) -> list[bytes]:
        frames = []
        while True:
            try:
                frames.append(sock.recv(65535))
            except BlockingIOError:
                return frames
