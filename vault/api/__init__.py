"""The JSON API (`/api/v1/...`), the helpdesk webhooks and the operator endpoints."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__)
ops = Blueprint("ops", __name__)

from vault.api import (  # noqa: E402  (views register on bp)
    openapi,
    passkeys,
    routes,
    sidebar,
    webhooks,
)

__all__ = ["bp", "openapi", "ops", "passkeys", "routes", "sidebar", "webhooks"]
