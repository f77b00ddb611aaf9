"""SRv6 addressing and the Segment Routing Header (RFC 8986, RFC 8754).

Locator plan (one /48 per router, inside the ULA block fd00::/8):

    fd00:OOOO:RRRR::/48   OOOO = operator number (1-based, order of the network's operators)
                          RRRR = router number inside that operator (its position in the topology file)

A SID is LOC:FUNCT:ARG = 48 bits locator, 16 bits function, 64 bits argument (RFC 8986 section 3.1).
Function codes (local to each router, documented here so every router uses the same ones):

    0x0001 End            node SID: go to this router by the shortest path
    0x0004 End.DT4        decapsulate, IPv4 lookup in the VRF given by ARG (modelled only: this
                          kernel has no VRF, see docs/network-model.md)
    0x0006 End.DT6        decapsulate, IPv6 lookup in table ARG (0 means the main table, 254)
    0x0100 + j  End.X     adjacency SID: cross this router's j-th link (its j-th neighbour in the
                          network's adjacency order), whatever the shortest path says
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum

from suanwang.errors import InputError

LOCATOR_BITS = 48
FUNCT_BITS = 16
ARG_BITS = 128 - LOCATOR_BITS - FUNCT_BITS
ULA_PREFIX = 0xFD00
ROUTING_TYPE_SRH = 4
IPPROTO_IPV6 = 41
IPPROTO_ROUTING = 43


class Behavior(IntEnum):
    END = 0x0001
    END_DT4 = 0x0004
    END_DT6 = 0x0006
    END_X = 0x0100


END_X_MAX_ADJACENCIES = 0xFFFF - Behavior.END_X + 1


@dataclass(frozen=True, slots=True)
class Locator:
    """An IPv6 prefix that routes to one router: bytes16 + prefix length, as the contracts store it."""

    prefix: bytes
    length: int = LOCATOR_BITS

    @classmethod
    def for_router(cls, operator_number: int, router_number: int) -> Locator:
        if not (1 <= operator_number <= 0xFFFF and 0 <= router_number <= 0xFFFF):
            raise InputError(
                f"locator plan fd00:OOOO:RRRR::/48 holds operators 1..65535 and routers 0..65535; "
                f"got operator {operator_number}, router {router_number}",
                field="locator",
            )
        return cls(struct.pack(">HHH", ULA_PREFIX, operator_number, router_number) + bytes(10))

    @property
    def network(self) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network((self.prefix, self.length))

    def sid(self, function: int, argument: int = 0) -> ipaddress.IPv6Address:
        """The SID LOC:FUNCT:ARG of this locator."""
        if not (0 <= function < 1 << FUNCT_BITS and 0 <= argument < 1 << ARG_BITS):
            raise InputError(
                f"function {function:#x} or argument {argument:#x} does not fit the SID format", field="sid"
            )
        loc = int.from_bytes(self.prefix, "big") >> (128 - LOCATOR_BITS) << (128 - LOCATOR_BITS)
        return ipaddress.IPv6Address(loc | function << ARG_BITS | argument)

    def __str__(self) -> str:
        return str(self.network)


def split_sid(sid: ipaddress.IPv6Address) -> tuple[int, int, int]:
    """(locator bits, function, argument) of a SID."""
    value = int(sid)
    return value >> (128 - LOCATOR_BITS), (value >> ARG_BITS) & 0xFFFF, value & ((1 << ARG_BITS) - 1)


def behavior_of(function: int) -> Behavior:
    if function >= Behavior.END_X:
        return Behavior.END_X
    return Behavior(function)


@dataclass(frozen=True, slots=True)
class Srh:
    """A decoded Segment Routing Header; ``segments`` in wire order (Segment List[0] is the LAST segment)."""

    next_header: int
    segments_left: int
    last_entry: int
    flags: int
    tag: int
    segments: tuple[ipaddress.IPv6Address, ...]
    tlvs: bytes

    @property
    def travel_order(self) -> tuple[ipaddress.IPv6Address, ...]:
        return tuple(reversed(self.segments))


def encode_srh(
    travel_order: list[ipaddress.IPv6Address] | tuple[ipaddress.IPv6Address, ...],
    *,
    next_header: int = IPPROTO_IPV6,
    segments_left: int | None = None,
    flags: int = 0,
    tag: int = 0,
    tlvs: bytes = b"",
) -> bytes:
    """The SRH bytes (RFC 8754 section 2) for segments given in the order the packet visits them.

    Segment List[0] is the last segment, so the list goes on the wire reversed; Last Entry is n-1
    and, for a headend that puts the first segment in the destination address, Segments Left starts
    at n-1 (the default). ``tlvs`` must already be padded to a multiple of 8 octets.
    """
    n = len(travel_order)
    if n == 0:
        raise InputError("a segment list needs at least one segment", field="segments")
    if n > 128:
        raise InputError(
            f"an SRH holds at most 128 segments (Last Entry is 8 bits of which we use 0..127); got {n}",
            field="segments",
        )
    if len(tlvs) % 8:
        raise InputError(f"SRH TLVs must be padded to 8 octets; got {len(tlvs)}", field="tlvs")
    left = n - 1 if segments_left is None else segments_left
    if not 0 <= left <= n - 1:
        raise InputError(f"Segments Left must be 0..{n - 1}; got {left}", field="segments_left")
    hdr_ext_len = (8 + 16 * n + len(tlvs)) // 8 - 1
    head = struct.pack(">BBBBBBH", next_header, hdr_ext_len, ROUTING_TYPE_SRH, left, n - 1, flags, tag)
    return head + b"".join(s.packed for s in reversed(travel_order)) + tlvs


def decode_srh(data: bytes) -> Srh:
    """Parse an SRH from the start of ``data`` (trailing bytes after the header are ignored)."""
    if len(data) < 8:
        raise InputError(f"an SRH is at least 8 octets; got {len(data)}", field="srh")
    nh, ext_len, rtype, left, last, flags, tag = struct.unpack(">BBBBBBH", data[:8])
    if rtype != ROUTING_TYPE_SRH:
        raise InputError(f"Routing Type is {rtype}, not {ROUTING_TYPE_SRH} (SRH)", field="srh")
    total = (ext_len + 1) * 8
    if len(data) < total or 8 + 16 * (last + 1) > total:
        raise InputError(f"SRH says {total} octets with {last + 1} segments but {len(data)} are present", field="srh")
    segs = tuple(ipaddress.IPv6Address(data[8 + 16 * i : 24 + 16 * i]) for i in range(last + 1))
    return Srh(nh, left, last, flags, tag, segs, data[8 + 16 * (last + 1) : total])
