"""The CID npm's ipfs-unixfs-importer gives content, through tools/unixfs_cid.mjs (an implementation of the
UnixFS importer independent of ours, set up as Kubo's ``ipfs add --cid-version 1 --raw-leaves``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tools" / "unixfs_cid.mjs"
IMPORTER = ROOT / "node_modules" / "ipfs-unixfs-importer"


def importer_cids(contents: Sequence[bytes]) -> list[str]:
    """One CID per content, from a single run of the Node script (Node starts once)."""
    if not IMPORTER.is_dir():
        pytest.fail(f"{IMPORTER} is missing: run `npm ci` (make test does) to install the UnixFS importer")
    env = {**os.environ, "PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    node = shutil.which("node", path=env["PATH"])
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20 (the project's JavaScript toolchain)")
    with tempfile.TemporaryDirectory(prefix="suanwang-unixfs-") as tmp:
        paths = []
        for index, content in enumerate(contents):
            path = Path(tmp) / f"content-{index}"
            path.write_bytes(content)
            paths.append(str(path))
        done = subprocess.run([node, str(SCRIPT), *paths], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"{SCRIPT.name} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.split()


def importer_cid(content: bytes) -> str:
    return importer_cids([content])[0]
