import numpy as np
import pytest

from suanwang.compute import default_catalog
from suanwang.matching import Node


class LineNetwork:
    """Routers on a line, 5 ms apart; bandwidth 100 Gbps over one hop, less over more."""

    def latency_ms(self, access_point: int, routers: np.ndarray) -> np.ndarray:
        return 5.0 * np.abs(np.asarray(routers) - access_point)

    def bandwidth_gbps(self, access_point: int, routers: np.ndarray) -> np.ndarray:
        return 100.0 / (1 + np.abs(np.asarray(routers) - access_point))


@pytest.fixture
def network() -> LineNetwork:
    return LineNetwork()


@pytest.fixture
def catalog():
    return default_catalog()


@pytest.fixture
def small_market(catalog) -> list[Node]:
    a100 = catalog.by_name("nvidia-a100-sxm4-80gb").code
    t4 = catalog.by_name("nvidia-t4").code
    return [
        Node("op-a100", 64000, 512 * 1024, 8, a100, owner="operator", router=0, price_per_cu_hour=10**15),
        Node("op-t4", 32000, 128 * 1024, 2, t4, owner="operator", router=1, price_per_cu_hour=10**15),
        Node("cloud-a100", 64000, 512 * 1024, 8, a100, owner="cloud", router=6, price_per_cu_hour=5 * 10**14),
        Node("op-cpu", 96000, 384 * 1024, 0, 0, owner="operator", router=2, price_per_cu_hour=10**15),
        Node("prov-t4", 16000, 64 * 1024, 1, t4, owner="provider", router=9, price_per_cu_hour=2 * 10**14,
             reliability=0.6),
    ]
