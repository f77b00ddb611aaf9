"""Operator topologies, SRv6/APN6/CFN models and path computation (pure; see docs/network-model.md).

The matcher's entry points: ``load_network`` to build a ``Network``; ``Network.router_index``,
``Network.latency_from``, ``Network.path``, ``Network.reserve`` and ``Network.release``.
"""

from suanwang.network.config import load_network
from suanwang.network.model import Network, Path, router_id

__all__ = ["Network", "Path", "load_network", "router_id"]
