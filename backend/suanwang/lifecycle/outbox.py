"""Deal calls sent without waiting: a later pass collects their receipts, and forgets a call once the
index has the block it was mined in (from then on the deal's indexed status says whether the step is
still to do, so a call a reorganisation dropped is sent again)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from suanwang.chain.errors import ChainRevert
from suanwang.chain.market import TxSender
from suanwang.chain.projections import deal_call_args
from suanwang.errors import SuanwangError
from suanwang.lifecycle.context import StepContext
from suanwang.states import DealCall

log = logging.getLogger(__name__)

# Reverts that mean the step was done already, or cannot be done yet: a job that ended before the order's
# minRunSeconds is completed once the chain's clock passes it (TooEarlyToComplete), by a later pass.
EXPECTED_REVERTS = frozenset({"InvalidStatus", "DeadlinePassed", "DeadlineNotReached", "TooEarlyToComplete"})


@dataclass
class SentTransaction:
    sender: TxSender
    tx_hash: Any
    sent_at: float  # time.monotonic()
    mined_block: int | None = None


@dataclass
class Outbox:
    ctx: StepContext
    _sent: dict[tuple[DealCall, str], SentTransaction] = field(default_factory=dict)

    def send(self, sender: TxSender, function: DealCall, deal: dict[str, Any], *args: Any) -> bool:
        """Sends `function` on the projected `deal` unless it is already in flight; False when the chain
        refuses it now (logged: a revert because someone already did it is not an error)."""
        key = (function, str(deal["id"]))
        if key in self._sent:
            return True
        deal_id, packed = deal_call_args(deal)
        try:
            tx_hash = sender.submit(
                self.ctx.chain.market.deal_call(function, deal_id, packed, *args), reuse_estimate=True
            )
        except ChainRevert as exc:
            level = logging.INFO if exc.name in EXPECTED_REVERTS else logging.WARNING
            log.log(level, "%s(%s) not sent: %s", function.value, deal["id"], exc.message)
            return False
        self._sent[key] = SentTransaction(sender, tx_hash, time.monotonic())
        return True

    def in_flight(self, function: DealCall, deal_id: str) -> bool:
        return (function, deal_id) in self._sent

    def transaction(self, function: DealCall, deal_id: str) -> Any | None:
        """The hash of the call in flight, or None."""
        sent = self._sent.get((function, deal_id))
        return sent.tx_hash if sent is not None else None

    def collect(self) -> None:
        for (function, deal_id), sent in list(self._sent.items()):
            if sent.mined_block is not None:
                continue
            try:
                receipt = sent.sender.poll(sent.tx_hash, sent.sent_at)
            except SuanwangError as exc:  # e.g. a race lost to another caller: the index will say
                log.warning("%s(%s) did not go through: %s", function.value, deal_id, exc.message)
                del self._sent[(function, deal_id)]
                continue
            if receipt is not None:
                sent.mined_block = int(receipt["blockNumber"])

    def forget_indexed(self, indexed: int | None) -> None:
        if indexed is None:
            return
        for key, sent in list(self._sent.items()):
            if sent.mined_block is not None and sent.mined_block <= indexed:
                del self._sent[key]

    def tick(self, head_moved: bool) -> None:
        if head_moved:
            self.collect()
        self.forget_indexed(self.ctx.indexed_block())
