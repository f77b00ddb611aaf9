"""Bounds on request bodies, checked before anything parses them: size, and JSON nesting depth.

py_ecc (imported with the Ethereum stack) raises Python's recursion limit to 100,000 at import time, and
the standard JSON decoder then followed 100,000 nested brackets and overflowed the C stack: a 200 KB body
such as ``{"a": [[[[...]]]]}`` killed the whole service with a segmentation fault (found by
tests/backend/input/test_malformed_payloads.py). The package restores the default limit
(suanwang/__init__.py), which turns that into a RecursionError; this bound keeps the answer a 422 naming
the body: no request of this API nests more than a few levels, so anything deeper than MAX_JSON_DEPTH is
refused before the decoder sees it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from suanwang.api.errors import error_body
from suanwang.api.idempotency import _send_json

MAX_JSON_DEPTH = 64
# The largest legal request is a batch of 500 orders with 64-word commands (~33 MB); this bounds the
# memory one request can take, not what the API accepts.
MAX_BODY_BYTES = 64 * 1024 * 1024
_BRACKETS = bytes(range(256)).translate(None, b'[]{}"\\')  # every byte but these six, to delete


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in `body` (brackets inside strings do not count);
    only brackets, quotes and backslashes are looked at, so an ordinary body costs next to nothing."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot be too deep: skip the scan
    depth = deepest = 0
    in_string = escaped = False
    for byte in body.translate(None, _BRACKETS):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _refusal(message: str) -> dict[str, object]:
    return error_body("invalid_body", message, [{"field": "body", "location": "body", "message": message}])


class BodyLimitsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                text = f"the body is larger than {MAX_BODY_BYTES // 2**20} MiB"
                await _send_json(send, 413, _refusal(text))
                return
            if not message.get("more_body"):
                break
        deepest = json_depth(bytes(body))
        if deepest > MAX_JSON_DEPTH:
            text = f"the body nests arrays or objects {deepest} levels deep; at most {MAX_JSON_DEPTH} are accepted"
            await _send_json(send, 422, _refusal(text))
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:  # the body was read once; what follows is the client hanging up or not
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)
