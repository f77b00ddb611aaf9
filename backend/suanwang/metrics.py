"""The service's Prometheus metrics (served at /metrics by the API)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "suanwang_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "suanwang_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )
        self.head_block = Gauge("suanwang_chain_head_block", "latest block of the chain", registry=self.registry)
        self.indexed_block = Gauge("suanwang_indexed_block", "last block the indexer stored", registry=self.registry)
        self.events = Counter(
            "suanwang_indexed_events", "chain events stored by the indexer", ["name"], registry=self.registry
        )
        self.sse_clients = Gauge("suanwang_sse_clients", "connected live-event clients", registry=self.registry)
