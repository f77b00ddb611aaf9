"""`suanwang order place` and `suanwang order result`: the buyer's side of sealed orders (docs/content.md,
Privacy). `place` seals the job's specification to every candidate node of the quote and to the buyer's
own result key, and signs the order with the envelope's digest; `result` fetches the deal's sealed
result with a signed request and opens it with the result key. Both keys come from the buyer's account
key, here: neither it nor anything derived from it is sent."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx
from eth_account import Account

from suanwang.agents.base import read_key
from suanwang.commands.order import (
    BUYER_KEY_ENV,
    ORDER_ID,
    Service,
    _bill_line,
    checked_struct,
    key_option,
    open_chain,
    order,
    order_options,
    quote_request,
    reported,
    service_option,
)
from suanwang.content import spec_digest
from suanwang.errors import InputError, SuanwangError
from suanwang.privacy import KeyPair, parse_public_key, result_key_pair
from suanwang.privacy.documents import content_request_headers, open_spec, seal_spec
from suanwang.privacy.envelope import open_envelope

__all__ = ["order"]


def sealed_for_quote(
    answer: dict[str, Any], command: tuple[str, ...], result_key: KeyPair, registered: RegisteredKeys
) -> bytes:
    """The specification of `command` sealed to every quoted node that has an encryption key, and to the
    buyer's `result_key`; ClickException when no quoted node has a key, or when a quoted key is not the one
    the node registered on chain (the service that quoted it could then read the job)."""
    nodes = [
        (int(c["node_id"]), parse_public_key(c["encryption_key"], field="encryption_key"))
        for c in answer["candidates"]
        if c.get("encryption_key")
    ]
    if not nodes:
        raise click.ClickException(
            "no quoted node has an encryption key, so none could read a sealed specification: not placed"
        )
    for node_id, key in nodes:
        on_chain = registered(node_id)
        if on_chain is not None and on_chain != key:
            raise click.ClickException(
                f"the service quoted node {node_id} with the encryption key 0x{key.hex()}, but the chain registers "
                f"0x{on_chain.hex()}: not placed (a job sealed to the quoted key could be read by whoever holds it)"
            )
    return seal_spec(command, result_key, nodes)


RegisteredKeys = Callable[[int], "bytes | None"]


def registered_keys(key_file: Path | None) -> RegisteredKeys:
    """Each node's key as the chain registers it, read with the buyer's own chain client
    (SUANWANG_RPC_URL, SUANWANG_DEPLOYMENT_FILE); without a chain to ask, said once, and nothing checked."""
    try:
        registry = open_chain(key_file, BUYER_KEY_ENV, None, None).chain.registry
    except (click.ClickException, SuanwangError, OSError) as exc:
        reason = exc.message if isinstance(exc, click.ClickException | SuanwangError) else str(exc)
        click.echo(f"note: the quoted encryption keys are not checked against the chain ({reason})", err=True)
        return lambda node_id: None

    def key_of(node_id: int) -> bytes:
        try:
            return registry.encryption_key(node_id)
        except Exception as exc:  # the chain stopped answering, or no such node: nothing safe to seal to
            raise click.ClickException(f"node {node_id}'s key could not be read from the chain ({exc})") from None

    return key_of


@order.command()
@order_options
@click.option(
    "--save",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="write the signed order here (what `order cancel --order-file` voids)",
)
def place(key_file: Path | None, service: str, save: Path | None, **chosen: Any) -> None:
    """Seal the job to the quoted nodes, sign the order with your key (here; the key is never sent) and
    place it at the service."""
    from suanwang.chain.market import sign_order

    with reported():
        key = read_key(key_file, BUYER_KEY_ENV)
    at = Service(service)
    request = quote_request(Account.from_key(key).address, chosen)
    answer = at.call("POST", "/api/orders/quote", request)
    if not answer["candidates"]:
        raise click.ClickException(
            "no node would take this order now, so it was not placed: " + "; ".join(answer["explanation"])
        )
    struct, chain_id, market = checked_struct(answer, request)
    envelope = sealed_for_quote(answer, chosen["command"], result_key_pair(key, chain_id), registered_keys(key_file))
    struct["specDigest"] = spec_digest(envelope)
    submission = {
        "order": {**answer["order"], "specDigest": struct["specDigest"]},
        "signature": sign_order(struct, key, chain_id, market),
        "access_point": request["access_point"],
        "job": {"envelope": base64.b64encode(envelope).decode("ascii")},
    }
    placed = at.call("POST", "/api/orders", submission)
    if save is not None:
        save.write_text(json.dumps({"id": placed["id"], **submission}, indent=2), encoding="utf-8")
    cheapest = answer["candidates"][0]
    sealed_to = [str(c["node_id"]) for c in answer["candidates"] if c.get("encryption_key")]
    click.echo(f"placed order {placed['id']} ({placed['state']})")
    click.echo(f"quoted: node {cheapest['node_id']}, {_bill_line(cheapest['bill'])}")
    click.echo(f"the job is sealed to node(s) {', '.join(sealed_to)} and to you")
    click.echo(f"follow it with `suanwang order status {placed['id']}`, read it with `suanwang order result`")


def fetch_content(service: str, cid: str, key: str) -> bytes:
    """The bytes under `cid`, asked for with a request signed by `key`; ClickException with the service's
    error otherwise."""
    url = service.rstrip("/") + f"/api/content/{cid}"
    try:
        response = httpx.get(url, headers=content_request_headers(key, cid), timeout=120)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"--service: no answer from {service} ({exc})") from None
    if response.is_success:
        return response.content
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text
    raise click.ClickException(f"{cid}: {response.status_code} {message}")


def _opened(envelope: bytes, key: KeyPair, what: str) -> bytes:
    try:
        return open_envelope(envelope, key.public_key, key.private_key)
    except InputError as exc:
        raise click.ClickException(f"{what}: {exc.message}") from None


@order.command()
@click.argument("order_id", metavar="ID", type=ORDER_ID)
@key_option(BUYER_KEY_ENV)
@service_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="write the job's output here (default: standard output)",
)
@click.option("--spec", "show_spec", is_flag=True, help="print the job you sealed instead of its result")
def result(order_id: str, key_file: Path | None, service: str, output: Path | None, show_spec: bool) -> None:
    """Fetch the sealed result of your order ID with a signed request and open it with your result key."""
    with reported():
        key = read_key(key_file, BUYER_KEY_ENV)
    at = Service(service)
    chain_id = int(at.call("GET", "/api/deployment")["chain_id"])
    own = result_key_pair(key, chain_id)
    found = at.call("GET", f"/api/orders/{order_id}")
    if show_spec:
        spec = _spec(fetch_content(service, found["spec_cid"], key), own)
        click.echo(f"command     {json.dumps(spec.command)}")
        return
    cid = (found.get("deal") or {}).get("result_cid") or (found.get("job") or {}).get("result_cid")
    if not cid:
        raise click.ClickException(f"order {order_id} has no result yet ({found['state']}): ask again later")
    document = json.loads(_opened(fetch_content(service, cid, key), own, f"the result {cid}"))
    data = _opened(fetch_content(service, document["output"], key), own, f"the output {document['output']}")
    click.echo(
        f"result of {order_id}: exit code {document['exit_code']}, {document['output_bytes']} bytes of output"
        + (f" ({document['reason']})" if document.get("reason") else ""),
        err=output is None,
    )
    if output is not None:
        output.write_bytes(data)
        click.echo(f"output written to {output}")
    else:
        click.echo(data, nl=False)


def _spec(envelope: bytes, own: KeyPair) -> Any:
    try:
        return open_spec(envelope, own)
    except InputError as exc:
        raise click.ClickException(f"the specification: {exc.message}") from None
