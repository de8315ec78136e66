"""Helpdesk webhooks: Help Scout's native scheme and Standard Webhooks (vault.helpdesks).

Order, for both: rate limit, verify the signature over the raw body (constant time, every
configured secret), then de-duplicate, then act. A repeated delivery is answered with the first
one's result and not acted on twice. Webhooks never get 410: purging an unknown or already
purged ticket is a 200 with `purged: 0`.
"""

from __future__ import annotations

from collections.abc import Callable

import redis.exceptions
from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from vault.api import bp
from vault.errors import TooLarge, VaultError
from vault.extension import ext
from vault.helpdesks.helpscout import HelpScout
from vault.helpdesks.standard import StandardWebhooks
from vault.helpdesks.tickets import Deliveries, Helpdesk
from vault.web import client_address, parse_json_object

HELPSCOUT = HelpScout.source
STANDARD = StandardWebhooks.source


def _raw_body() -> bytes:
    raw = request.get_data(cache=True)
    if len(raw) > 64 * 1024:
        raise TooLarge("The request body is larger than 64 KiB.")
    return raw


_REFUSED = {400: "invalid", 401: "unauthorized", 413: "invalid", 429: "rate_limited",
            503: "unavailable"}


def _counted(source: str, handle: Callable[[], Response]) -> Response:
    """Run a webhook view, counting a refused delivery by why (the rest count as answered)."""
    try:
        return handle()
    except Exception as exc:
        if isinstance(exc, VaultError):
            status = exc.status
        elif isinstance(exc, HTTPException):
            status = exc.code or 500
        elif isinstance(exc, redis.exceptions.RedisError):
            status = 503  # a Redis fault outside the store: answered 503 by the error handler
        else:
            status = 500
        ext().metrics.webhook(source, _REFUSED.get(status, "invalid" if status < 500
                                                   else "error"))
        raise


def _receive(desk: Helpdesk) -> Response:
    e = ext()
    e.check_limit("webhook", "address:" + client_address())
    raw = _raw_body()
    delivery = desk.verify(raw, lambda name: request.headers.get(name, ""))
    e.check_limit("webhook", desk.source)  # counted once signed: forgeries cannot use it up
    body = parse_json_object(raw)
    deliveries = Deliveries(e.vault, e.accounts, e.config, e.metrics.webhook)
    return jsonify(deliveries.receive(desk, delivery, body))


@bp.post("/api/v1/webhooks/helpscout")
def helpscout() -> Response:
    return _counted(HELPSCOUT, lambda: _receive(HelpScout(ext().config.helpscout_secret)))


@bp.post("/api/v1/webhooks/standard")
def standard() -> Response:
    def handle() -> Response:
        config = ext().config
        return _receive(StandardWebhooks(config.webhook_secret, tolerance=config.webhook_tolerance,
                                         clock=config.clock))
    return _counted(STANDARD, handle)
