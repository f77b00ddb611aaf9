import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanwang.content import (
    CHUNK_BYTES,
    MAX_CONTENT_BYTES,
    ContentIntegrityError,
    ContentNotFoundError,
    ContentStore,
    ContentTooLargeError,
    LocalContentStore,
    unixfs,
)
from suanwang.errors import NotFoundError
from tests.backend.content.fake_kubo import reference_cid

HELLO_WORLD = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


@pytest.fixture
def store(tmp_path):
    return LocalContentStore(tmp_path / "content")


def test_local_store_satisfies_the_content_store_protocol(store):
    assert isinstance(store, ContentStore)


def test_put_returns_kubos_cid_and_files_the_bytes_under_it(store):
    cid = store.put(b"hello world")
    assert cid == HELLO_WORLD
    path = store.root / cid[-3:-1] / cid
    assert path.read_bytes() == b"hello world"
    assert [p.name for p in path.parent.iterdir()] == [cid]


@given(st.binary(max_size=8192))
def test_put_then_get_gives_back_the_same_bytes_under_a_deterministic_cid(content):
    with tempfile.TemporaryDirectory() as root:
        store = LocalContentStore(Path(root))
        cid = store.put(content)
        assert cid == reference_cid(content)
        assert store.put(content) == cid
        assert store.has(cid)
        assert store.get(cid) == content


def test_get_of_a_tampered_file_raises_an_integrity_error_naming_the_file(store):
    cid = store.put(b'{"order": 1, "price": 100}')
    path = store.root / cid[-3:-1] / cid
    path.write_bytes(b'{"order": 1, "price": 999}')
    with pytest.raises(ContentIntegrityError) as err:
        store.get(cid)
    assert str(path) in err.value.message
    assert reference_cid(b'{"order": 1, "price": 999}') in err.value.message


def test_putting_the_original_again_repairs_a_damaged_file(store):
    cid = store.put(b"result")
    (store.root / cid[-3:-1] / cid).write_bytes(b"resulT")
    assert store.put(b"result") == cid
    assert store.get(cid) == b"result"


def test_get_of_unknown_content_is_not_found_and_says_where_it_looked(store):
    with pytest.raises(ContentNotFoundError) as err:
        store.get(HELLO_WORLD)
    assert isinstance(err.value, NotFoundError)
    assert HELLO_WORLD in err.value.message and str(store.root) in err.value.message


def test_has_is_false_until_put(store):
    assert not store.has(HELLO_WORLD)
    store.put(b"hello world")
    assert store.has(HELLO_WORLD)


def test_pin_checks_the_content_is_there_and_intact(store):
    with pytest.raises(ContentNotFoundError):
        store.pin(HELLO_WORLD)
    store.put(b"hello world")
    store.pin(HELLO_WORLD)
    (store.root / HELLO_WORLD[-3:-1] / HELLO_WORLD).write_bytes(b"hello")
    with pytest.raises(ContentIntegrityError):
        store.pin(HELLO_WORLD)


def test_content_over_the_limit_is_refused_naming_the_limit_and_nothing_is_written(store, monkeypatch):
    monkeypatch.setattr(unixfs, "MAX_CONTENT_BYTES", 2 * CHUNK_BYTES)
    with pytest.raises(ContentTooLargeError) as err:
        store.put(b"x" * (2 * CHUNK_BYTES + 1))
    assert err.value.field == "content"
    assert "MAX_CONTENT_BYTES" in err.value.message and str(2 * CHUNK_BYTES + 1) in err.value.message
    assert not store.root.exists()


def test_the_real_limit_is_one_gib_and_is_named_when_exceeded():
    assert MAX_CONTENT_BYTES == 1 << 30
    unixfs.check_size(MAX_CONTENT_BYTES)
    with pytest.raises(ContentTooLargeError) as err:
        unixfs.check_size(MAX_CONTENT_BYTES + 1)
    assert f"at most {MAX_CONTENT_BYTES} bytes (MAX_CONTENT_BYTES, 1024 MiB)" in err.value.message


FIVE_MIB = random.Random(16).randbytes(5 * 1024 * 1024)


def _blocks_on_disk(store):
    return sorted(p for p in store.root.rglob("*") if p.is_file())


def test_a_five_mib_result_round_trips_as_one_file_per_block(store):
    cid = store.put(FIVE_MIB)
    assert cid.startswith("bafybei")
    assert len(_blocks_on_disk(store)) == 20 + 1  # 20 leaves of 256 KiB under one root
    assert store.get(cid) == FIVE_MIB
    assert store.put(FIVE_MIB) == cid and len(_blocks_on_disk(store)) == 21
    store.pin(cid)


def test_a_damaged_leaf_block_on_disk_is_refused(store):
    cid = store.put(FIVE_MIB)
    leaf_cid = reference_cid(FIVE_MIB[CHUNK_BYTES : 2 * CHUNK_BYTES])
    leaf = store.root / leaf_cid[-3:-1] / leaf_cid
    damaged = bytearray(leaf.read_bytes())
    damaged[1000] ^= 0x01
    leaf.write_bytes(bytes(damaged))
    with pytest.raises(ContentIntegrityError) as err:
        store.get(cid)
    assert str(leaf) in err.value.message and reference_cid(bytes(damaged)) in err.value.message
    with pytest.raises(ContentIntegrityError):
        store.pin(cid)
    assert store.put(FIVE_MIB) == cid and store.get(cid) == FIVE_MIB  # putting again repairs it


def test_a_damaged_root_node_and_a_missing_leaf_are_refused(store):
    cid = store.put(FIVE_MIB)
    root = store.root / cid[-3:-1] / cid
    intact = root.read_bytes()
    root.write_bytes(intact[:-1] + bytes([intact[-1] ^ 0x01]))
    with pytest.raises(ContentIntegrityError, match="does not hash to its name"):
        store.get(cid)
    root.write_bytes(intact)
    leaf_cid = reference_cid(FIVE_MIB[:CHUNK_BYTES])
    (store.root / leaf_cid[-3:-1] / leaf_cid).unlink()
    with pytest.raises(ContentIntegrityError, match=f"block {leaf_cid} is missing"):
        store.get(cid)


def test_a_write_that_fails_midway_leaves_neither_the_file_nor_a_temporary(store, monkeypatch):
    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put(b"hello world")
    assert list((store.root / HELLO_WORLD[-3:-1]).iterdir()) == []
    assert not store.has(HELLO_WORLD)
