"""APN6: an application-aware network attribute (APN ID + SLA parameters) carried with a request,
encoded as an IPv6 Hop-by-Hop option and mapped by the headend to an SRv6 path that honours it.

Layout (after draft-li-apn-ipv6-encap and draft-li-apn-header; the option type is still TBA in the
drafts, so we use the RFC 4727 experimental type 0x1E: skip if unknown, not changed en route)::

     0                   1                   2                   3
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Option Type  | Opt Data Len  |  APN-ID-Type  |P|   Flags     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 APN-ID (32, 64 or 128 bits)                   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |        APN-Para-Type bitmap (32 bits), present when P         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |    one 32-bit value per bit set, in bit order                 |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

APN-ID-Type 1/2/3 = 32/64/128-bit APN ID; the APN ID is APP-GROUP-ID (upper half) and
USER-GROUP-ID (lower half) as in draft-ietf-apn-framework. APN-Para bits (MSB first): bit 0
bandwidth (kbit/s), bit 1 latency (microseconds), bit 2 jitter (microseconds), bit 3 packet loss
ratio (units of 1e-9).

The topology data has no jitter or loss, so the path model charges each hop JITTER_PER_HOP_MS of
jitter and LOSS_PER_LINK of independent loss (stated modelling assumptions, see docs).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from suanwang.errors import InfeasibleError, InputError
from suanwang.network.algorithms import k_shortest_paths
from suanwang.network.model import Network, Path

APN_OPTION_TYPE = 0x1E
APN_ID_TYPES = {32: 1, 64: 2, 128: 3}
FLAG_PARAMS = 0x80
PARA_BANDWIDTH, PARA_LATENCY, PARA_JITTER, PARA_LOSS = 1 << 31, 1 << 30, 1 << 29, 1 << 28
JITTER_PER_HOP_MS = 0.05
LOSS_PER_LINK = 1e-6
CANDIDATE_PATHS = 32
_U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Sla:
    """What an application asks of the network; None means no requirement."""

    max_latency_ms: float | None = None
    min_bandwidth_gbps: float | None = None
    max_jitter_ms: float | None = None
    max_loss: float | None = None


@dataclass(frozen=True, slots=True)
class ApnAttribute:
    apn_id: int
    id_bits: int = 32
    sla: Sla = Sla()

    @classmethod
    def of(cls, app_group: int, user_group: int, sla: Sla = Sla(), id_bits: int = 32) -> ApnAttribute:
        half = id_bits // 2
        if not (0 <= app_group < 1 << half and 0 <= user_group < 1 << half):
            raise InputError(f"app group and user group must each fit {half} bits", field="apn_id")
        return cls(app_group << half | user_group, id_bits, sla)

    @property
    def app_group(self) -> int:
        return self.apn_id >> (self.id_bits // 2)

    @property
    def user_group(self) -> int:
        return self.apn_id & ((1 << (self.id_bits // 2)) - 1)

    def encode_option(self) -> bytes:
        """The APN option (type, length, data) for a Hop-by-Hop or Destination Options header."""
        if self.id_bits not in APN_ID_TYPES:
            raise InputError(f"APN ID length must be 32, 64 or 128 bits; got {self.id_bits}", field="apn_id")
        if not 0 <= self.apn_id < 1 << self.id_bits:
            raise InputError(f"APN ID {self.apn_id} does not fit {self.id_bits} bits", field="apn_id")
        bitmap, values = 0, []
        s = self.sla
        for bit, value in (
            (PARA_BANDWIDTH, None if s.min_bandwidth_gbps is None else s.min_bandwidth_gbps * 1e6),
            (PARA_LATENCY, None if s.max_latency_ms is None else s.max_latency_ms * 1e3),
            (PARA_JITTER, None if s.max_jitter_ms is None else s.max_jitter_ms * 1e3),
            (PARA_LOSS, None if s.max_loss is None else s.max_loss * 1e9),
        ):
            if value is not None:
                if not 0 <= round(value) <= _U32:
                    raise InputError(f"APN parameter {value} does not fit 32 bits", field="sla")
                bitmap |= bit
                values.append(round(value))
        data = struct.pack(">BBH", APN_ID_TYPES[self.id_bits], FLAG_PARAMS if bitmap else 0, 0)
        data += self.apn_id.to_bytes(self.id_bits // 8, "big")
        if bitmap:
            data += struct.pack(f">I{len(values)}I", bitmap, *values)
        return bytes([APN_OPTION_TYPE, len(data)]) + data

    @classmethod
    def decode_option(cls, option: bytes) -> ApnAttribute:
        if len(option) < 2 or option[0] != APN_OPTION_TYPE or len(option) < 2 + option[1]:
            raise InputError("not an APN option (type 0x1E with its data)", field="apn")
        data = option[2 : 2 + option[1]]
        id_type, flags, _ = struct.unpack(">BBH", data[:4])
        bits = {v: k for k, v in APN_ID_TYPES.items()}.get(id_type)
        if bits is None:
            raise InputError(f"unknown APN-ID-Type {id_type}", field="apn")
        apn_id = int.from_bytes(data[4 : 4 + bits // 8], "big")
        sla = Sla()
        if flags & FLAG_PARAMS:
            rest = data[4 + bits // 8 :]
            (bitmap,) = struct.unpack(">I", rest[:4])
            vals = iter(struct.unpack(f">{(len(rest) - 4) // 4}I", rest[4:]))
            bw = next(vals) / 1e6 if bitmap & PARA_BANDWIDTH else None
            lat = next(vals) / 1e3 if bitmap & PARA_LATENCY else None
            jit = next(vals) / 1e3 if bitmap & PARA_JITTER else None
            loss = next(vals) / 1e9 if bitmap & PARA_LOSS else None
            sla = Sla(lat, bw, jit, loss)
        return cls(apn_id, bits, sla)

    def hop_by_hop_header(self, next_header: int) -> bytes:
        """A whole Hop-by-Hop Options header holding this option, padded to 8 octets (PadN/Pad1)."""
        body = bytes([next_header, 0]) + self.encode_option()
        pad = -len(body) % 8
        if pad == 1:
            body += b"\x00"
        elif pad:
            body += bytes([1, pad - 2]) + bytes(pad - 2)
        return bytes([body[0], len(body) // 8 - 1]) + body[2:]


def path_jitter_ms(path: Path) -> float:
    return JITTER_PER_HOP_MS * len(path.links)


def path_loss(path: Path) -> float:
    return 1.0 - (1.0 - LOSS_PER_LINK) ** len(path.links)


def select_path(net: Network, src: str | int, dst: str | int, attribute: ApnAttribute, *, srv6: bool = True) -> Path:
    """The lowest-latency path meeting every SLA parameter of ``attribute``: the headend's mapping of
    an APN ID to an SRv6 path. Raises InfeasibleError saying which parameter no candidate met."""
    sla = attribute.sla
    try:
        first = net.path(src, dst, sla.max_latency_ms, sla.min_bandwidth_gbps, srv6=False)
    except InfeasibleError as exc:
        raise InfeasibleError(f"APN {attribute.apn_id:#x}: {exc.message}", field=exc.field) from None

    def meets(p: Path) -> bool:
        return (
            (sla.max_latency_ms is None or p.latency_ms <= sla.max_latency_ms + 1e-9)
            and (sla.max_jitter_ms is None or path_jitter_ms(p) <= sla.max_jitter_ms + 1e-12)
            and (sla.max_loss is None or path_loss(p) <= sla.max_loss)
        )

    if meets(first):
        return net.make_path(first.router_indices, srv6=srv6) if srv6 else first
    candidates = k_shortest_paths(net, src, dst, CANDIDATE_PATHS, sla.min_bandwidth_gbps, srv6=False)
    for p in candidates:
        if meets(p):
            return net.make_path(p.router_indices, srv6=srv6) if srv6 else p
    fewest = min(candidates, key=lambda p: len(p.links))
    raise InfeasibleError(
        f"APN {attribute.apn_id:#x}: none of the {len(candidates)} shortest paths meets the SLA; the "
        f"fewest-hop one has {len(fewest.links)} hops: jitter {path_jitter_ms(fewest):.3f} ms, loss "
        f"{path_loss(fewest):.2e}, latency {fewest.latency_ms:.3f} ms (asked: jitter <= {sla.max_jitter_ms} ms, "
        f"loss <= {sla.max_loss}, latency <= {sla.max_latency_ms} ms)",
        field="sla",
    )
