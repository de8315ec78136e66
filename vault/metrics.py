"""Prometheus metrics, one registry per app (tests build many apps in one process).

Under several gunicorn workers set PROMETHEUS_MULTIPROC_DIR: values go to files shared by the
workers and /metrics aggregates them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as mp


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vault_http_requests", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("vault_http_request_duration_seconds", "Request latency by route",
                                 ["route"], registry=self.registry,
                                 buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.secrets = Counter("vault_secrets", "Secret events: created, revealed, refused, "
                               "deleted, purged", ["event"], registry=self.registry)
        self.webhooks = Counter("vault_webhooks", "Webhook deliveries by source and result",
                                ["source", "result"], registry=self.registry)
        self.redis_errors = Counter("vault_redis_errors", "Requests answered 503 because Redis "
                                    "did not answer", registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
