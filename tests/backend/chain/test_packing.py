"""The packed forms Market takes (IMarket: order, bill, entry, deal), built off chain by suanwang.chain.bill.
The contract tests and test_market_gateway check the chain accepts them; these check the layout and that
bad input is refused naming the field."""

from __future__ import annotations

import pytest

from suanwang.chain.bill import (
    DEAL_FIELDS,
    Seats,
    make_bill,
    pack_bill,
    pack_deal,
    pack_entry,
    pack_order,
    unpack_deal,
)
from suanwang.errors import NotFoundError

BUYER = "0x" + "11" * 20
OPERATOR = "0x" + "22" * 20
OTHER_OPERATOR = "0x" + "33" * 20
SEATS = Seats.of([OTHER_OPERATOR, OPERATOR])  # OPERATOR holds seat 1
ORDER = {
    "buyer": BUYER, "logicMcu": 1000, "parallelMcu": 2000, "neuralMcu": 3000, "memoryMib": 1024, "gpuModel": 7,
    "gpuCount": 1, "minTier": 2, "duration": 3600, "maxPricePerCuHour": 10**19, "maxTotal": 10**20,
    "maxLatencyMs": 20, "minBandwidthMbps": 1000, "autoAccept": True, "expiry": 2**39, "nonce": 5,
}  # fmt: skip


def test_an_order_packs_into_111_bytes_each_field_at_its_width() -> None:
    packed = pack_order(ORDER)
    assert len(packed) == 111
    assert packed[:20] == bytes.fromhex("11" * 20)
    assert int.from_bytes(packed[20:28], "big") == 1000  # logicMcu, 8 bytes after the buyer
    assert int.from_bytes(packed[57:73], "big") == 10**19  # maxPricePerCuHour
    assert packed[97] == 1  # autoAccept
    assert int.from_bytes(packed[98:103], "big") == 2**39  # expiry, 5 bytes
    assert pack_order(tuple(ORDER.values())) == packed  # the Order tuple in field order packs the same


def test_an_entry_is_order_signature_length_signature_bill() -> None:
    bill = make_bill(ORDER, 3, 2 * 10**18, 250, [(OPERATOR, 7)])
    signature = bytes(range(65))
    packed = bill.packed(SEATS)
    entry = pack_entry(ORDER, "0x" + signature.hex(), packed)
    assert entry[111:113] == (65).to_bytes(2, "big") and entry[113:178] == signature
    assert entry[178:] == packed and len(packed) == 65 + 17
    assert packed[64] == 1 and packed[65] == 1  # one operator, by its seat
    assert int.from_bytes(packed[66:82], "big") == 7


def test_a_deal_round_trips_through_its_matched_bytes() -> None:
    fields = {
        "id": "0x" + "ab" * 32, "buyer": BUYER, "seller": OPERATOR, "matcher": BUYER, "nodeId": 9, "logicMcu": 1,
        "parallelMcu": 2, "neuralMcu": 3, "duration": 60, "valueless": False, "computeFee": 10, "platformFee": 1,
        "status": 3, "deadline": 2**33, "transitOperators": [OPERATOR, OTHER_OPERATOR], "transitFees": [4, 5],
    }  # fmt: skip
    packed = pack_deal(fields, SEATS)
    assert len(packed) == 160 + 17 * 2
    assert packed[159:162] == bytes([2, 1, 0])  # n, then the seats
    unpacked = unpack_deal(fields["id"], packed, SEATS)

    def lowered(value: object) -> object:
        if isinstance(value, list):
            return [lowered(v) for v in value]
        return value.lower() if isinstance(value, str) else value

    assert set(DEAL_FIELDS) <= set(unpacked)
    assert {k: lowered(unpacked[k]) for k in fields} == fields  # addresses come back checksummed
    assert pack_deal(unpacked, SEATS) == packed


@pytest.mark.parametrize(
    ("change", "field"),
    [({"logicMcu": 2**64}, "logicMcu"), ({"expiry": -1}, "expiry"), ({"buyer": "0x1234"}, "buyer")],
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
