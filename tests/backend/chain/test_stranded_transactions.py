"""Transactions a reorg strands: the sender says so at once instead of waiting out its receipt timeout,
and its next send starts again from the chain's nonce (found by the fault campaign, tests/faults)."""

from __future__ import annotations

import pytest

from suanwang.chain.market import TransactionFailed, TxSender
from suanwang.devstack import rpc
from suanwang.roles import Role
from tests.backend.chain.test_market_gateway import decoder
from tests.support.stack import Chain


def sender_and_call(chain: Chain) -> tuple[TxSender, object]:
    # receipt_timeout_s far above the test's own patience: only the stranded check can end the wait.
    sender = TxSender(chain.w3, chain.account_with(Role.BUYER), decoder(), receipt_timeout_s=600)
    token = chain.contract("SettlementToken")
    return sender, token.functions.approve(chain.deployment.contracts["Market"], 1)


def test_a_transaction_behind_a_nonce_gap_left_by_a_reorg_fails_and_the_next_send_succeeds(chain: Chain) -> None:
    sender, call = sender_and_call(chain)
    sender.send(call)
    rpc(chain.anvil.url, "anvil_rollback", [1])  # the mined transaction is gone; the sender's count is not
    with pytest.raises(TransactionFailed, match="nonce gap"):
        sender.wait(sender.submit(call))
    assert sender.send(call)["status"] == 1  # the nonce is read from the chain again


def test_a_transaction_the_node_dropped_fails(chain: Chain) -> None:
    sender, call = sender_and_call(chain)
    rpc(chain.anvil.url, "evm_setAutomine", [False])
    tx_hash = sender.submit(call)
    rpc(chain.anvil.url, "anvil_dropTransaction", [tx_hash.to_0x_hex()])
    rpc(chain.anvil.url, "evm_setAutomine", [True])
    with pytest.raises(TransactionFailed, match="dropped"):
        sender.wait(tx_hash)
    assert sender.send(call)["status"] == 1
