"""Hostile clients of the API, shared by the fast tests (tests/backend/api/test_attacks.py) and the
long campaign (bench/reliability_api.py, `make reliability-api`), which differ only in how hard they push.

- `schemathesis_campaign`: schemathesis, by default in negative mode (wrong types, missing or extra fields, values out
  of range, malformed path and query parameters) over every operation; every answer must be a 4xx in
  the one error shape (`suanwang.api.errors`), naming the field when the request was invalid.
- `flood`: more requests than the rate limit admits, from one client on loopback; every answer must be
  a success or a 429 with Retry-After.
- `one_key_storm`: many concurrent POSTs of one signed order under one Idempotency-Key; every answer must
  be the first response replayed or a clean conflict/in-progress answer.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from eth_account import Account
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sqlalchemy import func, select
from web3 import Web3

from suanwang.devstack import ApiServer
from suanwang.paths import REPO_ROOT
from suanwang.roles import Role
from suanwang.storage.db import make_engine
from suanwang.storage.models import IdempotencyRecord, OrderRecord
from tests.backend.lifecycle.test_restarts import server
from tests.support.orders import signed_submission
from tests.support.stack import Chain

# Statuses that say "this request was malformed": the answer must name what was wrong.
INVALID_INPUT_STATUSES = (400, 422)
# The answers a repeated Idempotency-Key may get besides the first response (suanwang.api.idempotency).
IDEMPOTENCY_CONFLICT_CODES = ("idempotency_in_progress", "idempotency_retry")


def error_shape_problems(status: int, body: Any) -> list[str]:
    """What is wrong with an error answer's body, measured against `suanwang.api.schemas.ErrorOut`
    (empty when it is right). Input errors must also name at least one field."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return [f"{status} body is not the error shape: {str(body)[:200]}"]
    problems = [f"error.{k} is not a non-empty string" for k in ("code", "message") if not _text(error.get(k))]
    if _text(error.get("code")) and not re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]):
        problems.append(f"error.code {error['code']!r} is not in the API's snake case")
    fields = error.get("fields")
    if not isinstance(fields, list):
        return [*problems, "error.fields is not a list"]
    for f in fields:
        if not isinstance(f, dict) or not _text(f.get("field")) or not _text(f.get("message")):
            problems.append(f"error.fields has an entry without a field name and a message: {f!r}")
    if status in INVALID_INPUT_STATUSES and not fields:
        problems.append(f"a {status} that names no field: {error.get('message')!r}")
    return problems


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


@dataclass
class SchemathesisOutcome:
    """What schemathesis (negative or positive requests) got from one run over the schema."""

    examples: Counter[str] = field(default_factory=Counter)  # per operation
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    shape_errors: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # answered with a 2xx (negative data: for the record)
    without_input: list[str] = field(default_factory=list)  # operations with no parameter or body to negate

    @property
    def operations(self) -> int:
        return len(self.examples)

    def figures(self) -> dict[str, Any]:
        return {
            "operations_attacked": self.operations,
            "operations_without_input": sorted(self.without_input),
            "examples": sum(self.examples.values()),
            "examples_per_operation": dict(sorted(self.examples.items())),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": len(self.server_errors),
            "error_shape_violations": len(self.shape_errors),
            "answered_2xx": len(self.accepted),
            "first_failures": (self.server_errors + self.shape_errors)[:10],
        }


def schemathesis_campaign(
    schema: schemathesis.BaseSchema, examples_per_operation: int, mode: GenerationMode = GenerationMode.NEGATIVE
) -> SchemathesisOutcome:
    """Generates requests (negative ones unless `mode` says otherwise) for every operation of `schema`
    (except the endless event stream) and records every answer; failures are collected, not raised, so
    a campaign reports all of them."""
    outcome = SchemathesisOutcome()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path != "/api/stream":  # endless; tests/backend/api/test_live.py covers its input
            _attack(operation, examples_per_operation, outcome, mode)
    return outcome


def _attack(operation: Any, examples: int, outcome: SchemathesisOutcome, mode: GenerationMode) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: every failure is recorded as generated
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode))
    def attack(case: schemathesis.Case) -> None:
        response = case.call()
        outcome.examples[label] += 1
        outcome.statuses[response.status_code] += 1
        request = f"{label} -> {response.status_code}: {case.as_curl_command()[:300]}"
        if response.status_code >= 500:
            outcome.server_errors.append(f"{request} {response.text[:300]}")
        elif response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = response.text
            outcome.shape_errors += [f"{request}: {p}" for p in error_shape_problems(response.status_code, body)]
        else:
            outcome.accepted.append(request)

    try:
        attack()
    except Unsatisfiable:  # nothing to negate: the operation takes no input at all
        outcome.without_input.append(label)


# A path parameter value of the right shape for each name the schema uses, so the route matches.
PATH_SAMPLES = {
    "node_id": "1",
    "order_id": "0x" + "ab" * 32,
    "deal_id": "0x" + "ab" * 32,
    "address": "0x" + "12" * 20,
    "cid": "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
}
UNKNOWN_PARAMETER = "limt"  # a misspelt `limit`


def unknown_query_parameter_answers(schema: schemathesis.BaseSchema, client: Any) -> dict[str, list[str]]:
    """Calls every operation of `schema` with one unknown query parameter; returns, per operation, the
    problems with its answer (none when it was a 422 in the error shape naming the parameter)."""
    answers: dict[str, list[str]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        path = re.sub(r"\{(\w+)\}", lambda m: PATH_SAMPLES[m.group(1)], operation.path)
        response = client.request(operation.method.upper(), path, params={UNKNOWN_PARAMETER: "5"})
        label = f"{operation.method.upper()} {operation.path}"
        if response.status_code != 422:
            answers[label] = [f"{response.status_code}: {response.text[:200]}"]
            continue
        body = response.json()
        problems = error_shape_problems(422, body)
        if not problems and UNKNOWN_PARAMETER not in [f["field"] for f in body["error"]["fields"]]:
            problems = [f"does not name {UNKNOWN_PARAMETER!r}: {body}"]
        answers[label] = problems
    return answers


@dataclass
class FloodOutcome:
    requests: int
    statuses: Counter[int]
    retry_after_missing: int
    shape_errors: list[str]
    seconds: float

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "rate_limited_429": self.statuses.get(429, 0),
            "server_errors": self.server_errors,
            "429_without_retry_after": self.retry_after_missing,
            "error_shape_violations": len(self.shape_errors),
        }


FLOOD_PATHS = ("/api/nodes", "/api/orders?limit=5", "/api/members", "/api/catalog/devices", "/api/nodes/999999")


async def flood(base_url: str, requests: int, concurrency: int) -> FloodOutcome:
    """`requests` GETs over the API's cheap reads (one client, `concurrency` at a time, as fast as the
    server answers): a bounded load, far above any sane per-client rate limit."""
    statuses: Counter[int] = Counter()
    shape_errors: list[str] = []
    missing = 0
    gate = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        nonlocal missing
        async with gate:
            response = await client.get(FLOOD_PATHS[i % len(FLOOD_PATHS)])
        statuses[response.status_code] += 1
        if response.status_code == 429:
            retry_after = response.headers.get("retry-after", "")
            if not retry_after.isdigit() or int(retry_after) < 1:
                missing += 1
        if response.status_code >= 400:
            shape_errors.extend(error_shape_problems(response.status_code, response.json()))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(one(client, i) for i in range(requests)))
    return FloodOutcome(requests, statuses, missing, shape_errors, time.monotonic() - started)


@dataclass
class StormOutcome:
    requests: int
    first: dict[str, Any] | None
    replayed: int  # the first response again, marked Idempotent-Replayed
    created: int  # 201s that were not replays (exactly one expected)
    conflicts: Counter[str]  # clean 409s by error code
    other: list[str]  # anything else: a 5xx, a different body, a transport error

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "created_201": self.created,
            "replayed_first_response": self.replayed,
            "conflicts_409": dict(self.conflicts),
            "other_answers": len(self.other),
            "first_other_answers": self.other[:10],
        }


MARKETPLACE = REPO_ROOT / "backend" / "suanwang" / "lifecycle" / "marketplace.yaml"


def loopback_service(chain: Chain, folder: Path, rate_per_s: float, burst: int) -> ApiServer:
    """`suanwang serve` in its own process on a free loopback port, on `chain`, with this rate limit
    and its own SQLite database at `folder`/service.db."""
    api = server(chain, folder, MARKETPLACE)
    api.env.update({"SUANWANG_RATE_LIMIT_PER_S": str(rate_per_s), "SUANWANG_RATE_LIMIT_BURST": str(burst)})
    return api


def stored_orders(folder: Path, key: str) -> tuple[int, int]:
    """(orders in the service's database, idempotency records under `key`), read from the file itself."""
    engine = make_engine(f"sqlite:///{folder / 'service.db'}")
    try:
        with engine.connect() as db:
            orders = db.scalar(select(func.count()).select_from(OrderRecord)) or 0
            keys = db.scalar(select(func.count()).where(IdempotencyRecord.key == key)) or 0
    finally:
        engine.dispose()
    return orders, keys


FAR_EXPIRY = 2**39  # unix time, well inside the order's 40-bit field: the order never expires here


def valid_submission(client: Any, nonce: int) -> dict[str, Any]:
    """A correctly signed order for the running service, from what its /api/deployment tells a client."""
    deployment = client.get("/api/deployment").json()
    buyer = next(a for a in deployment["accounts"] if a["roles"] & Role.BUYER and a["private_key"])
    market = deployment["contracts"]["Market"]["address"]
    federation = deployment["contracts"]["Federation"]
    w3 = Web3(Web3.HTTPProvider(deployment["rpc_url"]))  # the chain itself: the views need the marketplace
    epoch = int(w3.eth.contract(address=federation["address"], abi=federation["abi"]).functions.epoch().call())
    return signed_submission(
        Account.from_key(buyer["private_key"]), deployment["chain_id"], market, FAR_EXPIRY, nonce, epoch=epoch
    )


async def one_key_storm(base_url: str, submission: dict[str, Any], key: str, requests: int) -> StormOutcome:
    """`requests` POST /api/orders at once, all with `submission` and the Idempotency-Key `key`."""
    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=requests)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        answers = await asyncio.gather(
            *(client.post("/api/orders", json=submission, headers={"Idempotency-Key": key}) for _ in range(requests)),
            return_exceptions=True,
        )
    originals = [a for a in answers if isinstance(a, httpx.Response) and a.status_code == 201]
    first = next((a.json() for a in originals if "idempotent-replayed" not in a.headers), None)
    outcome = StormOutcome(requests, first, 0, 0, Counter(), [])
    for answer in answers:
        if not isinstance(answer, httpx.Response):
            outcome.other.append(f"transport error: {answer!r}")
        elif answer.status_code == 201 and answer.json() == first:
            if answer.headers.get("idempotent-replayed") == "true":
                outcome.replayed += 1
            else:
                outcome.created += 1
        elif answer.status_code == 409 and answer.json()["error"]["code"] in IDEMPOTENCY_CONFLICT_CODES:
            outcome.conflicts[answer.json()["error"]["code"]] += 1
        else:
            outcome.other.append(f"{answer.status_code}: {answer.text[:300]}")
    return outcome
