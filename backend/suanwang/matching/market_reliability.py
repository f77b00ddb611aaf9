"""A seller's reliability from what the chain recorded of its deals, never from what its jobs printed.

Only on-chain outcomes count, because only they are beyond the buyer's and the seller's say: a job's exit
code is the buyer's own program's (a buyer could smear a seller with ``exit 1`` jobs), while a deal's end
is decided by the contract (contracts/Market.sol, MarketExtension.sol):

- good: the deal was delivered, ``completed`` (in its dispute window) or ``settled`` (paid out, by the
  buyer, after the window, or by an arbiter's ruling for the seller or a dispute that ran out);
- bad: the deal was ``refunded`` after the seller had it accepted: it declined it, missed its start or
  delivery deadline (a timeout, which slashes its stake), or lost a dispute;
- neither: a deal refunded before it was ever accepted (the buyer rejected the bill or let it lapse, no
  fault of the seller's), and deals still under way.

The score is the posterior mean of the seller's success probability under a uniform Beta(1, 1) prior,
(good + 1) / (good + bad + 2): Laplace's rule of succession, the estimator of the Beta reputation system
(A. Josang and R. Ismail, "The Beta Reputation System", 15th Bled eConference, 2002). A seller with no
record scores 1/2; each outcome moves it less as the record grows, so one early failure does not bar a
seller and a long record outweighs a short one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

GOOD_STATUSES = frozenset({"completed", "settled"})
REFUNDED = "refunded"


def deal_outcome(status: str, accepted: bool) -> bool | None:
    """True a good outcome, False a bad one, None neither (see the module's docstring); ``accepted``: the
    deal was accepted at some point (at the match when the order auto-accepts, or by the buyer)."""
    if status in GOOD_STATUSES:
        return True
    if status == REFUNDED:
        return False if accepted else None
    return None


@dataclass(frozen=True, slots=True)
class SellerRecord:
    good: int = 0
    bad: int = 0

    @property
    def score(self) -> float:
        """The Beta(1, 1) posterior mean of the seller's success probability."""
        return (self.good + 1) / (self.good + self.bad + 2)


def seller_records(outcomes: Iterable[tuple[str, bool]]) -> dict[str, SellerRecord]:
    """Each seller's record (by lower-case address) from (seller, good) outcomes."""
    counts: dict[str, list[int]] = {}
    for seller, good in outcomes:
        tally = counts.setdefault(seller.lower(), [0, 0])
        tally[0 if good else 1] += 1
    return {seller: SellerRecord(good, bad) for seller, (good, bad) in counts.items()}
