"""The packed forms Market takes (IMarket: order, bill, entry, deal), built off chain by suanwang.chain.bill.
The contract tests and test_market_gateway check the chain accepts them; these check the layout against
eth_abi's own packed encoding of the same fields (a reference written independently of bill.py), that
deals round-trip, and that bad input is refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.packed import encode_packed
from hypothesis import given, settings
from hypothesis import strategies as st

from suanwang.chain.bill import (
    DEAL_FIELDS,
    PACKED_ORDER_BYTES,
    Seats,
    make_bill,
    pack_bill,
    pack_deal,
    pack_entry,
    pack_order,
    priced_transit,
    transit_fee,
    unpack_deal,
)
from suanwang.chain.market import ORDER_TYPE
from suanwang.errors import NotFoundError

BUYER = "0x" + "11" * 20
OPERATOR = "0x" + "22" * 20
OTHER_OPERATOR = "0x" + "33" * 20
MATCHER = "0x" + "44" * 20
SEATS = Seats.of([OTHER_OPERATOR, OPERATOR])  # OPERATOR holds seat 1
ORDER = {
    "buyer": BUYER, "matcher": MATCHER, "logicMcu": 1000, "parallelMcu": 2000, "neuralMcu": 3000,
    "memoryMib": 1024, "gpuModel": 7, "gpuCount": 1, "gpuMilli": 500, "minTier": 2, "duration": 3600,
    "minRunSeconds": 60, "maxPricePerCuHour": 10**19, "maxTotal": 10**20, "maxTransit": 10**18, "maxLatencyMs": 20,
    "minBandwidthMbps": 1000, "autoAccept": True, "expiry": 2**39, "nonce": 5, "epoch": 3,
    "specDigest": "0x" + "ab" * 32, "serviceId": "0x" + "cd" * 32, "apnId": 2**40 + 9, "apnSlaClass": 4,
}  # fmt: skip
# The deal's fields in Matched's order with their Solidity types (IMarket.Matched), for the reference.
DEAL_TYPES = (
    ("buyer", "address"), ("seller", "address"), ("matcher", "address"), ("nodeId", "uint256"),
    ("logicMcu", "uint64"), ("parallelMcu", "uint64"), ("neuralMcu", "uint64"), ("duration", "uint32"),
    ("minRunSeconds", "uint32"), ("maxLatencyMs", "uint32"), ("valueless", "bool"), ("computeFee", "uint128"),
    ("platformFee", "uint128"), ("status", "uint8"), ("deadline", "uint40"),
)  # fmt: skip


def _value(kind: str) -> st.SearchStrategy[Any]:
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if kind == "bytes32":
        return st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
    if kind == "bool":
        return st.booleans()
    return st.integers(min_value=0, max_value=2 ** int(kind.removeprefix("uint")) - 1)


orders = st.fixed_dictionaries({f["name"]: _value(f["type"]) for f in ORDER_TYPE})
operators = st.lists(_value("address"), min_size=1, max_size=8, unique=True)


def _reference(types: list[str], values: list[Any]) -> bytes:
    """eth_abi's packed encoding (Solidity's abi.encodePacked of the same values, for these static types)."""
    return encode_packed(
        types, [bytes.fromhex(v[2:]) if t == "bytes32" else v for t, v in zip(types, values, strict=True)]
    )


@settings(max_examples=300)
@given(orders)
def test_an_order_packs_as_abi_encode_packed_of_its_fields(order: dict[str, Any]) -> None:
    packed = pack_order(order)
    assert packed == _reference([f["type"] for f in ORDER_TYPE], [order[f["name"]] for f in ORDER_TYPE])
    assert len(packed) == PACKED_ORDER_BYTES == 230
    assert pack_order(tuple(order[f["name"]] for f in ORDER_TYPE)) == packed  # the Order tuple packs the same


def test_an_order_packs_into_230_bytes_each_field_at_its_width() -> None:
    packed = pack_order(ORDER)
    assert packed[:20] == bytes.fromhex("11" * 20) and packed[20:40] == bytes.fromhex("44" * 20)  # buyer, matcher
    assert int.from_bytes(packed[40:48], "big") == 1000  # logicMcu
    assert int.from_bytes(packed[72:74], "big") == 500  # gpuMilli, after gpuCount
    assert int.from_bytes(packed[79:83], "big") == 60  # minRunSeconds, after minTier and duration
    assert int.from_bytes(packed[115:131], "big") == 10**18  # maxTransit, after maxPricePerCuHour and maxTotal
    assert packed[139] == 1  # autoAccept
    assert int.from_bytes(packed[140:145], "big") == 2**39  # expiry, 5 bytes
    assert int.from_bytes(packed[153:157], "big") == 3  # epoch, after the nonce
    assert packed[157:189] == bytes.fromhex("ab" * 32) and packed[189:221] == bytes.fromhex("cd" * 32)
    assert int.from_bytes(packed[221:229], "big") == 2**40 + 9 and packed[229:] == b"\x04"


@settings(max_examples=200)
@given(
    orders,
    st.integers(min_value=0, max_value=2**256 - 1),
    st.integers(min_value=0, max_value=2**128 - 1),
    st.integers(min_value=0, max_value=2**128 - 1),
    operators.flatmap(
        lambda ops: st.tuples(st.just(ops), st.lists(_value("uint128"), min_size=len(ops), max_size=len(ops)))
    ),
    st.binary(min_size=0, max_size=200),
)
def test_an_entry_is_order_signature_length_signature_bill_as_abi_encode_packed(
    order: dict[str, Any], node_id: int, compute: int, platform: int, transit: tuple[list[str], list[int]], sig: bytes
) -> None:
    ops, fees = transit
    seats = Seats.of(ops[::-1])  # seat numbers differ from the list's order
    bill = pack_bill(node_id, compute, platform, ops, fees, seats)
    seat_numbers = [seats.seat_of(a) for a in ops]
    expected_bill = encode_packed(
        ["uint256", "uint128", "uint128", "uint8", *["uint8"] * len(ops), *["uint128"] * len(ops)],
        [node_id, compute, platform, len(ops), *seat_numbers, *fees],
    )
    assert bill == expected_bill and len(bill) == 65 + 17 * len(ops)
    entry = pack_entry(order, sig, bill)
    assert entry == pack_order(order) + encode_packed(["uint16", "bytes"], [len(sig), sig]) + bill


@settings(max_examples=200)
@given(
    st.fixed_dictionaries({name: _value(kind) for name, kind in DEAL_TYPES}),
    operators.flatmap(
        lambda ops: st.tuples(st.just(ops), st.lists(_value("uint128"), min_size=len(ops), max_size=len(ops)))
    ),
)
def test_a_deal_packs_as_abi_encode_packed_and_round_trips(
    head: dict[str, Any], transit: tuple[list[str], list[int]]
) -> None:
    ops, fees = transit
    seats = Seats.of(ops)
    fields = {"id": "0x" + "ab" * 32, **head, "transitOperators": ops, "transitFees": fees}
    packed = pack_deal(fields, seats)
    n = len(ops)
    reference = _reference([t for _, t in DEAL_TYPES], [head[name] for name, _ in DEAL_TYPES])
    reference += encode_packed(
        ["uint8", *["uint8"] * n, *["uint128"] * n], [n, *range(n), *fees]
    )  # seats.of(ops) seats ops in order
    assert packed == reference and len(packed) == 168 + 17 * n
    unpacked = unpack_deal(fields["id"], packed, seats)
    assert set(DEAL_FIELDS) <= set(unpacked)
    assert {k: _lowered(unpacked[k]) for k in fields} == fields  # addresses come back checksummed
    assert pack_deal(unpacked, seats) == packed


def _lowered(value: object) -> object:
    if isinstance(value, list):
        return [_lowered(v) for v in value]
    return value.lower() if isinstance(value, str) else value


def test_a_deal_of_the_matched_layout_unpacks_by_name() -> None:
    fields = {
        "id": "0x" + "ab" * 32, "buyer": BUYER, "seller": OPERATOR, "matcher": MATCHER, "nodeId": 9, "logicMcu": 1,
        "parallelMcu": 2, "neuralMcu": 3, "duration": 60, "minRunSeconds": 30, "maxLatencyMs": 25,
        "valueless": False, "computeFee": 10, "platformFee": 1, "status": 3, "deadline": 2**33,
        "transitOperators": [OPERATOR, OTHER_OPERATOR], "transitFees": [4, 5],
    }  # fmt: skip
    packed = pack_deal(fields, SEATS)
    assert len(packed) == 168 + 17 * 2
    assert int.from_bytes(packed[120:124], "big") == 30 and int.from_bytes(packed[124:128], "big") == 25
    assert packed[167:170] == bytes([2, 1, 0])  # n, then the seats
    assert unpack_deal(fields["id"], packed, SEATS)["minRunSeconds"] == 30
    with pytest.raises(ValueError, match="is 202 bytes, not 203"):
        unpack_deal(fields["id"], packed + b"\x00", SEATS)


def test_the_transit_fee_is_the_tariff_for_the_bandwidth_and_hours_rounded_down() -> None:
    # 2 tokens per Gbps-hour, 100 Mbps for 30 minutes: 0.1 Gbps x 0.5 h x 2 = 0.1 token.
    assert transit_fee(2 * 10**18, 100, 1800) == 10**17
    assert transit_fee(7, 1, 1) == 0 and transit_fee(3_600_000, 1, 1) == 1  # rounded down, exact at 1
    lines = priced_transit(ORDER, [(OPERATOR, 36 * 10**5), (OTHER_OPERATOR, 0)])
    assert lines == [(OPERATOR, 36 * 10**5 * 1000 * 3600 // 3_600_000), (OTHER_OPERATOR, 0)]
    bill = make_bill(ORDER, 3, 2 * 10**18, 250, lines)
    assert bill.total == bill.compute_fee + bill.platform_fee + lines[0][1]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"logicMcu": 2**64}, "logicMcu"),
        ({"expiry": -1}, "expiry"),
        ({"buyer": "0x1234"}, "buyer"),
        ({"matcher": "0x" + "00" * 21}, "matcher"),
        ({"specDigest": "0x" + "00" * 31}, "specDigest"),
        ({"gpuMilli": 2**16}, "gpuMilli"),
        ({"epoch": 2**32}, "epoch"),
    ],
)
def test_a_field_that_does_not_fit_is_refused_by_name(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must"):
        pack_order({**ORDER, **change})


def test_a_bill_needs_one_fee_per_operator() -> None:
    with pytest.raises(ValueError, match="one fee per transit operator"):
        pack_bill(1, 2, 3, [OPERATOR, OTHER_OPERATOR], [1], SEATS)


def test_an_operator_without_a_seat_is_named() -> None:
    with pytest.raises(NotFoundError, match=f"transit operator {BUYER[:6]}.* has no seat") as refused:
        pack_bill(1, 2, 3, [BUYER], [1], SEATS)
    assert refused.value.field == "transit_operators"
    fields = {**dict.fromkeys(DEAL_FIELDS, 0), "buyer": BUYER, "seller": BUYER, "matcher": BUYER, "status": 1}
    deal = pack_deal({**fields, "deadline": 1, "transitOperators": [OPERATOR], "transitFees": [1]}, SEATS)
    with pytest.raises(NotFoundError, match="no transit operator holds seat 1"):
        unpack_deal("0x" + "00" * 32, deal, Seats.of([OTHER_OPERATOR]))
