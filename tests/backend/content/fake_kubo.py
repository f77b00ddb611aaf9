"""A fake Kubo RPC server (real HTTP on a free local port) and an independent CID reference.

No Kubo binary can be installed here (see docs/content.md), so the adapter is tested against this server,
which follows Kubo's documented RPC API (https://docs.ipfs.tech/reference/kubo/rpc/): POST only (other
methods get 405), arguments in the query string, add takes multipart/form-data and answers
``{"Name","Hash","Size"}`` per file, cat answers the raw bytes, pin/add ``{"Pins": [...]}``, block/stat
``{"Key","Size"}``, and failures are HTTP 500 with ``{"Message","Code","Type":"error"}``. It behaves like
a node run offline: content it does not hold is "not found" at once rather than searched for.

The CIDs it answers are not the store's own: one chunk is hashed byte by byte below, and larger content
gets the CID of npm's ipfs-unixfs-importer (js_importer.py), so a round trip of multi-block content checks
the adapter's locally computed CID against an independent UnixFS implementation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.backend.content.js_importer import importer_cid

KUBO_CHUNK_SIZE = 262_144


def reference_cid(content: bytes) -> str:
    """CIDv1 of one raw block, written out byte by byte with hashlib and base64 (not multiformats).

    version 1, codec raw (0x55), multihash sha2-256 (0x12) of length 32 (0x20): each is an unsigned
    varint below 0x80, so each is one byte; then the digest; multibase 'b' = base32 lower, no padding."""
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(content).digest()
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


@dataclass
class FakeKubo:
    blocks: dict[str, bytes] = field(default_factory=dict)
    pins: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    queued_statuses: list[int] = field(default_factory=list)
    """Statuses answered (with an empty body) before any command is handled, first to last."""
    add_hash_override: str | None = None
    """A Hash that add answers instead of the right one, like a node with other import settings."""
    cat_override: bytes | None = None
    """Bytes that cat serves instead of the stored ones, like a faulty or lying node."""
    stall_seconds: float = 0.0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        parts = urlsplit(raw_path)
        params = dict(parse_qsl(parts.query))
        with self.lock:
            self.requests.append((method, parts.path, params))
            if self.queued_statuses:
                return self.queued_statuses.pop(0), "text/plain", b""
        if not parts.path.startswith("/api/v0/"):
            return 404, "text/plain", b"404 page not found\n"
        if method != "POST":
            return 405, "text/plain", b"405 - Method Not Allowed\n"
        if self.stall_seconds:
            time.sleep(self.stall_seconds)
        command = parts.path.removeprefix("/api/v0/")
        handlers: dict[str, Callable[[dict[str, str], dict[str, str], bytes], tuple[int, str, bytes]]] = {
            "add": self._add,
            "cat": self._cat,
            "pin/add": self._pin_add,
            "block/stat": self._block_stat,
        }
        if command not in handlers:
            return 404, "text/plain", b"404 page not found\n"
        return handlers[command](params, headers, body)

    def _add(self, params: dict[str, str], headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if (params.get("cid-version"), params.get("raw-leaves"), params.get("chunker")) != (
            "1",
            "true",
            f"size-{KUBO_CHUNK_SIZE}",
        ):
            return _error("this fake computes only CIDv1 with raw leaves and Kubo's default chunker")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body
        )
        lines = []
        for part in message.iter_parts():
            content = part.get_payload(decode=True)
            assert isinstance(content, bytes)
            cid = self.add_hash_override or (
                reference_cid(content) if len(content) <= KUBO_CHUNK_SIZE else importer_cid(content)
            )
            with self.lock:
                self.blocks[cid] = content
                if params.get("pin", "true") == "true":
                    self.pins.add(cid)
            lines.append(json.dumps({"Name": part.get_filename() or cid, "Hash": cid, "Size": str(len(content))}))
        return 200, "application/json", ("\n".join(lines) + "\n").encode()

    def _cat(self, params: dict[str, str], _headers: dict[str, str], _body: bytes) -> tuple[int, str, bytes]:
        cid = params.get("arg", "")
        if cid not in self.blocks:
            return _not_found(cid)
        return 200, "text/plain", self.cat_override if self.cat_override is not None else self.blocks[cid]

    def _pin_add(self, params: dict[str, str], _headers: dict[str, str], _body: bytes) -> tuple[int, str, bytes]:
        cid = params.get("arg", "")
        if cid not in self.blocks:
            return _not_found(cid)
        with self.lock:
            self.pins.add(cid)
        return 200, "application/json", json.dumps({"Pins": [cid]}).encode()

    def _block_stat(self, params: dict[str, str], _headers: dict[str, str], _body: bytes) -> tuple[int, str, bytes]:
        cid = params.get("arg", "")
        if cid not in self.blocks:
            return _not_found(cid)
        return 200, "application/json", json.dumps({"Key": cid, "Size": len(self.blocks[cid])}).encode()


def _error(message: str) -> tuple[int, str, bytes]:
    return 500, "application/json", json.dumps({"Message": message, "Code": 0, "Type": "error"}).encode()


def _not_found(cid: str) -> tuple[int, str, bytes]:
    return _error(f"block was not found locally (offline): ipld: could not find {cid}")


def serve(fake: FakeKubo) -> Iterator[FakeKubo]:
    """Run ``fake`` on a free port of 127.0.0.1 (its ``url`` is set) until the generator is closed."""
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Go's net/http serves

        def setup(self) -> None:
            super().setup()
            # Go sets TCP_NODELAY on every connection; without it Nagle plus delayed ACKs add ~40 ms a call.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, content_type, payload = fake.handle(self.command, self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
