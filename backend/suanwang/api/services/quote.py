"""Quotes: from what a buyer wants, the order to sign (valid from the chain's time, at or above the buyer's
nonce floor, in the current value epoch) and the nodes that would take it now, each with the encryption key
the buyer seals its specification to. The quote's specDigest is zero: the buyer seals the specification to
the candidates, and signs the order with the envelope's digest in its place (docs/content.md, Privacy)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from suanwang.api.deps import chain_gateway
from suanwang.api.order_schema import ZERO_BYTES32, OrderIn, QuoteRequest
from suanwang.api.services.intake import access_router
from suanwang.chain.market import order_id, typed_order
from suanwang.errors import InfeasibleError, InputError
from suanwang.runtime import Runtime

# A quoted order's nonce: the buyer's nonce floor plus a random counter below 2**40 (IMarket.cancelAllOrders).
NONCE_COUNTER_BITS = 40
# The largest integer a JavaScript number holds exactly: the typed data's larger integers go as strings.
JS_SAFE_INTEGER = 2**53
# How long a quote waits for the index to reach the head, a tenth of a second at a time.
CATCH_UP_POLLS = 50


NO_KEY = (
    "registered without an encryption key, so it cannot read a sealed specification: not a candidate for this "
    "order (its seller registers a node with the key `suanwang agent provider` derives)"
)


def published_key(encryption_key: str | None) -> str | None:
    """A node's encryptionKey as a buyer seals to it; None when it has none (bytes32 zero)."""
    if not encryption_key or int(encryption_key, 16) == 0:
        return None
    return encryption_key.lower()


@dataclass(frozen=True)
class Quote:
    order: OrderIn
    order_id: str
    typed_data: dict[str, Any]  # the EIP-712 message a wallet signs
    candidates: list[dict[str, Any]]  # the orchestrator's, cheapest first
    explanation: list[str]  # why nodes were turned away


def quote(body: QuoteRequest, runtime: Runtime) -> Quote:
    """The order to sign for `body` and the nodes that would take it; InputError naming the field at fault,
    InfeasibleError while the market is still reading the chain."""
    chosen = body.order_fields()
    if chosen["logicMcu"] + chosen["parallelMcu"] + chosen["neuralMcu"] == 0:
        raise InputError("ask for some compute in at least one class", field="logic_mcu")
    deployment = runtime.load_deployment()
    market = deployment.contracts["Market"]
    access = access_router(runtime, body.access_point)
    # From the chain, not the index: the floor and the epoch must be the head's for the order to match.
    chain = chain_gateway(runtime)
    order = OrderIn.model_validate(
        {
            **chosen,
            "expiry": chain.head_time() + body.valid_for_s,
            # At or above the buyer's floor; exact in a JavaScript number while the floor is below 2**52, so
            # browsers sign what was quoted.
            "nonce": chain.market.nonce_floor_of(chosen["buyer"]) + secrets.randbits(NONCE_COUNTER_BITS),
            "epoch": chain.federation.epoch(),
            # The buyer's to fill in: the digest of the specification it seals to `candidates` (it signs that).
            "specDigest": ZERO_BYTES32,
        }
    )
    struct = order.as_struct()
    orchestrator = runtime.orchestrator()
    for _ in range(CATCH_UP_POLLS):  # a quote against a stale index would miss nodes: wait (briefly) for it
        if orchestrator.caught_up():
            break
        time.sleep(0.1)
    else:
        raise InfeasibleError("the market is still reading the chain; ask again in a moment", field="access_point")
    candidates, explanation = orchestrator.quote(struct, access)
    for candidate in candidates:
        candidate["encryption_key"] = published_key(candidate.get("encryption_key"))
    typed = typed_order(struct, deployment.chain_id, market)
    typed["message"] = {
        k: str(v) if isinstance(v, int) and not isinstance(v, bool) and v > JS_SAFE_INTEGER else v
        for k, v in typed["message"].items()
    }
    return Quote(order, order_id(struct, deployment.chain_id, market), typed, candidates, explanation)
