"""Idempotency keys on every POST: a repeated key returns the first response; the same key with a
different request is a 409.

Stored in the database, so a retry after a restart of the service is answered the same way, and
claimed with a unique insert, so of many concurrent requests with one key exactly one runs; the
others wait for its response (or get a 409 if it takes too long)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from suanwang.api.errors import error_body
from suanwang.storage.models import IdempotencyRecord

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 200
WAIT_FOR_FIRST_S = 30.0


def _fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


async def _send_json(
    send: Send, status: int, payload: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, sessions: sessionmaker[Session] | None = None) -> None:
        self.app = app
        self._sessions = sessions

    def sessions(self, scope: Scope) -> sessionmaker[Session]:
        if self._sessions is not None:
            return self._sessions
        runtime = scope["app"].state.runtime
        sessions: sessionmaker[Session] = runtime.sessions
        return sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key_raw = dict(scope["headers"]).get(HEADER)
        if key_raw is None:
            await self.app(scope, receive, send)
            return
        key = key_raw.decode("latin-1")
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_json(
                send,
                400,
                error_body(
                    "invalid_idempotency_key",
                    f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                    [{"field": "Idempotency-Key", "location": "header", "message": "1 to 200 characters"}],
                ),
            )
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        fingerprint = _fingerprint(scope["method"], scope["path"], body)
        sessions = self.sessions(scope)
        claimed = await asyncio.to_thread(self._claim, sessions, key, fingerprint)
        if not claimed:
            await self._replay(sessions, key, fingerprint, send)
            return

        response_start: Message | None = None
        chunks: list[bytes] = []

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal response_start
            if message["type"] == "http.response.start":
                response_start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        except Exception:
            await asyncio.to_thread(self._forget, sessions, key)
            raise
        status = response_start["status"] if response_start else 500
        if status >= 500:  # not a result: let the client retry with the same key
            await asyncio.to_thread(self._forget, sessions, key)
            return
        headers = [
            [k.decode("latin-1"), v.decode("latin-1")]
            for k, v in (response_start or {}).get("headers", [])
            if k.lower() in (b"content-type", b"location")
        ]
        await asyncio.to_thread(self._complete, sessions, key, status, b"".join(chunks), headers)

    @staticmethod
    def _claim(sessions: sessionmaker[Session], key: str, fingerprint: str) -> bool:
        try:
            with sessions.begin() as session:
                session.add(IdempotencyRecord(key=key, fingerprint=fingerprint, created_at=datetime.now(UTC)))
            return True
        except IntegrityError:
            return False

    @staticmethod
    def _complete(
        sessions: sessionmaker[Session], key: str, status: int, body: bytes, headers: list[list[str]]
    ) -> None:
        with sessions.begin() as session:
            record = session.get(IdempotencyRecord, key)
            if record is not None:
                record.status_code, record.body, record.headers = status, body, headers

    @staticmethod
    def _forget(sessions: sessionmaker[Session], key: str) -> None:
        with sessions.begin() as session:
            record = session.get(IdempotencyRecord, key)
            if record is not None and record.status_code is None:
                session.delete(record)

    async def _replay(self, sessions: sessionmaker[Session], key: str, fingerprint: str, send: Send) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_FOR_FIRST_S
        while True:
            record = await asyncio.to_thread(self._load, sessions, key)
            if record is None:  # the first attempt failed and was forgotten: the client may retry
                await _send_json(
                    send,
                    409,
                    error_body(
                        "idempotency_retry", "the first request with this Idempotency-Key failed; send it again"
                    ),
                )
                return
            if record.fingerprint != fingerprint:
                await _send_json(
                    send,
                    409,
                    error_body(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request",
                        [
                            {
                                "field": "Idempotency-Key",
                                "location": "header",
                                "message": "already used for another request",
                            }
                        ],
                    ),
                )
                return
            if record.status_code is not None:
                headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (record.headers or [])]
                headers.append((b"idempotent-replayed", b"true"))
                await send({"type": "http.response.start", "status": record.status_code, "headers": headers})
                await send({"type": "http.response.body", "body": record.body or b""})
                return
            if loop.time() > deadline:
                await _send_json(
                    send,
                    409,
                    error_body("idempotency_in_progress", "a request with this Idempotency-Key is still in progress"),
                    [(b"retry-after", b"1")],
                )
                return
            await asyncio.sleep(0.02)

    @staticmethod
    def _load(sessions: sessionmaker[Session], key: str) -> IdempotencyRecord | None:
        with sessions() as session:
            return session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == key))
