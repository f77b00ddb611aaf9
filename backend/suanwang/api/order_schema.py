"""The order's request models, derived from the one definition of its fields: the EIP-712 Order type
(`suanwang.chain.market.ORDER_TYPE`, which the contract hashes). Each Solidity type maps to a JSON type
and its bounds (integers wider than 64 bits travel as decimal strings: wei amounts exceed a JavaScript
number); `ORDER_NOTES` adds what a buyer reads in the schema and the market's bounds beyond the type.

`OrderIn` is the struct as the buyer signs it; `QuoteRequest` asks for the fields a buyer chooses, by
their snake_case names, and the service fills in the rest (expiry, nonce, epoch); the buyer fills in
specDigest, the digest of the specification it seals to the quoted nodes (docs/content.md, Privacy)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, create_model, field_validator

from suanwang.api.schemas import ADDRESS_PATTERN, RequestModel
from suanwang.chain.order_type import ORDER_TYPE
from suanwang.content import CHUNK_BYTES

U256_DECIMAL = r"^[0-9]{1,78}$"
BYTES32_HEX = r"^0x[0-9a-fA-F]{64}$"
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = "0x" + "00" * 32
# Integers up to this width are JSON numbers; wider ones (the uint128 amounts) decimal strings.
JSON_NUMBER_BITS = 64

# Per field: what it means, and the market's bounds beyond its Solidity type (IMarket.Order).
ORDER_NOTES: dict[str, dict[str, Any]] = {
    "matcher": {"description": "the only matcher that may match it; 0x0...0 = any"},
    "logicMcu": {"description": "scalar/integer compute, milli-CU"},
    "parallelMcu": {"description": "vector FP32/FP64 compute, milli-CU"},
    "neuralMcu": {"description": "tensor compute, milli-CU"},
    "gpuModel": {"description": "device catalog code; 0 = any"},
    "gpuMilli": {"le": 1000, "description": "a share of one GPU in milli-GPU (OpenB gpu_milli); 0 = none"},
    "minTier": {"le": 3, "description": "0 small, 1 medium, 2 large, 3 super-large"},
    "duration": {"ge": 1, "description": "seconds"},
    "minRunSeconds": {"description": "seconds: not completed earlier, billed at least this long; <= duration"},
    "maxPricePerCuHour": {"description": "token base units per CU-hour"},
    "maxTotal": {"description": "the whole bill's limit, token base units"},
    "maxTransit": {"description": "the transit fees' limit, token base units"},
    "maxLatencyMs": {"description": "0 = no bound"},
    "minBandwidthMbps": {"description": "reserved on the path; transit is priced on it"},
    "expiry": {"description": "unix time"},
    "nonce": {"description": "at least the buyer's nonce floor (Market.nonceFloorOf)"},
    "epoch": {"description": "the value epoch it is signed in (Federation.epoch)"},
    "specDigest": {"description": "sha2-256 digest of the job specification (the digest inside its CID)"},
    "serviceId": {"description": "CFN/CATS anycast service id; 0x00...0 = none"},
    "apnId": {"description": "APN6 APN ID (APP-GROUP-ID 32 | USER-GROUP-ID 32); 0 = none"},
    "apnSlaClass": {"description": "APN6 SLA class; 0 = none"},
}
# The fields given as decimal strings, which the signed struct carries as integers.
WIDE_FIELDS = tuple(
    f["name"] for f in ORDER_TYPE if f["type"].startswith("uint") and int(f["type"][4:]) > JSON_NUMBER_BITS
)


def _below(bits: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if int(value) >= 2**bits:
            raise ValueError(f"the amount must be below 2^{bits}")
        return value

    return check


def _order_field(kind: str, name: str, **changes: Any) -> tuple[Any, Any]:
    """The pydantic (type, Field) of an Order field of Solidity type `kind`, with ORDER_NOTES and `changes`."""
    rules: dict[str, Any] = {}
    annotation: Any
    if kind == "address":
        annotation, rules = str, {"pattern": ADDRESS_PATTERN}
    elif kind == "bytes32":
        annotation, rules = str, {"pattern": BYTES32_HEX}
    elif kind == "bool":
        annotation = bool
    elif kind.startswith("uint") and int(kind[4:]) > JSON_NUMBER_BITS:
        annotation, rules = Annotated[str, AfterValidator(_below(int(kind[4:])))], {"pattern": U256_DECIMAL}
    elif kind.startswith("uint"):
        annotation, rules = int, {"ge": 0, "lt": 2 ** int(kind[4:])}
    else:
        raise TypeError(f"the Order field {name} has Solidity type {kind}, which the API has no JSON form for")
    rules = {**rules, **ORDER_NOTES.get(name, {}), **changes}
    if "le" in rules:  # a tighter bound of the market's replaces the type's
        rules.pop("lt", None)
    return annotation, Field(**rules)


def _not_past_duration(run_field: str, duration_field: str) -> Any:
    """A validator: the minimum run (`run_field`) must not exceed the duration (validated before it)."""

    def check(cls: Any, value: int, info: ValidationInfo) -> int:
        duration = info.data.get(duration_field)
        if duration is not None and value > duration:
            raise ValueError(f"{run_field} ({value}) must not exceed the duration ({duration} s)")
        return value

    return field_validator(run_field)(check)


class OrderFields(RequestModel):
    """The Order struct exactly as the buyer signed it (contracts/interfaces/IMarket.sol)."""

    def as_struct(self) -> dict[str, Any]:
        """The struct as it is hashed and sent: the wide amounts as integers."""
        out = self.model_dump()
        for name in WIDE_FIELDS:
            out[name] = int(out[name])
        return out


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# The fields a quote fills in itself, and the quote's names that are not the field's own in snake_case.
QUOTE_FILLS = frozenset({"expiry", "nonce", "epoch", "specDigest"})
QUOTE_NAMES = {
    f["name"]: {"duration": "duration_s", "minRunSeconds": "min_run_s"}.get(f["name"], _snake(f["name"]))
    for f in ORDER_TYPE
    if f["name"] not in QUOTE_FILLS
}
QUOTE_REQUIRED = frozenset({"buyer", "duration", "maxPricePerCuHour", "maxTotal"})
QUOTE_DEFAULTS: dict[str, Any] = {
    "address": ZERO_ADDRESS,
    "bytes32": ZERO_BYTES32,
    "bool": True,
    "maxTransit": str(10 * 10**18),
}


def _quote_default(kind: str, name: str) -> Any:
    if name in QUOTE_REQUIRED:
        return ...
    return QUOTE_DEFAULTS.get(name, QUOTE_DEFAULTS.get(kind, 0))


# The largest sealed specification: one content block, so that its CID is the raw one its digest names.
MAX_ENVELOPE_BYTES = CHUNK_BYTES
MAX_ENVELOPE_BASE64 = 4 * -(-MAX_ENVELOPE_BYTES // 3)


class JobIn(RequestModel):
    envelope: str = Field(
        min_length=1,
        max_length=MAX_ENVELOPE_BASE64,
        pattern=r"^[A-Za-z0-9+/]+={0,2}$",
        description="the sealed specification (docs/content.md, Privacy), base64 (RFC 4648, padded); the "
        "order's specDigest is the sha2-256 of its bytes",
    )


class QuoteFields(RequestModel):
    """What a buyer wants; the answer is the Order to sign and the nodes that would take it."""

    access_point: str = Field(min_length=1, max_length=200, description="the buyer's router (name or label)")
    valid_for_s: int = Field(3600, ge=60, le=30 * 86400, description="how long the order stays valid, seconds")

    def order_fields(self) -> dict[str, Any]:
        """The chosen Order fields by their Order names."""
        return {name: getattr(self, quoted) for name, quoted in QUOTE_NAMES.items()}


if TYPE_CHECKING:  # the models' fields are made below, from ORDER_TYPE; mypy sees their bases
    OrderIn = OrderFields
    QuoteRequest = QuoteFields
else:
    OrderIn = create_model(
        "OrderIn",
        __base__=OrderFields,
        __doc__=OrderFields.__doc__,
        __validators__={"_within_duration": _not_past_duration("minRunSeconds", "duration")},
        **{f["name"]: _order_field(f["type"], f["name"]) for f in ORDER_TYPE},
    )
    QuoteRequest = create_model(
        "QuoteRequest",
        __base__=QuoteFields,
        __doc__=QuoteFields.__doc__,
        __validators__={"_within_duration": _not_past_duration("min_run_s", "duration_s")},
        **{
            QUOTE_NAMES[f["name"]]: _order_field(
                f["type"],
                f["name"],
                default=_quote_default(f["type"], f["name"]),
                **({"le": 365 * 86400} if f["name"] == "duration" else {}),
            )
            for f in ORDER_TYPE
            if f["name"] in QUOTE_NAMES
        },
    )


class OrderSubmission(RequestModel):
    order: OrderIn
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="the buyer's EIP-712 signature")
    access_point: str = Field(min_length=1, max_length=200, description="the buyer's router (name or label)")
    job: JobIn = Field(description="what the node runs, sealed: the order signs its digest (specDigest)")
