"""Small helpers around Linux network namespaces: enter one for a block, write its sysctls, open
sockets inside it. Entering is per thread (setns(2) changes only the calling thread)."""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from suanwang.errors import InfeasibleError

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")
_libc = ctypes.CDLL(None, use_errno=True)


def require_root() -> None:
    """Raise with a clear message unless this process may create network namespaces."""
    if os.geteuid() != 0:
        raise InfeasibleError(
            "the SRv6 data plane needs root (network namespaces and veth links); run as root, e.g. in CI",
            field="dataplane",
        )


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Run the block with this thread inside ``namespace``; sockets opened there stay there."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_RUN_DIR / namespace, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def write_sysctls(namespace: str, values: dict[str, str]) -> None:
    """Write /proc/sys entries (keys like ``net/ipv6/conf/all/forwarding``) inside ``namespace``."""
    with inside(namespace):
        for key, value in values.items():
            Path("/proc/sys", key).write_text(value)


def socket_in(namespace: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    with inside(namespace):
        return socket.socket(family, kind, proto)
