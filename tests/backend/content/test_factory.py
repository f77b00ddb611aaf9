import pytest

from suanwang.content import KuboContentStore, LocalContentStore, content_store_from_url
from suanwang.errors import InputError


@pytest.mark.parametrize("url", [None, "", "  "])
def test_without_an_ipfs_api_url_content_stays_in_the_local_directory(tmp_path, url):
    store = content_store_from_url(url, tmp_path)
    assert isinstance(store, LocalContentStore) and store.root == tmp_path


def test_an_ipfs_api_url_gives_a_kubo_store_that_works_end_to_end(kubo, tmp_path):
    store = content_store_from_url(kubo.url + "/", tmp_path)
    assert isinstance(store, KuboContentStore) and store.api_url == kubo.url
    cid = store.put(b"order spec")
    assert store.get(cid) == b"order spec"
    assert not any(tmp_path.iterdir())
    store.close()


@pytest.mark.parametrize("url", ["/ip4/127.0.0.1/tcp/5001", "localhost:5001", "ftp://127.0.0.1:5001"])
def test_an_ipfs_api_address_that_is_not_an_http_url_is_refused_with_an_example(tmp_path, url):
    with pytest.raises(InputError) as err:
        content_store_from_url(url, tmp_path)
    assert err.value.field == "ipfs_api_url"
    assert "http://127.0.0.1:5001" in err.value.message
