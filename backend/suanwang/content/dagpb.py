"""The dag-pb block codec: encode and decode the protobuf nodes UnixFS files are built of (pure).

Written by hand from the dag-pb spec (https://ipld.io/specs/codecs/dag-pb/spec/) because no maintained
Python library encodes it (PyPI's ``ipld-dag-pb`` is a 0.0.1 from 2025). The schema::

    message PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }
    message PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }

The spec's canonical form, which the node's hash (and so its CID) depends on: every Links entry is written
before Data even though Data has the lower field number, the fields of a link are written in the order
Hash, Name, Tsize, and the links are sorted by the bytes of their Name with a stable sort (so the equal,
empty names of a UnixFS file's chunks keep the chunks in file order). Decoding is as strict as the spec
asks: fields out of that order, unknown fields, wrong wire types and trailing bytes are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Protobuf wire types (https://protobuf.dev/programming-guides/encoding/): varint and length-delimited.
VARINT = 0
LEN = 2
_MAX_VARINT_BYTES = 10  # a uint64 in 7-bit groups


class DagPbError(ValueError):
    """Bytes that are not a canonical dag-pb node."""


@dataclass(frozen=True)
class PBLink:
    hash: bytes
    """The target's binary CID (no multibase prefix)."""
    name: str
    tsize: int
    """Cumulative size of the target: its block plus every block below it."""


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as protobuf writes varints."""
    if value < 0:
        raise ValueError(f"a varint is unsigned, got {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(buf: bytes | memoryview, offset: int) -> tuple[int, int]:
    """The varint at ``offset`` and the offset after it; refuses truncated and over-long (non-minimal) ones."""
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if offset + i >= len(buf):
            raise DagPbError("truncated varint")
        byte = buf[offset + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if byte == 0 and i > 0:
                raise DagPbError("varint not minimally encoded")
            return value, offset + i + 1
    raise DagPbError("varint longer than 10 bytes")


def _key(field: int, wire_type: int) -> bytes:
    return encode_varint(field << 3 | wire_type)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _key(field, LEN) + encode_varint(len(payload)) + payload


def encode_link(link: PBLink) -> bytes:
    # Name is written even when empty, as Kubo does (boxo ipld/merkledag/coding.go, marshalImmutable, sets
    # "Name" on every link), and the empty string then costs two bytes that are part of the hash.
    return (
        _length_delimited(1, link.hash)
        + _length_delimited(2, link.name.encode("utf-8"))
        + _key(3, VARINT)
        + encode_varint(link.tsize)
    )


def encode_node(links: Sequence[PBLink], data: bytes | None) -> bytes:
    """A canonical dag-pb node: Links (sorted stably by Name bytes) first, then Data when given."""
    ordered = sorted(links, key=lambda link: link.name.encode("utf-8"))
    parts = [_length_delimited(2, encode_link(link)) for link in ordered]
    if data is not None:
        parts.append(_length_delimited(1, data))
    return b"".join(parts)


def read_fields(buf: bytes | memoryview) -> list[tuple[int, int, int | memoryview]]:
    """A protobuf message as ``(field, wire type, value)``: an int for varints, a view of the bytes for
    length-delimited fields. Other wire types are not used by dag-pb or UnixFS and are refused."""
    view = memoryview(buf)
    fields: list[tuple[int, int, int | memoryview]] = []
    offset = 0
    while offset < len(view):
        key, offset = decode_varint(view, offset)
        field, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, offset = decode_varint(view, offset)
            fields.append((field, wire_type, value))
        elif wire_type == LEN:
            length, offset = decode_varint(view, offset)
            if offset + length > len(view):
                raise DagPbError(f"field {field} runs past the end of the block")
            fields.append((field, wire_type, view[offset : offset + length]))
            offset += length
        else:
            raise DagPbError(f"field {field} has wire type {wire_type}, which dag-pb does not use")
    return fields


def decode_node(block: bytes | memoryview) -> tuple[list[PBLink], bytes | None]:
    """Links and Data of a dag-pb node, refusing anything but the spec's form (see the module docstring)."""
    links: list[PBLink] = []
    data: bytes | None = None
    for field, wire_type, value in read_fields(block):
        if wire_type != LEN or not isinstance(value, memoryview):
            raise DagPbError(f"PBNode field {field} must be length-delimited")
        if field == 2 and data is None:
            links.append(_decode_link(value))
        elif field == 1 and data is None:
            data = bytes(value)
        else:
            raise DagPbError(f"PBNode field {field} out of place (Links, then at most one Data)")
    return links, data


def _decode_link(buf: memoryview) -> PBLink:
    fields = read_fields(buf)
    layout = [(field, wire_type) for field, wire_type, _ in fields]
    if not fields or layout != [(1, LEN), (2, LEN), (3, VARINT)][: len(fields)]:
        raise DagPbError("a PBLink's fields must be Hash, then optional Name, then optional Tsize")
    values = [value for _, _, value in fields]
    name = values[1] if len(values) > 1 else memoryview(b"")
    tsize = values[2] if len(values) > 2 else 0
    assert isinstance(values[0], memoryview) and isinstance(name, memoryview) and isinstance(tsize, int)
    try:
        text = bytes(name).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DagPbError(f"a PBLink's Name is not UTF-8: {exc}") from exc
    return PBLink(bytes(values[0]), text, tsize)
