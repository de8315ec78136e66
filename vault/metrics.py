"""Prometheus metrics, one registry per app (tests build many apps in one process).

Under several gunicorn workers PROMETHEUS_MULTIPROC_DIR names a folder the workers share
(`vault serve` and deploy/gunicorn.conf.py set it up): each process writes its values to its own
memory-mapped files there, and /metrics, whichever worker answers it, sums every process's files
(prometheus-client's multiprocess mode), so counts are the service's, not one worker's. Counters
and histograms need nothing more; a Gauge added here must choose a `multiprocess_mode`.

What is exported (counters carry the `_total` suffix, deploy/grafana/vault.json reads them):
- `vault_http_requests_total{route, method, status}`: route is the Flask rule, never the path
  ("unmatched" when none matched); method one of HTTP_METHODS or "other"; status one of the
  codes HTTP names or "other".
- `vault_http_request_duration_seconds{route}`: latency histogram.
- `vault_secrets_total{event}`: created (a retried fill answered from the first is not
  counted again), revealed (an envelope handed to the assignee's session; a re-fetch by that
  session within the grace window is not counted again), refused
  (403: not the assignee, nothing consumed; a 410 is no refusal), deleted (by the customer),
  purged (secrets and open requests removed with their ticket).
- `vault_webhooks_total{source, result}`: see WEBHOOK_RESULTS.
- `vault_redis_errors_total`: operations that failed because Redis (or its replicas) did not
  answer: the 503s of the API and pages, and /readyz finding Redis down.

Every label takes its values from a closed set, fixed by vault's code: nothing a client sends
adds a series. /metrics is unauthenticated and each series is kept for the life of the process,
so a label that copied a client's method token (any run of letters is one) would let anyone grow
the scrape, the memory and the multiprocess files without end. A method or status outside its
set counts as OTHER; events, sources and results are named by vault's own code, and one outside
its set is refused (KeyError), never added.
"""

from __future__ import annotations

import os
from http import HTTPStatus

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as mp
from prometheus_client import values as prom_values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"
UNMATCHED = "unmatched"  # the route of a request no rule matched
# Every method vault serves is among these (tests/test_metrics.py holds the app's rules to it).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
HTTP_STATUSES = frozenset(str(status.value) for status in HTTPStatus)
LATENCY_BUCKETS = (.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5)
SECRET_EVENTS = ("created", "revealed", "refused", "deleted", "purged")
WEBHOOK_SOURCES = ("helpscout", "standard")
# applied: acted on; ignored: understood, nothing to do (a test event, an unknown conversation,
# news older than what was applied); duplicate: answered from the first delivery; the rest are
# refusals by status (401 unauthorized, 400/413 invalid, 429 rate_limited, 503 unavailable).
WEBHOOK_RESULTS = ("applied", "ignored", "duplicate", "unauthorized", "invalid", "rate_limited",
                   "unavailable", "error")


def multiprocess_dir() -> str:
    """The shared folder of multiprocess mode, or "" when this process counts alone."""
    return os.environ.get(MULTIPROC_ENV, "")


_values_folder = ""  # the folder of the file-backed values this module chose, if any


def _match_value_class() -> None:
    """prometheus-client picks in-memory or file-backed values once, when it is first imported;
    `vault serve` and the gunicorn config decide the folder after that, before the app is
    built. Pick again for the metrics about to be created: file-backed values in the folder
    named now (they keep their files open, so a new folder needs new ones), or back to
    in-memory ones (tests build apps of both kinds in one process)."""
    global _values_folder
    folder = multiprocess_dir()
    file_backed = bool(getattr(prom_values.ValueClass, "_multiprocess", False))
    if folder and (not file_backed or folder != _values_folder):
        prom_values.ValueClass = prom_values.MultiProcessValue()  # type: ignore[no-untyped-call]
    elif not folder and file_backed:
        prom_values.ValueClass = prom_values.MutexValue
    _values_folder = folder


class Metrics:
    def __init__(self) -> None:
        _match_value_class()
        self.registry = CollectorRegistry()
        self.requests = Counter("vault_http_requests", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("vault_http_request_duration_seconds", "Request latency by route",
                                 ["route"], registry=self.registry, buckets=LATENCY_BUCKETS)
        self.secrets = Counter("vault_secrets", "Secret events: created, revealed, refused, "
                               "deleted, purged", ["event"], registry=self.registry)
        self.webhooks = Counter("vault_webhooks", "Webhook deliveries by source and result",
                                ["source", "result"], registry=self.registry)
        self.redis_errors = Counter("vault_redis_errors", "Operations that failed because Redis "
                                    "did not answer", registry=self.registry)
        # Every series exists from the start at 0: rate() and alerts see the first event.
        # The children are kept: a label lookup per event costs a lock and a dict each time.
        self._secret_events = {event: self.secrets.labels(event) for event in SECRET_EVENTS}
        self._webhooks = {(source, result): self.webhooks.labels(source, result)
                          for source in WEBHOOK_SOURCES for result in WEBHOOK_RESULTS}

    def secret_event(self, event: str, count: int = 1) -> None:
        """The service's hook: one of SECRET_EVENTS happened `count` times."""
        if count:
            self._secret_events[event].inc(count)

    def webhook(self, source: str, result: str) -> None:
        """A delivery from one of WEBHOOK_SOURCES ended as one of WEBHOOK_RESULTS."""
        self._webhooks[source, result].inc()

    def render(self) -> tuple[bytes, str]:
        if multiprocess_dir():
            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
