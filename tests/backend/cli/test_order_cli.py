"""A buyer trades from the command line with its own key (a key file or $SUANWANG_BUYER_KEY): it places an
order at the service, settles or disputes the deal on chain, cancels what is unmatched and moves its escrow
balance; the drawn arbiter rules with its own key. Amounts go in and come out in tokens. Every bad input
and every revert is one line naming what was wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import Result
from eth_account import Account

from suanwang.chain.market import order_id
from suanwang.commands.order import tokens
from tests.backend.cli.conftest import ARBITER_KEY, JOB, ORDER_ARGS, ORDER_OPTIONS, CliMarket
from tests.support.orders import AMOUNTS, TOKEN, chain_submission

NO_SUCH_ID = "0x" + "00" * 32


def as_struct(body: dict[str, Any]) -> dict[str, Any]:
    """An order as POST /api/orders takes it, as the contract takes it: amounts as integers, bytes32 as bytes."""
    struct = {**body, **{name: int(body[name]) for name in AMOUNTS}}
    return {k: bytes.fromhex(v[2:]) if k in ("specDigest", "serviceId") else v for k, v in struct.items()}


def one_line_error(result: Result, *mentions: str) -> str:
    """The error line of a command that failed as it should: exit 1, one line on stderr, no traceback."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.output, result.exc_info)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for mention in mentions:
        assert mention in lines[0], lines[0]
    return lines[0]


def test_an_order_placed_from_the_cli_completes_and_settles_early_for_exactly_the_bill(cli_market: CliMarket) -> None:
    m = cli_market
    quoted = m.ok("order", "quote", "--key-file", str(m.buyer_key_file), *ORDER_ARGS)
    # The node's price is 1.5 tokens per CU-hour: 2 CU for 10 minutes cost 0.5 tokens of compute.
    assert "at 1.5 tokens per CU-hour" in quoted and "tokens = compute 0.5 + platform " in quoted, quoted
    before = {a.address: m.holdings(a.address) for a in (m.buyer, m.provider)}

    placed = m.place()
    m.wait_for(placed, lambda o: bool(o["deal"]) and o["deal"]["status"] == "completed")
    # The buyer reads its sealed result (and the job it sealed) with a signed request; another account cannot.
    read = m.run("order", "result", placed, "--key-file", str(m.buyer_key_file))
    assert read.exit_code == 0 and read.stdout == "delivered\n" and "exit code 0" in read.stderr, read.output
    spec = m.ok("order", "result", placed, "--spec", "--key-file", str(m.buyer_key_file))
    assert 'command     ["sh", "-c", "echo delivered"]' in spec, spec
    one_line_error(m.run("order", "result", placed, SUANWANG_BUYER_KEY=ARBITER_KEY), ": 403 ", "not a party")
    settled_now = m.ok("order", "settle", placed, "--key-file", str(m.buyer_key_file))
    assert f"settle: deal {placed} is now settled" in settled_now, settled_now

    settled = m.wait_for(placed, lambda o: bool(o["settlement"]) and o["settlement"]["outcome"] == "settled")
    bill, paid = settled["bill"], settled["settlement"]
    assert before[m.buyer.address] - m.holdings(m.buyer.address) == int(bill["total"]) - int(paid["refunded"])
    assert m.holdings(m.provider.address) - before[m.provider.address] == int(paid["compute_fee"])
    shown = m.ok("order", "status", placed)
    assert f"settlement  settled: compute {tokens(int(paid['compute_fee']))}, platform " in shown, shown


def test_a_disputed_deal_is_ruled_by_the_drawn_arbiter_from_the_cli(cli_market: CliMarket) -> None:
    m = cli_market
    buyer_key = m.buyer.key.hex()
    before = {a.address: m.holdings(a.address) for a in (m.buyer, m.provider)}
    disputed, _ = m.completed()
    out = m.ok("order", "dispute", disputed, SUANWANG_BUYER_KEY=buyer_key)  # the key from the environment
    assert f"dispute: deal {disputed} is now disputed" in out, out
    m.mine(2)  # the arbiter is drawn from the hash of a block mined after the dispute

    # Only the drawn arbiter may rule: the buyer's own ruling is refused, the revert decoded.
    refused = m.run("arbiter", "rule", disputed, "--buyer-wins", SUANWANG_ARBITER_KEY=buyer_key)
    one_line_error(refused, f"the chain refused to rule on {disputed}: NotDrawnArbiter(", f"drawn={m.arbiter.address}")
    listed = m.ok("arbiter", "disputes", SUANWANG_ARBITER_KEY=ARBITER_KEY)
    assert f"{disputed}: buyer {m.buyer.address}, seller {m.provider.address}" in listed, listed

    ruled = m.ok("arbiter", "rule", disputed, "--buyer-wins", SUANWANG_ARBITER_KEY=ARBITER_KEY)
    assert f"ruled for the buyer: deal {disputed} is now refunded" in ruled, ruled
    refunded = m.wait_for(disputed, lambda o: bool(o["settlement"]) and o["settlement"]["outcome"] == "refunded")
    bill, paid = refunded["bill"], refunded["settlement"]
    # The buyer won: it paid the bill's transit alone (the refund is the rest of the bill and its bond).
    transit = sum(int(line["fee"]) for line in bill["transit"])
    assert (int(paid["compute_fee"]), int(paid["platform_fee"]), int(paid["transit_total"])) == (0, 0, transit)
    assert before[m.buyer.address] - m.holdings(m.buyer.address) == transit
    assert m.holdings(m.provider.address) == before[m.provider.address]
    assert "no open dispute is drawn to" in m.ok("arbiter", "disputes", SUANWANG_ARBITER_KEY=ARBITER_KEY)

    # A deal call the deal's state does not allow: the chain's revert, decoded.
    again = m.run("order", "settle", disputed, "--key-file", str(m.buyer_key_file))
    one_line_error(again, f"the chain refused to settle {disputed}: InvalidStatus(id={disputed}, status=")


def test_unmatched_orders_are_cancelled_from_the_cli(cli_market: CliMarket, tmp_path: Path) -> None:
    m = cli_market
    key = ("--key-file", str(m.buyer_key_file))
    deployment = m.chain.deployment
    market = m.chain.contract("Market")

    # Signed and never placed: voided alone with its signed order (cancelOrder burns its id).
    signed = chain_submission(m.chain, m.buyer, 7)
    signed_id = order_id(as_struct(signed["order"]), deployment.chain_id, deployment.contracts["Market"])
    one_line_error(m.run("order", "cancel", signed_id, *key), "--order-file: ", "is not on chain")
    (tmp_path / "order.json").write_text(json.dumps(signed))
    cancelled = m.ok("order", "cancel", signed_id, "--order-file", str(tmp_path / "order.json"), *key)
    assert f"cancelled {signed_id}: it is now cancelled" in cancelled, cancelled

    # Posted on chain: cancelled by its id alone, its lock back in the escrow.
    posted = chain_submission(m.chain, m.buyer, 8)["order"]
    struct = as_struct(posted)
    escrow = m.escrow(m.buyer.address)
    m.chain.transact(m.buyer, market.functions.postOrder(struct))
    posted_id = order_id(struct, deployment.chain_id, deployment.contracts["Market"])
    cancelled = m.ok("order", "cancel", posted_id, *key)
    assert f"it is now cancelled, {tokens(int(posted['maxTotal']))} tokens back in escrow" in cancelled, cancelled
    assert m.escrow(m.buyer.address) == escrow

    # Every order signed so far, at once: the nonce floor rises one step (cancelAllOrders).
    floor = int(market.functions.nonceFloorOf(m.buyer.address).call())
    raised = m.ok("order", "cancel", "--all", *key)
    assert int(market.functions.nonceFloorOf(m.buyer.address).call()) == floor + 2**40
    assert f"with a nonce below {floor + 2**40} is void" in raised, raised


def test_deposits_and_withdrawals_are_given_and_shown_in_tokens(cli_market: CliMarket, tmp_path: Path) -> None:
    m = cli_market
    member = next(a for a in m.chain.deployment.accounts if a.name == "CERNET research buyer")
    (tmp_path / "key").write_text(str(member.private_key))
    key = ("--key-file", str(tmp_path / "key"))
    token = m.chain.contract("SettlementToken")
    wallet = int(token.functions.balanceOf(member.address).call())
    assert m.escrow(member.address) == 0

    assert "deposited 2.5 tokens" in m.ok("order", "deposit", "2.5", *key)
    assert m.escrow(member.address) == 5 * TOKEN // 2
    shown = m.ok("order", "withdraw", "0.000000000000000001", *key)
    assert "escrow balance 2.499999999999999999 tokens" in shown, shown
    one_line_error(m.run("order", "withdraw", "1000", *key), "InsufficientBalance(", f"account={member.address}")
    assert "withdrew 2.499999999999999999 tokens" in m.ok("order", "withdraw", *key)
    assert m.escrow(member.address) == 0 and int(token.functions.balanceOf(member.address).call()) == wallet
    assert "nothing to withdraw" in m.ok("order", "withdraw", *key)


def test_bad_inputs_are_one_line_errors_naming_the_option(cli_market: CliMarket, tmp_path: Path) -> None:
    m = cli_market
    (tmp_path / "bad.key").write_text("not a key\n")
    one_line_error(m.run("order", "settle", NO_SUCH_ID), "--key-file: no key", "SUANWANG_BUYER_KEY")
    one_line_error(m.run("arbiter", "disputes"), "--key-file: no key", "SUANWANG_ARBITER_KEY")
    one_line_error(m.run("order", "settle", NO_SUCH_ID, "--key-file", str(tmp_path / "bad.key")), "--key-file: ")
    one_line_error(m.run("order", "withdraw", "--key-file", str(tmp_path / "none.key")), "'--key-file'")
    one_line_error(m.run("order", "settle", "0x12", "--key-file", str(m.buyer_key_file)), "'ID'", "not an order id")
    one_line_error(m.run("order", "settle", NO_SUCH_ID, "--key-file", str(m.buyer_key_file)), "ID: ", "never matched")
    one_line_error(m.run("order", "status", NO_SUCH_ID), "ID: no order")
    one_line_error(m.run("order", "deposit", "NaN", "--key-file", str(m.buyer_key_file)), "'AMOUNT'", "0 or more")
    one_line_error(m.run("arbiter", "rule", NO_SUCH_ID), "--buyer-wins/--seller-wins")
    one_line_error(m.run("order", "cancel", "--key-file", str(m.buyer_key_file)), "ID: ")
    unreachable = m.run("order", "withdraw", "--key-file", str(m.buyer_key_file), "--rpc-url", "http://127.0.0.1:9")
    one_line_error(unreachable, "--rpc-url: no chain answers")
    quote = ["order", "quote", "--key-file", str(m.buyer_key_file)]
    one_line_error(m.run(*quote, "--access-point", "Atlantis", *ORDER_OPTIONS[2:], *JOB), "--access-point: ")
    one_line_error(m.run(*quote, *ORDER_OPTIONS), "'COMMAND...'")
    one_line_error(m.run(*quote, *ORDER_OPTIONS, "--max-price", "abc", *JOB), "'--max-price'", "not a token amount")
    one_line_error(m.run(*quote, *ORDER_OPTIONS, "--duration", "0", *JOB), "--duration: ")
    nobody = Account.create().key.hex()
    one_line_error(m.run("order", "place", *ORDER_ARGS, SUANWANG_BUYER_KEY=nobody), "order.buyer: ")
