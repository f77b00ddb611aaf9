"""The market's vocabulary of states, one StrEnum each, as the contracts and the service name them.

`DealStatus` mirrors `IMarketTypes.DealStatus` in declaration order (its index is the on-chain value);
`OrderState` is the service's own record of an order it received; `DealCall` names the Market functions
that move a deal on; `RoleName` names the federation's role bits (`suanwang.roles.Role`)."""

from __future__ import annotations

from enum import StrEnum

from suanwang.roles import Role


class DealStatus(StrEnum):
    NONE = "none"
    POSTED = "posted"
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    STARTED = "started"
    COMPLETED = "completed"
    DISPUTED = "disputed"
    SETTLED = "settled"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"

    @classmethod
    def of(cls, value: int) -> DealStatus:
        """The status whose on-chain value is `value`."""
        return list(cls)[value]

    @property
    def is_final(self) -> bool:
        return self in FINAL_DEAL_STATUSES

    @property
    def holds_capacity(self) -> bool:
        """Whether the node's capacity is still reserved on chain (complete() releases it)."""
        return self in CAPACITY_HOLDING_STATUSES


FINAL_DEAL_STATUSES = frozenset({DealStatus.SETTLED, DealStatus.REFUNDED, DealStatus.CANCELLED})
CAPACITY_HOLDING_STATUSES = frozenset({DealStatus.PROPOSED, DealStatus.ACCEPTED, DealStatus.STARTED})
# A deal in one of these that passes its deadline may be timed out by anyone.
TIMEOUT_STATUSES = frozenset({DealStatus.PROPOSED, DealStatus.ACCEPTED, DealStatus.STARTED, DealStatus.DISPUTED})


class OrderState(StrEnum):
    """Where the service's record of a signed order stands."""

    NEW = "new"  # received, not yet matched
    SUBMITTING = "submitting"  # its match is being sent
    ON_CHAIN = "on_chain"  # matched on chain (its deal follows the chain's DealStatus)
    UNMATCHED = "unmatched"  # no node would take it, or the market refused the match (reason given)


class DealCall(StrEnum):
    """The Market functions that take (id, deal bytes, ...) and move a deal on."""

    ACCEPT = "accept"
    REJECT = "reject"
    DECLINE = "decline"
    START = "start"
    COMPLETE = "complete"
    SETTLE = "settle"
    TIMEOUT = "timeout"
    DISPUTE = "dispute"


# The role bits' names, in bit order, as the API and the web app spell them (made from Role, not copied).
RoleName = StrEnum("RoleName", [(str(role.name), str(role.name).lower()) for role in Role])  # type: ignore[misc]


def role_names_of(roles: int) -> list[RoleName]:
    """The names of the role bits set in `roles`, in bit order."""
    return [RoleName[str(role.name)] for role in Role if roles & role]


__all__ = [
    "CAPACITY_HOLDING_STATUSES",
    "FINAL_DEAL_STATUSES",
    "TIMEOUT_STATUSES",
    "DealCall",
    "DealStatus",
    "OrderState",
    "RoleName",
    "role_names_of",
]
