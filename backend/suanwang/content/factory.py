"""Choose the content store from configuration."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from suanwang.content.kubo import KuboContentStore
from suanwang.content.store import ContentStore, LocalContentStore
from suanwang.errors import InputError


def content_store_from_url(ipfs_api_url: str | None, local_dir: Path) -> ContentStore:
    """A ``KuboContentStore`` when an IPFS RPC API URL is given (e.g. ``http://127.0.0.1:5001``), else the
    default ``LocalContentStore`` under ``local_dir`` (which is then the only place content lives)."""
    if ipfs_api_url is None or not ipfs_api_url.strip():
        return LocalContentStore(local_dir)
    url = ipfs_api_url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(
            f"IPFS API URL {url!r} is not an http(s) URL; give Kubo's RPC address such as "
            "http://127.0.0.1:5001 (not a multiaddr like /ip4/127.0.0.1/tcp/5001), or leave it unset to "
            f"keep content in {local_dir}",
            field="ipfs_api_url",
        )
    return KuboContentStore(url)
