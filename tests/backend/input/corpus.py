"""Malformed inputs of every kind the service reads, each with what its error must say, and the one way
they are judged. Shared by the fast tests (tests/backend/input/) and the campaign that counts how each
was answered (bench/reliability_api.py, `make reliability-api`).

Kinds: Topology Zoo GraphML, peering YAML (the network file `suanwang route` and the marketplace read),
replay scenarios (docs/replay.md), OpenB node and pod lists (CSV), and API request bodies.
An answer is `clear` when the loader raised a SuanwangError on one line that names the file (or, for
the API, a 4xx in the error shape naming the field) and says what was wrong (`expect`, a fragment of the
message); `vague` when it refused with the wrong words; `crash` for any other exception (a traceback for
the user); `accepted` when the malformed input went through.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suanwang.compute.openb import load_nodes, load_pods
from suanwang.errors import SuanwangError
from suanwang.network.config import load_network
from suanwang.network.topology import load_graphml
from suanwang.replay.scenario import load_scenario
from tests.backend.api.hostile import error_shape_problems


@dataclass(frozen=True)
class Malformed:
    kind: str
    name: str  # also the file name the content is written to
    content: bytes
    expect: str  # a fragment the error must contain: what was wrong, or where


@dataclass(frozen=True)
class Answer:
    verdict: str  # clear, vague, crash or accepted
    detail: str


# ---------------------------------------------------------------- GraphML (Internet Topology Zoo format)
_KEYS = (
    '<key id="d0" for="node" attr.name="label" attr.type="string"/>'
    '<key id="d1" for="node" attr.name="Latitude" attr.type="double"/>'
    '<key id="d2" for="node" attr.name="Longitude" attr.type="double"/>'
    '<key id="d3" for="edge" attr.name="LinkSpeedRaw" attr.type="double"/>'
)


def graphml(body: str, root: str = '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">') -> bytes:
    return f'<?xml version="1.0"?>\n{root}{_KEYS}\n<graph edgedefault="undirected">\n{body}</graph></graphml>'.encode()


def node(nid: str, label: str, lat: object = 39.9, lon: object = 116.4) -> str:
    return (
        f'<node id="{nid}"><data key="d0">{label}</data><data key="d1">{lat}</data><data key="d2">{lon}</data></node>\n'
    )


TWO_NODES = node("0", "Beijing") + node("1", "Shanghai", 31.2, 121.5)
LAUGHS = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
GRAPHML = [
    Malformed("graphml", "binary.graphml", b"\x89PNG\r\n\x1a\n\x00\x00\xff", "not well-formed XML"),
    Malformed("graphml", "empty.graphml", b"", "no element found"),
    Malformed("graphml", "truncated.graphml", graphml(TWO_NODES)[:230], "line"),
    Malformed("graphml", "html.graphml", b"<html><body>topology</body></html>", "not GraphML"),
    Malformed("graphml", "no-namespace.graphml", graphml(TWO_NODES, root="<graphml>"), "not GraphML"),
    Malformed("graphml", "no-nodes.graphml", graphml(""), "no nodes"),
    Malformed("graphml", "node-without-id.graphml", graphml('<node><data key="d0">X</data></node>'), "no id"),
    Malformed("graphml", "repeated-ids.graphml", graphml(node("0", "A") + node("0", "B")), "node ids repeat"),
    Malformed("graphml", "dangling-edge.graphml", graphml(TWO_NODES + '<edge source="0" target="7"/>'), "'7'"),
    Malformed("graphml", "edge-without-source.graphml", graphml(TWO_NODES + '<edge target="1"/>'), "does not exist"),
    Malformed(
        "graphml", "latitude-not-a-number.graphml", graphml(node("0", "A", "north") + node("1", "B")), "Latitude"
    ),
    Malformed("graphml", "latitude-500.graphml", graphml(node("0", "A", 500) + node("1", "B")), "-90..90"),
    Malformed(
        "graphml",
        "link-speed-words.graphml",
        graphml(TWO_NODES + '<edge source="0" target="1"><data key="d3">fast</data></edge>'),
        "LinkSpeedRaw",
    ),
    Malformed(
        "graphml",
        "link-speed-negative.graphml",
        graphml(TWO_NODES + '<edge source="0" target="1"><data key="d3">-1e9</data></edge>'),
        "LinkSpeedRaw",
    ),
    Malformed(
        "graphml",
        "entity-bomb.graphml",
        f'<?xml version="1.0"?><!DOCTYPE g [<!ENTITY l0 "lol">{LAUGHS}]>'.encode()
        + graphml(node("0", "&l9;"))[len(b'<?xml version="1.0"?>\n') :],
        "amplification",
    ),
    Malformed(
        "graphml",
        "external-entity.graphml",
        b'<?xml version="1.0"?><!DOCTYPE g [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + graphml(node("0", "&x;"))[len(b'<?xml version="1.0"?>\n') :],
        "undefined entity",
    ),
]

# ---------------------------------------------------------------- peering YAML (suanwang.network.config)
_PEERING = (
    "operators:\n  - {topology: Abilene}\n  - {topology: Cernet}\n"
    "peering:\n  - {a: Abilene/Chicago, b: Cernet/Beijing, capacity_gbps: %s}\n"
)
PEERING = [
    Malformed("peering", "peering-syntax.yaml", b"operators: [topology: Abilene\n", "not valid YAML"),
    Malformed("peering", "not-a-mapping.yaml", b"- Abilene\n- Cernet\n", "'operators' list"),
    Malformed("peering", "topology-list.yaml", b"operators: [{topology: [Abilene]}]\n", "needs a 'topology'"),
    Malformed("peering", "unknown-topology.yaml", b"operators: [{topology: Atlantis}]\n", "not found"),
    Malformed("peering", "capacity-words.yaml", (_PEERING % "ten").encode(), "capacity_gbps is 'ten'"),
    Malformed("peering", "capacity-negative.yaml", (_PEERING % "-4").encode(), "capacity must be > 0"),
    Malformed("peering", "peering-not-a-list.yaml", b"operators: [{topology: Abilene}]\npeering: nope\n", "list"),
    Malformed(
        "peering", "price-list.yaml", b"operators: [{topology: Abilene, transit_price_per_gbps_hour: [1]}]\n", "price"
    ),
    Malformed("peering", "peering-latin-1.yaml", "operators: [{topology: caf\xe9}]\n".encode("latin-1"), "not UTF-8"),
]

# ---------------------------------------------------------------- replay scenarios (suanwang.replay.scenario)
SCENARIO_OK = """name: t
network:
  operators:
    - {topology: Cernet, paid_to: a}
parties:
  - {name: a, roles: [operator, buyer], founder: true}
nodes: []
orders: []
"""
ORDER = (
    "{buyer: a, count: 1, window: [0, 1h], access_points: [Cernet/Beijing], duration: 1h, "
    'max_price_per_cu_hour: "1", %s}'
)


def scenario(text: str = "", **replacements: str) -> bytes:
    body = SCENARIO_OK
    for old, new in replacements.items():
        body = body.replace(old, new)
    return (body + text).encode()


BOMB = "x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
)
SCENARIO = [
    Malformed("scenario", "empty.yaml", b"", "empty"),
    Malformed("scenario", "syntax.yaml", scenario("orders: [\n"), ":10: (syntax)"),
    Malformed("scenario", "a-list.yaml", b"- name: t\n", "expected a mapping"),
    Malformed("scenario", "missing-field.yaml", scenario(**{"nodes: []\n": ""}), "missing field 'nodes'"),
    Malformed("scenario", "unknown-field.yaml", scenario("colour: red\n"), "unknown field 'colour'"),
    Malformed("scenario", "repeated-key.yaml", scenario("name: u\n"), "given twice"),
    Malformed(
        "scenario",
        "wrong-type.yaml",
        scenario(
            **{
                "orders: []": "orders:\n  - "
                + ORDER % "shape: {logic_mcu: 1, memory_mib: 1}, count: many".replace("count: 1, ", "")
            }
        ),
        "orders[0].count",
    ),
    Malformed(
        "scenario",
        "negative-tokens.yaml",
        scenario(**{"founder: true}": 'founder: true, tokens: "-5"}'}),
        "parties[0].tokens",
    ),
    Malformed(
        "scenario", "unknown-party.yaml", scenario(**{"paid_to: a": "paid_to: nobody"}), "no party named 'nobody'"
    ),
    Malformed(
        "scenario", "unknown-role.yaml", scenario(**{"[operator, buyer]": "[operator, king]"}), "unknown role 'king'"
    ),
    Malformed("scenario", "bad-duration.yaml", scenario("step: soon\n"), "expected a duration"),
    Malformed(
        "scenario",
        "python-tag.yaml",
        scenario('description: !!python/object/apply:os.system ["id"]\n'),
        "unsupported YAML tag",
    ),
    Malformed("scenario", "alias-cycle.yaml", scenario("notes: &x [*x]\n"), "nested more than"),
    Malformed("scenario", "alias-bomb.yaml", scenario(BOMB), "more than 20,000 values"),
    Malformed("scenario", "deep-nesting.yaml", scenario("notes: " + "[" * 5000 + "]" * 5000 + "\n"), "nested"),
    Malformed("scenario", "huge-integer.yaml", scenario("seed: 1" + "0" * 5000 + "\n"), "seed"),
    Malformed("scenario", "complex-key.yaml", scenario("? [a, b]\n: 1\n"), "a key must be a plain name"),
    Malformed("scenario", "latin-1.yaml", scenario("description: caf\xe9\n").decode().encode("latin-1"), "not UTF-8"),
    Malformed("scenario", "short-scale-words.yaml", scenario("short: {nodes_scale: many}\n"), "short.nodes_scale"),
    Malformed(
        "scenario",
        "max-gpus-words.yaml",
        scenario(**{"orders: []": "orders:\n  - " + ORDER % "openb: {max_gpus: lots}"}),
        "orders[0].openb.max_gpus",
    ),
]

# ---------------------------------------------------------------- OpenB traces (suanwang.compute.openb)
PODS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,creation_time\n"
NODES = "sn,cpu_milli,memory_mib,gpu,model\n"
TRACES = [
    Malformed("trace_pods", "pods-empty.csv", b"", "lacks column(s)"),
    Malformed("trace_pods", "pods-missing-column.csv", b"name,cpu_milli\np,1000\n", "lacks column(s) memory_mib"),
    Malformed("trace_pods", "pods-not-a-number.csv", (PODS + "p,lots,10,0,0,,0\n").encode(), ":2:cpu_milli"),
    Malformed("trace_pods", "pods-out-of-range.csv", (PODS + "p,1000,10,99,1000,,0\n").encode(), ":2:num_gpu"),
    Malformed("trace_pods", "pods-short-row.csv", (PODS + "p,1000,10\n").encode(), "row has 3 cells"),
    Malformed("trace_pods", "pods-long-row.csv", (PODS + "p,1000,10,0,0,,0,extra\n").encode(), "row has 8 cells"),
    Malformed("trace_pods", "pods-share-without-gpu.csv", (PODS + "p,1000,10,0,500,,0\n").encode(), "gpu_milli"),
    Malformed("trace_pods", "pods-unknown-gpu.csv", (PODS + "p,1000,10,1,500,H100X,0\n").encode(), "unknown GPU type"),
    Malformed("trace_pods", "pods-latin-1.csv", (PODS + "caf\xe9,1000,10,0,0,,0\n").encode("latin-1"), "not UTF-8"),
    Malformed(
        "trace_pods", "pods-huge-cell.csv", (PODS + '"' + "x" * 200_000 + '",1,1,0,0,,0\n').encode(), "not valid CSV"
    ),
    Malformed(
        "trace_pods", "pods-unclosed-quote.csv", (PODS + '"p,1000,10,0,0,,0\nq,1,1,0,0,,0\n').encode(), "unclosed quote"
    ),
    Malformed(
        "trace_pods",
        "pods-multiline-row.csv",
        (PODS + '"p\nq",1000,10,0,0,,0\nr,1,x,0,0,,0\n').encode(),
        ":4:memory_mib",
    ),
    Malformed("trace_nodes", "nodes-fraction.csv", (NODES + "n,1000.5,10,0,\n").encode(), ":2:cpu_milli"),
    Malformed("trace_nodes", "nodes-gpus-without-model.csv", (NODES + "n,1000,10,2,\n").encode(), ":2:model"),
    Malformed("trace_nodes", "nodes-model-without-gpu.csv", (NODES + "n,1000,10,0,T4\n").encode(), ":2:model"),
    Malformed("trace_nodes", "nodes-zero-memory.csv", (NODES + "n,1000,0,0,\n").encode(), ":2:memory_mib"),
]

FILES = GRAPHML + PEERING + SCENARIO + TRACES

LOADERS: dict[str, Callable[[Path], Any]] = {
    "graphml": load_graphml,
    "peering": lambda path: load_network([path]),
    "scenario": load_scenario,
    "trace_pods": load_pods,
    "trace_nodes": load_nodes,
}


def answer_file(case: Malformed, folder: Path) -> Answer:
    """Writes the case to `folder` and feeds it to its loader."""
    path = folder / case.name
    path.write_bytes(case.content)
    try:
        LOADERS[case.kind](path)
    except SuanwangError as exc:
        said = f"{exc.message} [{exc.field}]"
        if case.name not in said:
            return Answer("vague", f"does not name the file: {said}")
        if "\n" in exc.message:
            return Answer("vague", f"not one line: {said}")
        if case.expect not in said:
            return Answer("vague", f"does not say {case.expect!r}: {said}")
        return Answer("clear", said)
    except Exception as exc:  # what the user would see as a traceback
        return Answer("crash", f"{type(exc).__name__}: {exc}"[:500])
    return Answer("accepted", "loaded without an error")


# ---------------------------------------------------------------- API request bodies
@dataclass(frozen=True)
class Payload:
    name: str
    path: str
    content: bytes
    field: str  # the field the error must name
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _with(valid: dict[str, Any], *path_and_value: Any) -> bytes:
    """`valid` with the value at a dotted path replaced (or removed, for the value DROP)."""
    out = copy.deepcopy(valid)
    *keys, value = path_and_value
    target = out
    for key in keys[:-1]:
        target = target[key]
    if value is DROP:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return _json(out)


DROP = object()
QUOTE = {
    "buyer": "0x" + "12" * 20,
    "duration_s": 3600,
    "max_price_per_cu_hour": "1",
    "max_total": "100",
    "access_point": "Cernet/Beijing",
    "logic_mcu": 1000,
}


def api_payloads(valid: dict[str, Any]) -> list[Payload]:
    """Malformed bodies for the POST operations, built around `valid` (a correctly signed submission)."""
    orders, batch, quote = "/api/orders", "/api/orders/batch", "/api/orders/quote"
    text = _json(valid)
    return [
        Payload("not-utf8", orders, b"\xff\xfe{\x00o", "body"),
        Payload("invalid-json", orders, text[:40], "body"),
        Payload("json-array", orders, b"[1, 2, 3]", "body"),
        Payload("empty-body", orders, b"", "body"),
        Payload("text-plain", orders, text, "body", content_type="text/plain"),
        Payload("deep-nesting", orders, b'{"order": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body"),
        Payload(
            "integer-of-5000-digits",
            orders,
            text.replace(b'"nonce": ', b'"nonce": 1' + b"0" * 5000 + b', "x": '),
            "body",
        ),
        Payload("nan", orders, text.replace(b'"logicMcu": 2000', b'"logicMcu": NaN'), "order.logicMcu"),
        Payload("integer-too-big", orders, _with(valid, "order", "logicMcu", 10**40), "order.logicMcu"),
        Payload("negative", orders, _with(valid, "order", "memoryMib", -1), "order.memoryMib"),
        Payload("wrong-type", orders, _with(valid, "order", "autoAccept", "maybe"), "order.autoAccept"),
        Payload("amount-not-decimal", orders, _with(valid, "order", "maxTotal", "1e18"), "order.maxTotal"),
        Payload("amount-above-u128", orders, _with(valid, "order", "maxTotal", str(2**130)), "order.maxTotal"),
        Payload("digest-not-hex", orders, _with(valid, "order", "specDigest", "0x" + "zz" * 32), "order.specDigest"),
        Payload("min-run-past-duration", orders, _with(valid, "order", "minRunSeconds", 10**6), "order.minRunSeconds"),
        Payload("gpu-milli-above-one", orders, _with(valid, "order", "gpuMilli", 1001), "order.gpuMilli"),
        Payload("missing-signature", orders, _with(valid, "signature", DROP), "signature"),
        Payload("null-order", orders, _with(valid, "order", None), "order"),
        Payload("signature-not-hex", orders, _with(valid, "signature", "0x" + "zz" * 65), "signature"),
        Payload("signature-of-another", orders, _with(valid, "signature", "0x" + "11" * 64 + "1b"), "signature"),
        Payload("unknown-access-point", orders, _with(valid, "access_point", "Atlantis/Core"), "access_point"),
        Payload("access-point-2mb", orders, _with(valid, "access_point", "x" * 2_000_000), "access_point"),
        Payload("access-point-surrogate", orders, text.replace(b'"Cernet/Shanghai"', b'"\\ud800"'), "access_point"),
        Payload("access-point-nul", orders, _with(valid, "access_point", "Cernet/\u0000"), "access_point"),
        Payload("empty-envelope", orders, _with(valid, "job", "envelope", ""), "job.envelope"),
        Payload("envelope-not-base64", orders, _with(valid, "job", "envelope", "not base64!"), "job.envelope"),
        Payload("envelope-of-json", orders, _with(valid, "job", "envelope", "eyJjb21tYW5kIjogW119"), "job.envelope"),
        Payload("plain-command", orders, _with(valid, "job", "command", ["true"]), "job.command"),
        Payload("quote-with-a-plain-job", quote, _json({**QUOTE, "job": {"command": ["true"]}}), "job"),
        Payload("batch-empty", batch, _json({"orders": []}), "orders"),
        Payload("batch-501", batch, _json({"orders": [valid] * 501}), "orders"),
        Payload("batch-not-a-list", batch, _json({"orders": valid}), "orders"),
        Payload("quote-zero-duration", quote, _json({**QUOTE, "duration_s": 0}), "duration_s"),
        Payload("quote-no-compute", quote, _json({**QUOTE, "logic_mcu": 0}), "logic_mcu"),
        Payload("quote-bad-buyer", quote, _json({**QUOTE, "buyer": "0x12"}), "buyer"),
        Payload("unknown-query-parameter", orders + "?dry_run=1", text, "dry_run"),
        Payload("idempotency-key-300", orders, text, "Idempotency-Key", headers=(("Idempotency-Key", "k" * 300),)),
    ]


def answer_payload(client: Any, payload: Payload) -> Answer:
    """Posts the payload with `client` (a TestClient or an httpx.Client) and judges the answer."""
    headers = {"content-type": payload.content_type, **dict(payload.headers)}
    response = client.post(payload.path, content=payload.content, headers=headers)
    if response.status_code >= 500:
        return Answer("crash", f"{response.status_code}: {response.text[:300]}")
    if response.status_code < 400:
        return Answer("accepted", f"{response.status_code}: {response.text[:300]}")
    try:
        body = response.json()
    except ValueError:
        return Answer("vague", f"{response.status_code} not JSON: {response.text[:300]}")
    problems = error_shape_problems(response.status_code, body)
    fields = [f.get("field") for f in body["error"].get("fields", [])] if not problems else []
    if problems or payload.field not in fields:
        return Answer("vague", f"{response.status_code} does not name {payload.field!r}: {problems or body}"[:500])
    return Answer("clear", f"{response.status_code} {body['error']['message'][:200]}")
