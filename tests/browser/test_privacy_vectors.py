"""The web app's privacy module (frontend/src/privacy.ts) against the privacy vectors
(tests/fixtures/privacy/vectors.json, docs/content.md "Privacy"), in headless Chromium (where the app runs)
and in Node: the derived keys, the vector envelope opened for each recipient, an envelope sealed there of
the same shape, and the backend's error kinds. What the browser seals, the Python side opens."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route

from suanwang.paths import REPO_ROOT
from suanwang.privacy import open_envelope

HERE = Path(__file__).with_name("privacy")
VECTORS = REPO_ROOT / "tests" / "fixtures" / "privacy" / "vectors.json"
# Any http://localhost page is a secure context, so WebCrypto is there; the route serves it from memory.
ORIGIN = "http://localhost:9"


def node(*args: str) -> str:
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("no node on PATH: the web app is built with Node 20 and its npm packages (npm install)")
    done = subprocess.run(
        [binary, str(HERE / "run.mjs"), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """frontend/src/privacy.ts built as ES modules (privacy.js and its chunks), as Vite builds the app's."""
    out = tmp_path_factory.mktemp("privacy-bundle")
    node(str(out), "--build-only")
    return out


def assert_holds(answer: dict[str, Any]) -> None:
    assert answer["failures"] == [], "\n".join(answer["failures"])
    # What the web app sealed, the backend opens, for the node and for the buyer alike.
    vector = json.loads(VECTORS.read_text())["envelope"]
    sealed = base64.b64decode(answer["sealed"])
    for key in vector["opens_with"]:
        opened = open_envelope(sealed, bytes.fromhex(key["public_key"][2:]), bytes.fromhex(key["private_key"][2:]))
        assert opened.decode() == vector["plaintext_utf8"]


def test_the_privacy_vectors_hold_in_chromium(bundle: Path, page: Page) -> None:
    files = {
        "/": ("text/html", b"<!doctype html><title>privacy vectors</title>"),
        "/check.js": ("text/javascript", (HERE / "check.js").read_bytes()),
        "/vectors.json": ("application/json", VECTORS.read_bytes()),
        **{f"/{f.name}": ("text/javascript", f.read_bytes()) for f in bundle.glob("*.js")},
    }

    def serve(route: Route) -> None:
        found = files.get(route.request.url.removeprefix(ORIGIN))
        if found is None:
            route.fulfill(status=404, body=b"")
        else:
            route.fulfill(status=200, content_type=found[0], body=found[1])

    page.route(f"{ORIGIN}/**", serve)
    page.goto(ORIGIN + "/")
    page.set_default_timeout(30_000)
    answer = page.evaluate(
        """async () => {
            const privacy = await import('/privacy.js');
            const { check } = await import('/check.js');
            const vectors = await (await fetch('/vectors.json')).json();
            return check(privacy, vectors);
        }"""
    )
    assert_holds(answer)


def test_the_privacy_vectors_hold_in_node(tmp_path: Path) -> None:
    assert_holds(json.loads(node(str(tmp_path))))
