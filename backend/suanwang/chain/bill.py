"""The bill of a match, computed exactly as the market checks it (contracts/libraries/Splits.sol)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from suanwang.chain.order_type import ORDER_TYPE, packed_width
from suanwang.errors import NotFoundError

# The fee arithmetic has one home, suanwang.fees; compute_fee, platform_fee and transit_fee stay importable
# from here for the code that already imports them.
from suanwang.fees import compute_fee, platform_fee, transit_fee


@dataclass(frozen=True)
class Seats:
    """The transit operators by seat (Market.transitOperators(), or the indexed OperatorSeated events): bills
    and deals name a transit operator by its seat, one byte. Seats are given once and kept, so a longer
    table only adds seats."""

    operators: tuple[str, ...]

    @classmethod
    def of(cls, operators: Sequence[str]) -> Seats:
        return cls(tuple(to_checksum_address(a) for a in operators))

    def seat_of(self, operator: str) -> int:
        wanted = to_checksum_address(operator)
        try:
            return self.operators.index(wanted)
        except ValueError:
            raise NotFoundError(
                f"transit operator {wanted} has no seat in the market (it does not hold OPERATOR there)",
                field="transit_operators",
            ) from None

    def operator_at(self, seat: int) -> str:
        if not 0 <= seat < len(self.operators):
            raise NotFoundError(
                f"no transit operator holds seat {seat} ({len(self.operators)} seats are held)", field="seat"
            )
        return self.operators[seat]


@dataclass(frozen=True)
class Bill:
    node_id: int
    compute_fee: int
    platform_fee: int
    transit_operators: tuple[str, ...]
    transit_fees: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.compute_fee + self.platform_fee + sum(self.transit_fees)

    def packed(self, seats: Seats) -> bytes:
        """The bill as Market takes it (IMarket: nodeId 32 | computeFee 16 | platformFee 16 | n 1 | n operator
        seats 1 each | n fees 16 each)."""
        return pack_bill(
            self.node_id, self.compute_fee, self.platform_fee, self.transit_operators, self.transit_fees, seats
        )


def make_bill(
    order: Mapping[str, Any],
    node_id: int,
    price_per_cu_hour: int,
    fee_bps: int,
    transit: Sequence[tuple[str, int]] = (),
) -> Bill:
    total_mcu = int(order["logicMcu"]) + int(order["parallelMcu"]) + int(order["neuralMcu"])
    compute = compute_fee(price_per_cu_hour, total_mcu, int(order["duration"]))
    return Bill(
        node_id, compute, platform_fee(compute, fee_bps), tuple(a for a, _ in transit), tuple(f for _, f in transit)
    )


def priced_transit(order: Mapping[str, Any], tariffs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The bill's transit lines for `order`: (operator, fee) for each (operator, its published tariff per
    Gbps-hour), the fee for the order's minBandwidthMbps over its whole duration (transit_fee)."""
    bandwidth, duration = int(order["minBandwidthMbps"]), int(order["duration"])
    return [(operator, transit_fee(tariff, bandwidth, duration)) for operator, tariff in tariffs]


# Market's packed order (IMarket): the Order's fields in order, each exactly its type's width (230 bytes).
_PACKED_ORDER = tuple((f["name"], packed_width(f["type"])) for f in ORDER_TYPE)
PACKED_ORDER_BYTES = sum(size for _, size in _PACKED_ORDER)
MAX_SIGNATURE_BYTES = 2**16 - 1
# Fixed-size byte strings (bytes32) among the packed fields; every other 20-byte field is an address.
_BYTES_FIELDS = frozenset(f["name"] for f in ORDER_TYPE if f["type"].startswith("bytes"))


def _field_bytes(name: str, value: Any, size: int) -> bytes:
    """One packed field, big-endian: an address or a bytes32 (0x-hex string or bytes), a bool or an
    unsigned integer."""
    if size == 20 or name in _BYTES_FIELDS:
        raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
        if len(raw) != size:
            kind = "address" if size == 20 else "byte string"
            raise ValueError(f"{name} must be a {size}-byte {kind}, got {value!r}")
        return raw
    number = int(value)
    if not 0 <= number < 1 << (8 * size):
        raise ValueError(f"{name} must fit in {8 * size} unsigned bits, got {number}")
    return number.to_bytes(size, "big")


def pack_order(order: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """An Order (by field name, or the tuple in the Order's field order) packed as Market takes it."""
    values = order if isinstance(order, Mapping) else dict(zip((n for n, _ in _PACKED_ORDER), order, strict=True))
    return b"".join(_field_bytes(name, values[name], size) for name, size in _PACKED_ORDER)


def pack_bill(
    node_id: int, compute: int, platform: int, operators: Sequence[str], fees: Sequence[int], seats: Seats
) -> bytes:
    """A bill packed as Market takes it (IMarket): nodeId 32 | computeFee 16 | platformFee 16 | n 1 | n
    operator seats | n fees."""
    head = _field_bytes("nodeId", node_id, 32) + _field_bytes("computeFee", compute, 16)
    return head + _field_bytes("platformFee", platform, 16) + _transit_tail(operators, fees, seats)


def _transit_tail(operators: Sequence[str], fees: Sequence[int], seats: Seats) -> bytes:
    """n 1 | n operator seats (1 byte each) | n fees (16 each): the end of a packed bill and of a packed deal."""
    if len(operators) != len(fees) or len(operators) > 255:
        raise ValueError(f"one fee per transit operator (at most 255) is needed: {len(operators)} and {len(fees)}")
    return (
        bytes([len(operators)])
        + bytes(seats.seat_of(a) for a in operators)
        + b"".join(_field_bytes("transitFees", f, 16) for f in fees)
    )


def pack_entry(order: Mapping[str, Any] | Sequence[Any], signature: bytes | str, bill: bytes) -> bytes:
    """One matchSigned / matchSignedBatch entry: the packed order, the signature's length (2 bytes), the
    signature (bytes or 0x-hex), the packed bill."""
    if isinstance(signature, str):
        signature = bytes.fromhex(signature.removeprefix("0x"))
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise ValueError(f"a signature is at most {MAX_SIGNATURE_BYTES} bytes, got {len(signature)}")
    return pack_order(order) + len(signature).to_bytes(2, "big") + bytes(signature) + bill


# A deal's fields by name, in the order of its Matched bytes (with the id from the event's topic; the bytes
# also carry the matcher and the deal's first status and deadline).
DEAL_FIELDS = (
    "id",
    "buyer",
    "seller",
    "nodeId",
    "logicMcu",
    "parallelMcu",
    "neuralMcu",
    "duration",
    "minRunSeconds",
    "maxLatencyMs",
    "valueless",
    "computeFee",
    "platformFee",
    "transitOperators",
    "transitFees",
)


# Market's Matched event packs the deal (IMarket.Matched): (field, bytes) in order, then n transit operators
# by seat (1 byte each) and n transit fees (16 bytes each).
_PACKED_DEAL = (
    ("buyer", 20),
    ("seller", 20),
    ("matcher", 20),
    ("nodeId", 32),
    ("logicMcu", 8),
    ("parallelMcu", 8),
    ("neuralMcu", 8),
    ("duration", 4),
    ("minRunSeconds", 4),
    ("maxLatencyMs", 4),
    ("valueless", 1),
    ("computeFee", 16),
    ("platformFee", 16),
    ("status", 1),
    ("deadline", 5),
)
_ADDRESSES = frozenset({"buyer", "seller", "matcher"})
# The bytes before the transit operators' count n: a packed deal is DEAL_HEAD_BYTES + 1 + 17n bytes.
DEAL_HEAD_BYTES = sum(size for _, size in _PACKED_DEAL)


def unpack_deal(deal_id: str, packed: bytes, seats: Seats) -> dict[str, Any]:
    """The fields of a Matched event's packed `deal` by name (DEAL_FIELDS, with `id` as given, plus
    `matcher`, `status` and `deadline`); addresses checksummed (transit operators through `seats`), integers
    as int."""
    out: dict[str, Any] = {"id": deal_id}
    at = 0
    for name, size in _PACKED_DEAL:
        raw = packed[at : at + size]
        at += size
        if name in _ADDRESSES:
            out[name] = to_checksum_address(raw)
        elif name == "valueless":
            out[name] = raw != b"\x00"
        else:
            out[name] = int.from_bytes(raw, "big")
    n = packed[at]
    at += 1
    out["transitOperators"] = [seats.operator_at(seat) for seat in packed[at : at + n]]
    at += n
    out["transitFees"] = [int.from_bytes(packed[at + 16 * i : at + 16 * (i + 1)], "big") for i in range(n)]
    if at + 16 * n != len(packed):
        raise ValueError(f"a packed deal with {n} transit operators is {at + 16 * n} bytes, not {len(packed)}")
    return out


def pack_deal(fields: Mapping[str, Any], seats: Seats) -> bytes:
    """The inverse of unpack_deal: a deal's Matched bytes from its fields by name (matcher, status and
    deadline included), the bytes every lifecycle call passes back."""
    head = b"".join(_field_bytes(name, fields[name], size) for name, size in _PACKED_DEAL)
    return head + _transit_tail(fields["transitOperators"], fields["transitFees"], seats)
