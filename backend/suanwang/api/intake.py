"""The order intake's questions to the chain: what it can check before storing a new signed order that the
market would refuse anyway, asked once per request through the short health probe (`Runtime.probe`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from suanwang.errors import InputError
from suanwang.roles import Role


class ChainFacts:
    """The head's time, the value epoch, and per buyer its buyer role and nonce floor, each read at most once
    per request. When the chain does not answer, a fact is None and the order is taken anyway: the matcher's
    own checks decide later (the intake stays up)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._known: dict[tuple[str, str], Any] = {}
        self._down = False

    def _read(self, key: tuple[str, str], read: Callable[[], Any]) -> Any:
        """`read()` once per key; None, and no further reads, once the chain stops answering."""
        if key not in self._known and not self._down:
            try:
                self._known[key] = read()
            except Exception:
                self._down = True
        return self._known.get(key)

    def _contract(self, name: str) -> Any:
        """Contract `name` of the orchestrator, read through the short probe."""
        contract = self.runtime.orchestrator().contracts[name]
        return self.runtime.probe.eth.contract(address=contract.address, abi=contract.abi)

    def time(self) -> int | None:
        return self._read(("time", ""), lambda: int(self.runtime.probe.eth.get_block("latest")["timestamp"]))

    def may_buy(self, buyer: str) -> bool | None:
        return self._read(
            ("buyer", buyer),
            lambda: bool(self._contract("Federation").functions.hasRole(buyer, int(Role.BUYER)).call()),
        )

    def epoch(self) -> int | None:
        """The value epoch now (Federation.epoch): a signed order matches only in the epoch it names."""
        return self._read(("epoch", ""), lambda: int(self._contract("Federation").functions.epoch().call()))

    def nonce_floor(self, buyer: str) -> int | None:
        """The buyer's nonce floor (Market.nonceFloorOf): its orders with a lower nonce are void."""
        return self._read(("floor", buyer), lambda: int(self._contract("Market").functions.nonceFloorOf(buyer).call()))

    def matcher(self) -> str | None:
        """The address this service matches as (None when its configuration cannot say)."""
        try:
            return str(self.runtime.orchestrator().agents.matcher.address)
        except Exception:
            return None


def refuse_doomed(struct: dict[str, Any], facts: ChainFacts) -> None:
    """Refuses, before storing, a new order the market would refuse anyway (otherwise it would wait for a
    match and end unmatched): expired, from an account without the buyer role, naming another matcher,
    signed in another value epoch, or below its buyer's nonce floor. Each refusal names its field."""
    chain_time = facts.time()
    if chain_time is not None and int(struct["expiry"]) <= chain_time:
        raise InputError(
            f"the order expired at {struct['expiry']}; the chain's time is {chain_time}: sign it again with a later "
            "expiry",
            field="order.expiry",
        )
    if facts.may_buy(str(struct["buyer"])) is False:
        raise InputError(
            f"{struct['buyer']} is not a member with the buyer role in this federation, so the market would refuse "
            "its orders: ask the federation to admit it as a buyer",
            field="order.buyer",
        )
    named, ours = str(struct["matcher"]), facts.matcher()
    if int(named, 16) != 0 and ours is not None and named.lower() != ours.lower():
        raise InputError(
            f"the order names {named} as the only matcher that may match it; this service matches as {ours}: sign "
            "it with that matcher, or with the zero address for any",
            field="order.matcher",
        )
    epoch = facts.epoch()
    if epoch is not None and int(struct["epoch"]) != epoch:
        raise InputError(
            f"the order was signed in value epoch {struct['epoch']}; the market is in epoch {epoch} (the stage or "
            "the platform fee changed): sign it again with the current epoch",
            field="order.epoch",
        )
    floor = facts.nonce_floor(str(struct["buyer"]))
    if floor is not None and int(struct["nonce"]) < floor:
        raise InputError(
            f"the order's nonce {struct['nonce']} is below the buyer's nonce floor {floor} (it cancelled every order "
            "below it): sign it again with a nonce at or above the floor",
            field="order.nonce",
        )
