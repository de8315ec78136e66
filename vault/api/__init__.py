"""The JSON API (`/api/v1/...`), the helpdesk webhooks and the operator endpoints."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__)
ops = Blueprint("ops", __name__)

from vault.api import openapi, routes, sidebar, webhooks  # noqa: E402  (views register on bp)

__all__ = ["bp", "openapi", "ops", "routes", "sidebar", "webhooks"]
