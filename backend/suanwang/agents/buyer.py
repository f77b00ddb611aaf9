"""`suanwang agent buyer`: a buyer's own agent that confirms each delivered result of its deals at once
(`settle`), as a buyer who trusts its providers would. A buyer who wants to look at results first runs
no agent and settles or disputes from the web app or its own signer; after the dispute window anyone
settles."""

from __future__ import annotations

from collections.abc import Callable

from suanwang.agents.base import AgentRuntime
from suanwang.lifecycle.closing import SettleCompleted
from suanwang.lifecycle.outbox import Outbox


def buyer_steps(runtime: AgentRuntime) -> list[Callable[[], None]]:
    ctx = runtime.ctx
    outbox = Outbox(ctx)
    settle = SettleCompleted(ctx, outbox, buyers_confirm=True)

    def deals() -> None:
        head, moved = ctx.head("deal")
        outbox.tick(moved)
        settle.tick(head)

    return [deals]
