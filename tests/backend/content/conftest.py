"""Fixtures: a fake Kubo RPC server on a free local port (see fake_kubo.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backend.content.fake_kubo import FakeKubo, serve


@pytest.fixture
def kubo() -> Iterator[FakeKubo]:
    yield from serve(FakeKubo())


@pytest.fixture(scope="module")
def shared_kubo() -> Iterator[FakeKubo]:
    """One server for property tests (hypothesis runs many examples inside one test call)."""
    yield from serve(FakeKubo())
