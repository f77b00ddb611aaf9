"""`suanwang order`: a buyer acting with its own key from its own machine. It quotes and places signed orders
at a service, and sends its deal calls (accept, reject, settle, dispute), cancellations and escrow moves
straight to the chain. The key comes from `--key-file` or $SUANWANG_BUYER_KEY and never leaves this process.

Amounts are read and printed in tokens (1 token = 10**18 base units). `suanwang arbiter` shares this module's
plumbing: the key and chain options, the one-line errors, the token amounts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import click
import httpx
import requests
from eth_account import Account

from suanwang.agents.base import read_key
from suanwang.chain.contracts import ChainGateway
from suanwang.chain.deployment import Deployment
from suanwang.chain.errors import ChainRevert
from suanwang.chain.gateway import connect
from suanwang.chain.market import TxSender
from suanwang.config import Settings
from suanwang.errors import SuanwangError
from suanwang.states import DealCall, DealStatus

TOKEN_DECIMALS = 18
TOKEN = 10**TOKEN_DECIMALS
BUYER_KEY_ENV = "SUANWANG_BUYER_KEY"
SERVICE_ENV = "SUANWANG_SERVICE_URL"
# The options an error's `field` (the package's, or the service's) is about.
OPTION_OF_FIELD = {
    "key": "--key-file",
    "key_file": "--key-file",
    "buyer": "--key-file",
    "order_id": "ID",
    "deployment_file": "--deployment-file",
    "rpc_url": "--rpc-url",
    "duration_s": "--duration",
    "min_run_s": "--min-run",
    "max_price_per_cu_hour": "--max-price",
    "valid_for_s": "--valid-for",
    "auto_accept": "--manual-accept",
    "job.command": "COMMAND",
}


# ---------------------------------------------------------------- inputs and outputs


def tokens(base_units: int) -> str:
    """`base_units` in tokens, exactly: as many decimals as it needs, none when whole."""
    whole, fraction = divmod(base_units, TOKEN)
    return f"{whole}" + ("." + f"{fraction:0{TOKEN_DECIMALS}d}".rstrip("0") if fraction else "")


def when(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class TokenAmount(click.ParamType):
    """A decimal number of tokens, converted to base units exactly (no rounding)."""

    name = "tokens"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        with localcontext(prec=100):  # uint128 amounts have 39 digits: more than Decimal's default 28
            try:
                amount = Decimal(str(value).strip())
            except InvalidOperation:
                self.fail(f"{value!r} is not a token amount (a decimal number such as 2.5)", param, ctx)
            if not amount.is_finite() or amount < 0:
                self.fail(f"{value!r} is not a token amount: give 0 or more tokens", param, ctx)
            base = amount.scaleb(TOKEN_DECIMALS)
            if base != base.to_integral_value():
                self.fail(f"{value!r} has more than {TOKEN_DECIMALS} decimals (a token's smallest unit)", param, ctx)
            return int(base)


class OrderId(click.ParamType):
    """An order's (and its deal's) id: its EIP-712 digest, as `order place` prints it."""

    name = "id"
    pattern = re.compile(r"^0x[0-9a-fA-F]{64}$")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not self.pattern.match(str(value)):
            self.fail(f"{value!r} is not an order id: 0x and 64 hex digits, as `order place` prints it", param, ctx)
        return str(value).lower()


TOKENS = TokenAmount()
ORDER_ID = OrderId()


class OneLineErrors(click.Group):
    """A group whose commands report a bad option or argument on one line naming it, without the usage
    text: every error of these commands reads `Error: <where>: <what was wrong>`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise click.ClickException(exc.format_message()) from None


def one_line(field: str | None, message: str) -> click.ClickException:
    """An error about `field` (the package's or the service's name of it) as one line naming its option."""
    named = field in (*PLAIN_FIELDS, "access_point", "matcher")
    where = "--" + str(field).replace("_", "-") if named else OPTION_OF_FIELD.get(field or "", field)
    return click.ClickException(f"{where}: {message}" if where else message)


@contextmanager
def reported() -> Iterator[None]:
    """Turns the package's errors and an unreachable chain into one-line errors."""
    try:
        yield
    except SuanwangError as exc:
        raise one_line(exc.field, exc.message) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise click.ClickException(f"--rpc-url: the chain does not answer ({type(exc).__name__})") from None


# ---------------------------------------------------------------- the chain, with one party's key


@dataclass(frozen=True)
class ChainClient:
    """The chain as one party's own client sees it: the contracts, and a sender holding its key alone."""

    chain: ChainGateway
    deployment: Deployment
    sender: TxSender

    @property
    def address(self) -> str:
        return self.sender.address

    def deal(self, deal_id: str) -> bytes:
        """The deal's bytes from its Matched event (every deal call passes them back)."""
        packed = self.chain.market.matched_deal(deal_id, self.deployment.deployed_block)
        if packed is None:
            raise click.ClickException(f"ID: the market never matched {deal_id} (not yet, or not this market's)")
        return packed

    def send(self, call: Any, what: str) -> str:
        """Sends `call` with this party's key; its transaction's hash once mined (a revert shown decoded)."""
        try:
            return str(self.sender.send(call)["transactionHash"].to_0x_hex())
        except ChainRevert as exc:
            raise click.ClickException(f"the chain refused to {what}: {exc.message}") from None
        except SuanwangError as exc:
            raise click.ClickException(f"{what}: {exc.message}") from None


def open_chain(key_file: Path | None, key_env: str, rpc_url: str | None, deployment_file: Path | None) -> ChainClient:
    """The chain at `rpc_url` with the key from `key_file` or `key_env`; errors name the option at fault."""
    settings = Settings.from_env()
    key = read_key(key_file, key_env)
    deployment = Deployment.load(deployment_file or settings.deployment_file)
    url = rpc_url or settings.rpc_url
    w3 = connect(url, retries=1)
    try:
        chain_id = int(w3.eth.chain_id)
    except (requests.RequestException, ValueError) as exc:
        raise click.ClickException(f"--rpc-url: no chain answers at {url} ({type(exc).__name__})") from None
    if chain_id != deployment.chain_id:
        raise click.ClickException(f"--rpc-url: {url} is chain {chain_id}, the deployment's {deployment.chain_id}")
    chain = ChainGateway.bind(w3, deployment, settings.build_dir)
    return ChainClient(chain, deployment, TxSender(w3, Account.from_key(key), chain.decoder))


def key_option(key_env: str) -> Any:
    return click.option(
        "--key-file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        default=None,
        help=f"a file whose first line is your private key (default: ${key_env})",
    )


def chain_options(key_env: str) -> Callable[[Any], Any]:
    """The options of a command that acts on chain with one party's key (from `key_env` by default)."""
    options = [
        key_option(key_env),
        click.option("--rpc-url", default=None, help="the chain's JSON-RPC URL (default $SUANWANG_RPC_URL)"),
        click.option(
            "--deployment-file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="the market's deployment record (default $SUANWANG_DEPLOYMENT_FILE)",
        ),
    ]

    def decorate(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


# ---------------------------------------------------------------- the service


@dataclass(frozen=True)
class Service:
    url: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The service's JSON answer; ClickException with its error (naming the option it is about)."""
        try:
            response = httpx.request(method, self.url.rstrip("/") + path, json=body, timeout=60)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"--service: no answer from {self.url} ({exc})") from None
        try:
            answer = response.json()
        except ValueError:
            raise click.ClickException(f"--service: {self.url} answered {response.status_code}, not JSON") from None
        if response.is_success:
            return answer
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        first = (error.get("fields") or [{}])[0]
        raise one_line(first.get("field"), first.get("message") or error.get("message") or response.text)


def service_option(function: Any) -> Any:
    return click.option(
        "--service",
        envvar=SERVICE_ENV,
        default="http://127.0.0.1:8000",
        show_default=True,
        help=f"the market service's URL (or ${SERVICE_ENV})",
    )(function)


@click.group(cls=OneLineErrors)
def order() -> None:
    """Buy with your own key: quote, place, follow and settle orders, and move your escrow balance."""


# ---------------------------------------------------------------- quote and place (at the service)


# The order's whole-number options, passed to the quote as they are: quote field -> help.
PLAIN_FIELDS = {
    "logic_mcu": "scalar compute, milli-CU",
    "parallel_mcu": "vector compute, milli-CU",
    "neural_mcu": "tensor compute, milli-CU",
    "memory_mib": "memory, MiB",
    "gpu_model": "device catalog code; 0 = any",
    "gpu_count": "whole GPUs",
    "gpu_milli": "a share of one GPU, milli-GPU",
    "min_tier": "0 small, 1 medium, 2 large, 3 super-large",
    "max_latency_ms": "one-way latency bound; 0 = none",
    "min_bandwidth_mbps": "bandwidth reserved on the path",
}


def order_options(function: Any) -> Any:
    """What a buyer chooses of an order (the service fills in its expiry, nonce, epoch and job digest)."""
    options = [
        service_option,
        key_option(BUYER_KEY_ENV),
        click.option("--access-point", required=True, help="your router in the network (name or label)"),
        *(click.option("--" + name.replace("_", "-"), type=int, default=0, help=h) for name, h in PLAIN_FIELDS.items()),
        click.option("--duration", type=int, required=True, help="seconds"),
        click.option("--min-run", type=int, default=0, help="seconds billed at least (not completed earlier)"),
        click.option("--max-price", type=TOKENS, required=True, help="tokens per CU-hour at most"),
        click.option("--max-total", type=TOKENS, required=True, help="tokens for the whole bill at most"),
        click.option("--max-transit", type=TOKENS, default="10", show_default=True, help="tokens for transit at most"),
        click.option("--matcher", default="0x" + "00" * 20, help="the only matcher that may match it (default: any)"),
        click.option("--manual-accept", is_flag=True, help="propose the bill to you first (`order accept`/`reject`)"),
        click.option("--valid-for", type=int, default=3600, show_default=True, help="seconds the order stays valid"),
        click.argument("command", nargs=-1, required=True),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def quote_request(buyer: str, chosen: dict[str, Any]) -> dict[str, Any]:
    """The body of POST /api/orders/quote from the order options (amounts as decimal base-unit strings)."""
    return {
        **{name: chosen[name] for name in (*PLAIN_FIELDS, "access_point", "matcher")},
        "buyer": buyer,
        "duration_s": chosen["duration"],
        "min_run_s": chosen["min_run"],
        "max_price_per_cu_hour": str(chosen["max_price"]),
        "max_total": str(chosen["max_total"]),
        "max_transit": str(chosen["max_transit"]),
        "auto_accept": not chosen["manual_accept"],
        "valid_for_s": chosen["valid_for"],
    }


def _bill_line(bill: dict[str, Any]) -> str:
    transit = [(line["operator"], int(line["fee"])) for line in bill.get("transit", [])]
    parts = ", ".join(f"{operator} {tokens(fee)}" for operator, fee in transit)
    return (
        f"{tokens(int(bill['total']))} tokens = compute {tokens(int(bill['compute_fee']))} + platform "
        f"{tokens(int(bill['platform_fee']))} + transit {tokens(sum(fee for _, fee in transit))}"
        + (f" ({parts})" if parts else "")
    )


def _echo_quote(answer: dict[str, Any]) -> None:
    click.echo(
        f"order {answer['order_id']} for {answer['order']['buyer']}, valid until {when(answer['order']['expiry'])}"
    )
    if not answer["candidates"]:
        click.echo("no node would take it now:")
        for sentence in answer["explanation"]:
            click.echo(f"  - {sentence}")
        return
    click.echo(f"{len(answer['candidates'])} node(s) would take it, cheapest first:")
    for c in answer["candidates"]:
        route = c["route"]
        price = tokens(int(c["price_per_cu_hour"]))
        click.echo(f"  node {c['node_id']} of {c['owner']} at {price} tokens per CU-hour: {_bill_line(c['bill'])}")
        click.echo(f"    path {' -> '.join(route.get('path', []))} ({route.get('latency_ms', 0):.2f} ms)")


@order.command()
@order_options
def quote(key_file: Path | None, service: str, **chosen: Any) -> None:
    """Ask the service what the order would cost: the nodes that would take it now and their bills."""
    with reported():
        buyer = Account.from_key(read_key(key_file, BUYER_KEY_ENV)).address
    _echo_quote(Service(service).call("POST", "/api/orders/quote", quote_request(buyer, chosen)))


def checked_struct(answer: dict[str, Any], request: dict[str, Any]) -> tuple[dict[str, Any], int, str]:
    """The quoted order to sign (struct, chain id, market), once it is what the buyer asked for: every field
    it chose (the others zero, specDigest too: the buyer fills it in) and the id."""
    from suanwang.api.order_schema import QUOTE_NAMES, OrderIn
    from suanwang.chain.market import order_id

    struct = OrderIn.model_validate(answer["order"]).as_struct()
    for name, quoted in [*QUOTE_NAMES.items(), ("specDigest", "")]:
        asked, got = request.get(quoted), struct[name]  # what the options do not set must stay zero
        if str(asked).lower() != str(got).lower() if asked is not None else int(str(got), 0) != 0:
            raise click.ClickException(f"--service: the quote changed {name} (asked {asked}, got {got}): not signed")
    domain = answer["typed_data"]["domain"]
    chain_id, market = int(domain["chainId"]), str(domain["verifyingContract"])
    if order_id(struct, chain_id, market) != answer["order_id"]:
        raise click.ClickException("--service: the quote's order id is not the order's EIP-712 digest: not signed")
    return struct, chain_id, market


@order.command()
@click.argument("order_id", metavar="ID", type=ORDER_ID)
@service_option
@click.option("--json", "as_json", is_flag=True, help="print the service's JSON")
def status(order_id: str, service: str, as_json: bool) -> None:
    """Where the service has taken order ID: its match, bill, deal, job and settlement."""
    found = Service(service).call("GET", f"/api/orders/{order_id}")
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(
        f"order {found['id']} of {found['buyer']}: {found['state']}"
        + (f" ({found['reason']})" if found["reason"] else "")
    )
    if found["bill"]:
        click.echo(f"  bill        {_bill_line(found['bill'])}")
    if deal := found["deal"]:
        click.echo(f"  deal        {deal['status']} on node {deal['node_id']} of {deal['seller']}")
        if deal["deadline"]:  # a final deal has none
            click.echo(f"  deadline    {when(deal['deadline'])}")
        if deal["result_cid"]:
            click.echo(f"  result      {deal['result_cid']}")
    if job := found["job"]:
        click.echo(
            f"  job         {job['state']} on {job['executor']}" + (f" ({job['reason']})" if job["reason"] else "")
        )
    if paid := found["settlement"]:
        click.echo(
            f"  settlement  {paid['outcome']}: compute {tokens(int(paid['compute_fee']))}, platform "
            f"{tokens(int(paid['platform_fee']))}, transit {tokens(int(paid['transit_total']))}, refunded "
            f"{tokens(int(paid['refunded']))} tokens"
        )


# ---------------------------------------------------------------- deal calls, cancellation, escrow (on chain)

DEAL_CALLS = {
    DealCall.ACCEPT: "Accept the proposed bill of deal ID (an order placed with --manual-accept).",
    DealCall.REJECT: "Reject the proposed bill of deal ID: its funds come back to your escrow balance.",
    DealCall.SETTLE: "Confirm the delivered result of deal ID and pay it out now (after the dispute window, anyone "
    "may).",
    DealCall.DISPUTE: "Dispute the delivered result of deal ID (the bond comes from your escrow balance); "
    "the arbiter the chain draws rules on it.",
}


def _deal_command(call: DealCall, summary: str) -> click.Command:
    @click.command(name=call.value, help=summary)
    @click.argument("order_id", metavar="ID", type=ORDER_ID)
    @chain_options(BUYER_KEY_ENV)
    def command(order_id: str, key_file: Path | None, rpc_url: str | None, deployment_file: Path | None) -> None:
        with reported():
            client = open_chain(key_file, BUYER_KEY_ENV, rpc_url, deployment_file)
            call_data = client.chain.market.deal_call(call, order_id, client.deal(order_id))
            tx = client.send(call_data, f"{call.value} {order_id}")
            now, deadline = client.chain.market.status_of(order_id)
            due = f", deadline {when(deadline)}" if deadline else ""
            click.echo(f"{call.value}: deal {order_id} is now {now}{due} (tx {tx})")
            click.echo(f"your escrow balance: {tokens(client.chain.market.balance_of(client.address))} tokens")

    return command


for _call, _summary in DEAL_CALLS.items():
    order.add_command(_deal_command(_call, _summary))


def _signed_order(path: Path) -> dict[str, Any]:
    """The order struct in `path` (what `order place --save` wrote, or an order as POST /api/orders takes it)."""
    from pydantic import ValidationError

    from suanwang.api.order_schema import OrderIn

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return OrderIn.model_validate(document.get("order", document)).as_struct()
    except (OSError, ValueError, AttributeError, ValidationError) as exc:
        reason = str(exc).splitlines()[0]
        raise click.ClickException(f"--order-file: {path} holds no signed order ({reason})") from None


@order.command()
@click.argument("order_id", metavar="ID", type=ORDER_ID, required=False)
@click.option(
    "--order-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="the signed order of ID, for one signed but never matched (what `order place --save` wrote)",
)
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="void every order you have signed so far: raise your nonce floor (cancelAllOrders)",
)
@chain_options(BUYER_KEY_ENV)
def cancel(
    order_id: str | None,
    order_file: Path | None,
    everything: bool,
    key_file: Path | None,
    rpc_url: str | None,
    deployment_file: Path | None,
) -> None:
    """Cancel unmatched order ID: a posted one (its lock comes back; Market.cancelOrder), or a signed one
    never matched, voided with its --order-file (cancelOrder burns its id). With --all instead of ID, every
    order you signed before now is voided at once (cancelAllOrders raises your nonce floor)."""
    from suanwang.chain.market import order_id as digest_of

    if (order_id is None) == (not everything):
        where = "ID" if order_id is None else "--all"
        raise click.ClickException(f"{where}: give an order ID or --all (every order you signed), one of them")
    with reported():
        client = open_chain(key_file, BUYER_KEY_ENV, rpc_url, deployment_file)
        market = client.chain.market
        if order_id is None:
            tx = client.send(market.cancel_all_orders(), "cancel all orders")
            click.echo(
                f"every order you signed with a nonce below {market.nonce_floor_of(client.address)} is void (tx {tx})"
            )
            return
        now, _ = market.status_of(order_id)
        if now is DealStatus.POSTED:
            posted = market.posted_order(order_id, client.deployment.deployed_block)
            assert posted is not None  # a posted order's OrderPosted event is on chain
            struct, locked = posted
        elif now is DealStatus.NONE and order_file is not None:
            struct, locked = _signed_order(order_file), 0
            found = digest_of(struct, client.deployment.chain_id, client.deployment.contracts["Market"])
            if found != order_id:
                raise click.ClickException(f"--order-file: {order_file} holds order {found}, not {order_id}")
        elif now is DealStatus.NONE:
            raise click.ClickException(
                f"--order-file: {order_id} is not on chain, so only its signed order can void it alone: give "
                "--order-file (what `order place --save` wrote), or cancel --all (every order you signed)"
            )
        else:
            raise click.ClickException(
                f"ID: {order_id} is {now} on chain, not an open order (a proposed deal is rejected: `order reject`)"
            )
        tx = client.send(market.cancel_order(struct, locked), f"cancel {order_id}")
        click.echo(
            f"cancelled {order_id}: it is now {market.status_of(order_id)[0]}"
            f"{f', {tokens(locked)} tokens back in escrow' if locked else ''} (tx {tx})"
        )


def _echo_balances(client: ChainClient) -> None:
    escrow = client.chain.market.balance_of(client.address)
    wallet = client.chain.token.balance_of(client.address)
    click.echo(f"escrow balance {tokens(escrow)} tokens, wallet {tokens(wallet)} tokens ({client.address})")


@order.command()
@click.argument("amount", type=TOKENS, required=False)
@chain_options(BUYER_KEY_ENV)
def withdraw(amount: int | None, key_file: Path | None, rpc_url: str | None, deployment_file: Path | None) -> None:
    """Withdraw AMOUNT tokens (default: all) of your escrow balance to your wallet."""
    with reported():
        client = open_chain(key_file, BUYER_KEY_ENV, rpc_url, deployment_file)
        amount = client.chain.market.balance_of(client.address) if amount is None else amount
        if amount == 0:
            click.echo("nothing to withdraw")
        else:
            client.send(client.chain.market.withdraw(amount), f"withdraw {tokens(amount)} tokens")
            click.echo(f"withdrew {tokens(amount)} tokens")
        _echo_balances(client)


@order.command()
@click.argument("amount", type=TOKENS)
@chain_options(BUYER_KEY_ENV)
def deposit(amount: int, key_file: Path | None, rpc_url: str | None, deployment_file: Path | None) -> None:
    """Deposit AMOUNT tokens from your wallet into your escrow balance (approving the market first)."""
    with reported():
        client = open_chain(key_file, BUYER_KEY_ENV, rpc_url, deployment_file)
        market = client.chain.market.address
        if client.chain.token.allowance(client.address, market) < amount:
            client.send(client.chain.token.approve(market, amount), f"approve {tokens(amount)} tokens")
        client.send(client.chain.market.deposit(amount), f"deposit {tokens(amount)} tokens")
        click.echo(f"deposited {tokens(amount)} tokens")
        _echo_balances(client)
