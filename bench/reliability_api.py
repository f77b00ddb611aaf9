"""Hostile input to the service (issue 9), the long campaign: `make reliability-api`.

Writes two sections of bench/results/reliability.json (bench/support/report.py):

`api_attacks`
  (a) schemathesis over every operation of the OpenAPI schema, NEGATIVE_EXAMPLES negative requests
      (wrong types, missing and extra fields, out-of-range values, malformed path and query parameters)
      and POSITIVE_EXAMPLES positive ones per operation, in process: server errors, refusals outside
      the one error shape, invalid requests whose error names no field;
  (b) one unknown query parameter on every operation: refused by name?
  (c) a flood on loopback: FLOOD_REQUESTS reads, FLOOD_CONCURRENCY at a time from one client, against
      `suanwang serve` with its default rate limit (50/s, burst 100): 429s (with Retry-After) and 5xx;
  (d) STORM_REQUESTS concurrent POST /api/orders of one signed order under one Idempotency-Key on
      loopback: orders created (database and API), first responses replayed, clean 409s, anything else.
`malformed_input`
  every malformed file of tests/backend/input/corpus.py fed to its loader, and every malformed API body
  posted to a loopback server holding one order: how each was answered (clear, vague, crash, accepted),
  per kind, and whether the server was still up and still held exactly its order afterwards.

Exits 1 if any figure shows a failure. The fast versions of the same attacks run in `make test`
(tests/backend/api/test_attacks.py, tests/backend/input/).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from suanwang.api.app import create_app
from suanwang.paths import REPO_ROOT
from suanwang.roles import Role

sys.path.insert(0, str(REPO_ROOT))  # the attacks and the corpus live with the tests that run them fast
from support.report import record

from tests.backend.api.hostile import (
    flood,
    loopback_service,
    one_key_storm,
    schemathesis_campaign,
    stored_orders,
    unknown_query_parameter_answers,
)
from tests.backend.input.corpus import FILES, answer_file, answer_payload, api_payloads
from tests.support.orders import chain_submission
from tests.support.stack import Chain, Deployments

NEGATIVE_EXAMPLES = 200
POSITIVE_EXAMPLES = 100
FLOOD_REQUESTS, FLOOD_CONCURRENCY = 3000, 50
STORM_REQUESTS = 1000


def schema_campaign(chain: Chain, folder: Path) -> dict[str, Any]:
    app = create_app(
        chain.settings(
            f"sqlite:///{folder / 'api.db'}",
            executor_dir=folder / "executor",
            content_dir=folder / "content",
            rate_limit_per_s=100_000,  # the rate limit is attacked on its own in (c)
            rate_limit_burst=100_000,
            orchestrator_interval_s=0.2,
        )
    )
    with TestClient(app) as client:  # runs the lifespan: indexer and orchestrator
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        print(f"(a) schemathesis: {NEGATIVE_EXAMPLES} negative and {POSITIVE_EXAMPLES} positive requests per operation")
        negative = schemathesis_campaign(schema, NEGATIVE_EXAMPLES, GenerationMode.NEGATIVE)
        positive = schemathesis_campaign(schema, POSITIVE_EXAMPLES, GenerationMode.POSITIVE)
        print("(b) one unknown query parameter on every operation")
        unknown = unknown_query_parameter_answers(schema, client)
        # schemathesis keeps its own lifespan of the app (a second runtime, indexer included) until the
        # process exits; stop it while its chain is still up.
        shutdown_lifespans()
    return {
        "negative": negative.figures(),
        "positive": positive.figures(),
        "unknown_query_parameter": {
            "operations": len(unknown),
            "refused_by_name": sum(not problems for problems in unknown.values()),
            "not_refused": sorted(op for op, problems in unknown.items() if problems),
        },
    }


def loopback_attacks(deployments: Deployments, folder: Path) -> dict[str, Any]:
    with deployments.chain(3) as chain:
        print(f"(c) flood: {FLOOD_REQUESTS} requests, {FLOOD_CONCURRENCY} at a time, default rate limit")
        api = loopback_service(chain, folder / "flood", rate_per_s=50, burst=100).start()
        try:
            flooded = asyncio.run(flood(api.url, FLOOD_REQUESTS, FLOOD_CONCURRENCY))
            alive = api.process is not None and api.process.poll() is None
        finally:
            api.stop()
        admitted = sum(n for s, n in flooded.statuses.items() if s < 400 or s == 404)
        flood_figures = {
            **flooded.figures(),
            "rate_limit": {"per_s": 50, "burst": 100},
            "admitted": admitted,
            # a token bucket admits at most its burst plus its rate times the time taken
            "admitted_bound": int(100 + 50 * flooded.seconds) + 1,
            "service_up_after": alive,
        }

        print(f"(d) {STORM_REQUESTS} concurrent POSTs with one Idempotency-Key")
        buyer = chain.account_with(Role.BUYER)
        submission = chain_submission(chain, buyer, nonce=1)
        storm_folder = folder / "storm"
        api = loopback_service(chain, storm_folder, rate_per_s=100_000, burst=100_000).start()
        try:
            stormed = asyncio.run(one_key_storm(api.url, submission, "campaign-key", STORM_REQUESTS))
            listed = httpx.get(api.url + "/api/orders", timeout=30).json()
        finally:
            api.stop()
        orders_in_db, key_records = stored_orders(storm_folder, "campaign-key")
        storm_figures = {
            **stormed.figures(),
            "orders_in_database": orders_in_db,
            "idempotency_records": key_records,
            "orders_listed_by_api": listed["total"],
        }
    return {"flood": flood_figures, "idempotency_storm": storm_figures}


def malformed_input(deployments: Deployments, folder: Path) -> dict[str, Any]:
    print(f"malformed files: {len(FILES)}")
    by_kind: dict[str, Counter[str]] = {}
    not_clear: list[str] = []
    files = folder / "files"
    files.mkdir()
    for case in FILES:
        answer = answer_file(case, files)
        by_kind.setdefault(case.kind, Counter())[answer.verdict] += 1
        if answer.verdict != "clear":
            not_clear.append(f"{case.kind}/{case.name}: {answer.verdict}: {answer.detail}")
    with deployments.chain(3) as chain:
        buyer = chain.account_with(Role.BUYER)
        api = loopback_service(chain, folder / "payloads", rate_per_s=100_000, burst=100_000).start()
        try:
            with httpx.Client(base_url=api.url, timeout=60) as client:
                first = client.post("/api/orders", json=chain_submission(chain, buyer, nonce=1)).json()
                payloads = api_payloads(chain_submission(chain, buyer, nonce=2))
                print(f"malformed API bodies: {len(payloads)}")
                for payload in payloads:
                    answer = answer_payload(client, payload)
                    by_kind.setdefault("api_payload", Counter())[answer.verdict] += 1
                    if answer.verdict != "clear":
                        not_clear.append(f"api_payload/{payload.name}: {answer.verdict}: {answer.detail}")
                alive = api.process is not None and api.process.poll() is None
                held = [o["id"] for o in client.get("/api/orders").json()["items"]] if alive else []
        finally:
            api.stop()
    return {
        "tried": {kind: sum(c.values()) for kind, c in sorted(by_kind.items())},
        "answered": {kind: dict(c) for kind, c in sorted(by_kind.items())},
        "not_clear": not_clear,
        "service_up_after_payloads": alive,
        "orders_kept": held == [first["id"]],
    }


def failures(api: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    out = []
    for mode in ("negative", "positive"):
        figures = api["schemathesis"][mode]
        if figures["server_errors"] or figures["error_shape_violations"]:
            out.append(f"schemathesis {mode}: {figures['first_failures']}")
    if api["schemathesis"]["unknown_query_parameter"]["not_refused"]:
        out.append(f"unknown query parameter accepted: {api['schemathesis']['unknown_query_parameter']}")
    flood_figures = api["flood"]
    if (
        flood_figures["server_errors"]
        or not flood_figures["rate_limited_429"]
        or flood_figures["429_without_retry_after"]
    ):
        out.append(f"flood: {flood_figures}")
    if flood_figures["admitted"] > flood_figures["admitted_bound"] or not flood_figures["service_up_after"]:
        out.append(f"flood admitted more than the bucket allows or killed the service: {flood_figures}")
    storm = api["idempotency_storm"]
    if (storm["created_201"], storm["orders_in_database"], storm["orders_listed_by_api"]) != (1, 1, 1):
        out.append(f"idempotency: {storm}")
    if storm["other_answers"]:
        out.append(f"idempotency answers other than the first response or a clean 409: {storm}")
    if inputs["not_clear"] or not inputs["service_up_after_payloads"] or not inputs["orders_kept"]:
        out.append(f"malformed input: {inputs['not_clear']}")
    return out


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="suanwang-reliability-api-") as tmp:
        folder = Path(tmp)
        deployments = Deployments(folder / "deployed")
        with deployments.chain(3) as chain:
            schema_figures = schema_campaign(chain, folder / "schema")
        api = {"schemathesis": schema_figures, **loopback_attacks(deployments, folder)}
        inputs = malformed_input(deployments, folder)
    problems = failures(api, inputs)
    api["failures"], inputs["failures"] = len(problems), len(problems)
    path = record("reliability", "api_attacks", api)
    record("reliability", "malformed_input", inputs)
    negative, storm, flooded = api["schemathesis"]["negative"], api["idempotency_storm"], api["flood"]
    print(
        f"schemathesis: {negative['operations_attacked']} operations x {NEGATIVE_EXAMPLES} negative examples "
        f"({negative['examples']} requests), {negative['server_errors']} server errors, "
        f"{negative['error_shape_violations']} error-shape violations"
    )
    print(
        f"flood: {flooded['requests']} requests in {flooded['seconds']} s -> {flooded['rate_limited_429']} x 429, "
        f"{flooded['server_errors']} x 5xx"
    )
    print(
        f"one key x {storm['requests']}: {storm['created_201']} created, {storm['replayed_first_response']} "
        f"replayed, 409s {storm['conflicts_409']}, {storm['other_answers']} other; "
        f"{storm['orders_in_database']} order in the database"
    )
    print(f"malformed input: {inputs['answered']}")
    print(f"wrote {path}")
    for problem in problems:
        print(f"FAIL {problem}"[:2000])
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
