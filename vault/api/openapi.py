"""The OpenAPI 3.1 document of the JSON API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from vault.api import ops

DOCUMENT: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": "vault", "version": "1"},
                            "paths": {}}


@ops.get("/api/v1/openapi.json")
def openapi_document() -> Response:
    return jsonify(DOCUMENT)
