"""Content store over a Kubo (go-ipfs) node's RPC API, called with httpx.

Kubo's RPC API (https://docs.ipfs.tech/reference/kubo/rpc/) takes every command as ``POST /api/v0/<cmd>``
with arguments in the query string (``arg=`` for positional ones), answers JSON (or raw bytes for
``cat``), and reports command failures as HTTP 500 with ``{"Message", "Code", "Type": "error"}``.
ipfshttpclient is not used: its last release (0.7.0) refuses every daemon newer than 0.8
(``VersionMismatch``); see docs/content.md.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx

from suanwang.content.cid import Cid, canonical_cid
from suanwang.content.errors import (
    ContentIntegrityError,
    ContentNotFoundError,
    ContentUnavailableError,
    InvalidCidError,
)
from suanwang.content.unixfs import CHUNK_BYTES, MAX_CONTENT_BYTES, compute_cid

log = logging.getLogger(__name__)

TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
"""Answers that say "try again later" (overload, or a proxy in front of Kubo that lost it)."""

ADD_PARAMS = {
    # Spelled out, not left to the node's Import.* config, so every Kubo gives the CID we compute.
    "cid-version": "1",
    "raw-leaves": "true",
    "hash": "sha2-256",
    "chunker": f"size-{CHUNK_BYTES}",
    "inline": "false",
}


class KuboContentStore:
    """``ContentStore`` backed by a Kubo node.

    Every CID Kubo returns is checked against the locally computed one (``suanwang.content.unixfs``), and
    the bytes Kubo serves are given back only when they have the CID asked for: the whole UnixFS DAG is
    recomputed from them, as ``cat`` returns the file, not its blocks. Connection failures, broken
    connections and HTTP 429/502/503/504 are retried ``retries`` times with exponential backoff; a read
    that takes longer than ``timeout`` seconds is not retried (for ``cat`` of content nobody provides, Kubo
    keeps searching the network: waiting again would not help). Whatever still fails raises
    ``ContentUnavailableError`` naming the API URL."""

    def __init__(
        self,
        api_url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retries: int = 2,
        backoff_seconds: float = 0.25,
        pin_on_add: bool = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.pin_on_add = pin_on_add
        self._sleep = sleep
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=connect_timeout), transport=transport)

    def __repr__(self) -> str:
        return f"KuboContentStore({self.api_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KuboContentStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def put(self, content: bytes) -> Cid:
        cid = compute_cid(content)
        params = {**ADD_PARAMS, "pin": "true" if self.pin_on_add else "false"}
        status, body = self._post("add", params, files={"file": ("content", content, "application/octet-stream")})
        self._raise_for_status("add", status, body)
        returned = _added_hash(body)
        if returned is None:
            raise ContentUnavailableError(
                f"Kubo at {self.api_url} answered /api/v0/add without a Hash: {body[:300]!r}", field="ipfs_api_url"
            )
        if returned != cid and _canonical_or_none(returned) != cid:
            raise ContentIntegrityError(
                f"Kubo at {self.api_url} stored {len(content)} bytes as {returned}, but their CID is {cid} "
                f"(CIDv1, UnixFS with raw leaves, sha2-256). Kubo was asked for {ADD_PARAMS}; a node or proxy "
                "that ignores these options cannot serve this store",
                field="ipfs_api_url",
            )
        return cid

    def get(self, cid: str) -> bytes:
        name = canonical_cid(cid)
        status, body = self._post("cat", {"arg": name}, max_bytes=MAX_CONTENT_BYTES)
        self._raise_not_found(name, status, body)
        self._raise_for_status("cat", status, body)
        served = None if len(body) > MAX_CONTENT_BYTES else compute_cid(body)
        if served != name:
            what = (
                f"more than {MAX_CONTENT_BYTES} bytes (MAX_CONTENT_BYTES)"
                if served is None
                else f"{len(body)} bytes whose CID is {served}"
            )
            raise ContentIntegrityError(
                f"Kubo at {self.api_url} served {what} for {name}; refusing bytes that do not match their CID",
                field="cid",
            )
        return body

    def has(self, cid: str) -> bool:
        """Asks the node's own blockstore (``block/stat`` with ``offline=true``), never the network."""
        name = canonical_cid(cid)
        status, body = self._post("block/stat", {"arg": name, "offline": "true"})
        if status == 500 and _is_not_found(body):
            return False
        self._raise_for_status("block/stat", status, body)
        return True

    def pin(self, cid: str) -> None:
        name = canonical_cid(cid)
        status, body = self._post("pin/add", {"arg": name})
        self._raise_not_found(name, status, body)
        self._raise_for_status("pin/add", status, body)
        pins = _json_object(body).get("Pins", [])
        if name not in pins and all(_canonical_or_none(p) != name for p in pins):
            raise ContentUnavailableError(
                f"Kubo at {self.api_url} answered pin/add for {name} with Pins={pins!r}", field="ipfs_api_url"
            )

    def _post(
        self,
        command: str,
        params: Mapping[str, str],
        *,
        files: Mapping[str, Any] | None = None,
        max_bytes: int | None = None,
    ) -> tuple[int, bytes]:
        """POST one RPC command, retrying transient failures; returns the final status and body.

        Reads at most ``max_bytes + 1`` bytes of the body when ``max_bytes`` is given."""
        url = f"{self.api_url}/api/v0/{command}"
        attempts = self.retries + 1
        failure = ""
        for attempt in range(1, attempts + 1):
            try:
                with self._client.stream("POST", url, params=params, files=files) as response:
                    body = _read_at_most(response, max_bytes)
                    if response.status_code not in TRANSIENT_STATUS:
                        return response.status_code, body
                    failure = f"HTTP {response.status_code} {body[:200]!r}"
            except httpx.TimeoutException as exc:
                if not isinstance(exc, httpx.ConnectTimeout):
                    raise ContentUnavailableError(
                        f"IPFS API at {self.api_url} did not answer POST /api/v0/{command} in time "
                        f"({type(exc).__name__}); for cat/pin of content no reachable peer provides, Kubo "
                        "keeps searching: check the CID is provided somewhere, or raise the timeout",
                        field="ipfs_api_url",
                    ) from exc
                failure = f"{type(exc).__name__}: {exc}"
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                log.warning(
                    "IPFS API %s: %s failed (%s); retry %d/%d", self.api_url, command, failure, attempt, self.retries
                )
                self._sleep(delay)
        raise ContentUnavailableError(
            f"IPFS API at {self.api_url} is unavailable: POST /api/v0/{command} failed {attempts} times, last "
            f"with {failure}. Start Kubo (`ipfs daemon`, RPC API on port 5001 by default), fix the IPFS API "
            "URL, or leave it unset to use the local content store",
            field="ipfs_api_url",
        )

    def _raise_not_found(self, name: str, status: int, body: bytes) -> None:
        if status == 500 and _is_not_found(body):
            raise ContentNotFoundError(
                f"Kubo at {self.api_url} has no content {name}: {_kubo_message(body)}", field="cid"
            )

    def _raise_for_status(self, command: str, status: int, body: bytes) -> None:
        if status == 200:
            return
        if status == 404:
            hint = "is this Kubo's RPC API (port 5001 by default) and not its gateway (port 8080)?"
        elif status == 403:
            hint = "Kubo's API.Authorizations or a proxy refused the call"
        else:
            hint = _kubo_message(body)
        raise ContentUnavailableError(
            f"IPFS API at {self.api_url} answered POST /api/v0/{command} with HTTP {status}: {hint}",
            field="ipfs_api_url",
        )


def _read_at_most(response: httpx.Response, max_bytes: int | None) -> bytes:
    if max_bytes is None:
        return response.read()
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            break
    return b"".join(chunks)[: max_bytes + 1]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _kubo_message(body: bytes) -> str:
    message = _json_object(body).get("Message")
    return str(message) if message else body[:300].decode("utf-8", "replace").strip()


def _is_not_found(body: bytes) -> bool:
    message = _kubo_message(body).lower()
    return "not found" in message or "could not find" in message


def _added_hash(body: bytes) -> str | None:
    """The Hash of the last object in add's newline-delimited JSON (one object per added file)."""
    hashes = [obj["Hash"] for line in body.splitlines() if (obj := _json_object(line)).get("Hash")]
    return str(hashes[-1]) if hashes else None


def _canonical_or_none(text: str) -> Cid | None:
    try:
        return canonical_cid(text)
    except InvalidCidError:
        return None
