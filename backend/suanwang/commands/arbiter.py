"""`suanwang arbiter`: an arbiter acting with its own key ($SUANWANG_ARBITER_KEY or --key-file). The market
draws each disputed deal's arbiter from a block hash mined after the dispute, among the ARBITER members with
no part in the deal (IMarket.arbiterOf); only that arbiter may rule (MarketExtension.resolve), before the
arbitration period ends."""

from __future__ import annotations

from pathlib import Path

import click

from suanwang.chain.bill import Seats, unpack_deal
from suanwang.commands.order import (
    ORDER_ID,
    OneLineErrors,
    chain_options,
    open_chain,
    reported,
    tokens,
    when,
)
from suanwang.states import DealStatus

ARBITER_KEY_ENV = "SUANWANG_ARBITER_KEY"


@click.group(cls=OneLineErrors)
def arbiter() -> None:
    """Rule on the disputed deals the market draws you for, with your own key."""


@arbiter.command()
@chain_options(ARBITER_KEY_ENV)
def disputes(key_file: Path | None, rpc_url: str | None, deployment_file: Path | None) -> None:
    """The open disputes drawn to you, with what is at stake and when your ruling is due."""
    with reported():
        client = open_chain(key_file, ARBITER_KEY_ENV, rpc_url, deployment_file)
        market = client.chain.market
        seats = Seats.of(market.transit_operators())
        drawn_to_me = 0
        for deal_id in dict.fromkeys(market.disputed_ids(client.deployment.deployed_block)):
            now, deadline = market.status_of(deal_id)
            if now is not DealStatus.DISPUTED:
                continue
            packed = client.deal(deal_id)
            if market.arbiter_of(deal_id, packed).lower() != client.address.lower():
                continue
            drawn_to_me += 1
            deal = unpack_deal(deal_id, packed, seats)
            total = deal["computeFee"] + deal["platformFee"] + sum(deal["transitFees"])
            click.echo(
                f"{deal_id}: buyer {deal['buyer']}, seller {deal['seller']} (node {deal['nodeId']}), bill "
                f"{tokens(total)} tokens; rule before {when(deadline)}"
            )
        if not drawn_to_me:
            click.echo(f"no open dispute is drawn to {client.address}")


@arbiter.command()
@click.argument("order_id", metavar="ID", type=ORDER_ID)
@click.option(
    "--seller-wins/--buyer-wins",
    "seller_wins",
    default=None,
    help="seller wins: paid out as settled, and gets the buyer's bond; buyer wins: compute and platform fees "
    "refunded with the bond, transit paid",
)
@chain_options(ARBITER_KEY_ENV)
def rule(
    order_id: str, seller_wins: bool | None, key_file: Path | None, rpc_url: str | None, deployment_file: Path | None
) -> None:
    """Rule on disputed deal ID, as the arbiter the market drew for it."""
    if seller_wins is None:
        raise click.ClickException("--buyer-wins/--seller-wins: say who wins")
    with reported():
        client = open_chain(key_file, ARBITER_KEY_ENV, rpc_url, deployment_file)
        market = client.chain.market
        tx = client.send(market.resolve(order_id, client.deal(order_id), seller_wins), f"rule on {order_id}")
        winner = "seller" if seller_wins else "buyer"
        click.echo(f"ruled for the {winner}: deal {order_id} is now {market.status_of(order_id)[0]} (tx {tx})")
