import random
import socket

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanwang.content import (
    CHUNK_BYTES,
    ContentIntegrityError,
    ContentNotFoundError,
    ContentStore,
    ContentTooLargeError,
    ContentUnavailableError,
    InvalidCidError,
    KuboContentStore,
    compute_cid,
    unixfs,
)
from suanwang.errors import SuanwangError
from tests.backend.content.fake_kubo import reference_cid
from tests.backend.content.js_importer import importer_cid

HELLO_WORLD = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


@pytest.fixture
def store(kubo):
    with KuboContentStore(kubo.url, backoff_seconds=0, timeout=5) as store:
        yield store


def test_the_fake_answers_get_with_405_like_kubo(kubo):
    assert httpx.get(f"{kubo.url}/api/v0/cat", params={"arg": HELLO_WORLD}).status_code == 405


def test_kubo_store_satisfies_the_content_store_protocol(store):
    assert isinstance(store, ContentStore)


def test_put_posts_a_multipart_add_asking_for_cidv1_raw_leaves_and_pins(kubo, store):
    assert store.put(b"hello world") == HELLO_WORLD
    method, path, params = kubo.requests[-1]
    assert (method, path) == ("POST", "/api/v0/add")
    assert params["cid-version"] == "1" and params["raw-leaves"] == "true" and params["pin"] == "true"
    assert params["chunker"] == "size-262144"
    assert kubo.blocks[HELLO_WORLD] == b"hello world"
    assert HELLO_WORLD in kubo.pins


@pytest.fixture(scope="module")
def shared_store(shared_kubo):
    with KuboContentStore(shared_kubo.url, backoff_seconds=0) as store:
        yield store


@given(st.binary(max_size=4096))
def test_put_then_get_round_trips_through_kubo_with_the_locally_computed_cid(shared_store, content):
    cid = shared_store.put(content)
    assert cid == reference_cid(content)
    assert shared_store.get(cid) == content


def test_a_node_that_returns_another_cid_is_refused(kubo, store):
    kubo.add_hash_override = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    with pytest.raises(ContentIntegrityError) as err:
        store.put(b"hello world")
    assert kubo.add_hash_override in err.value.message and HELLO_WORLD in err.value.message


def test_bytes_kubo_serves_are_checked_against_the_cid(kubo, store):
    cid = store.put(b'{"result": "ok"}')
    kubo.cat_override = b'{"result": "forged"}'
    with pytest.raises(ContentIntegrityError) as err:
        store.get(cid)
    assert reference_cid(b'{"result": "forged"}') in err.value.message


def test_get_of_content_the_node_lacks_is_not_found(store):
    with pytest.raises(ContentNotFoundError) as err:
        store.get(HELLO_WORLD)
    assert HELLO_WORLD in err.value.message


def test_has_asks_the_nodes_own_blockstore_offline(kubo, store):
    assert not store.has(HELLO_WORLD)
    store.put(b"hello world")
    assert store.has(HELLO_WORLD)
    method, path, params = kubo.requests[-1]
    assert (method, path, params) == ("POST", "/api/v0/block/stat", {"arg": HELLO_WORLD, "offline": "true"})


def test_pin_pins_content_added_without_a_pin(kubo):
    with KuboContentStore(kubo.url, pin_on_add=False) as store:
        cid = store.put(b"spec")
        assert cid not in kubo.pins
        store.pin(cid)
        assert cid in kubo.pins
        with pytest.raises(ContentNotFoundError):
            store.pin(HELLO_WORLD)


def test_cids_in_other_bases_are_sent_to_kubo_in_canonical_form(kubo, store):
    store.put(b"hello world")
    assert store.get("zb2rhj7crUKTQYRGCRATFaQ6YFLTde2YzdqbbhAASkL9uRDXn") == b"hello world"
    assert kubo.requests[-1][2] == {"arg": HELLO_WORLD}


def test_transient_errors_are_retried_with_growing_backoff(kubo):
    delays = []
    kubo.queued_statuses = [503, 502]
    with KuboContentStore(kubo.url, retries=2, backoff_seconds=0.25, sleep=delays.append) as store:
        assert store.put(b"hello world") == HELLO_WORLD
    assert delays == [0.25, 0.5]
    assert [path for _, path, _ in kubo.requests] == ["/api/v0/add"] * 3


def test_a_node_that_stays_overloaded_makes_the_content_unavailable(kubo):
    kubo.queued_statuses = [503] * 3
    with KuboContentStore(kubo.url, retries=2, sleep=lambda _: None) as store, pytest.raises(
        ContentUnavailableError
    ) as err:
        store.put(b"hello world")
    assert kubo.url in err.value.message and "HTTP 503" in err.value.message


def test_an_ipfs_api_that_is_down_raises_content_unavailable_with_its_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    delays = []
    with KuboContentStore(url, retries=2, sleep=delays.append) as store, pytest.raises(
        ContentUnavailableError
    ) as err:
        store.get(HELLO_WORLD)
    assert isinstance(err.value, SuanwangError)
    assert url in err.value.message and "failed 3 times" in err.value.message
    assert err.value.field == "ipfs_api_url"
    assert len(delays) == 2


def test_a_url_that_is_not_the_rpc_api_is_named_as_such(kubo):
    with KuboContentStore(f"{kubo.url}/gateway", sleep=lambda _: None) as store, pytest.raises(
        ContentUnavailableError
    ) as err:
        store.put(b"hello world")
    assert "HTTP 404" in err.value.message and "5001" in err.value.message


def test_a_node_that_does_not_answer_in_time_is_reported_without_retrying(kubo):
    kubo.stall_seconds = 1.0
    with KuboContentStore(kubo.url, timeout=0.2, sleep=lambda _: None) as store, pytest.raises(
        ContentUnavailableError
    ) as err:
        store.get(HELLO_WORLD)
    assert "did not answer" in err.value.message
    assert len(kubo.requests) == 1


def test_content_over_the_limit_and_bad_cids_are_refused_before_calling_kubo(kubo, store, monkeypatch):
    monkeypatch.setattr(unixfs, "MAX_CONTENT_BYTES", 3 * CHUNK_BYTES)
    with pytest.raises(ContentTooLargeError) as err:
        store.put(b"x" * (3 * CHUNK_BYTES + 1))
    assert err.value.field == "content" and "MAX_CONTENT_BYTES" in err.value.message
    with pytest.raises(InvalidCidError):
        store.get("bafyreiffndsajwhk3lwjewwdxqntmjm4b5wxaaanokonsggenkbw6slwk4")
    assert kubo.requests == []


def test_a_five_mib_result_round_trips_through_kubo_by_the_importers_cid(kubo, store):
    content = random.Random(5).randbytes(5 * 1024 * 1024)
    cid = store.put(content)
    assert cid == importer_cid(content)
    assert kubo.requests[-1][2]["chunker"] == "size-262144"
    assert store.get(cid) == content
    assert store.has(cid)


def test_multi_block_bytes_kubo_serves_are_checked_by_recomputing_the_dag(kubo, store):
    content = b"\x01" * (2 * CHUNK_BYTES)
    cid = store.put(content)
    kubo.cat_override = content[:-1] + b"\x02"
    with pytest.raises(ContentIntegrityError) as err:
        store.get(cid)
    assert compute_cid(kubo.cat_override) in err.value.message and cid in err.value.message
