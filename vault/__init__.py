"""vault: a one-time credential exchange bound to helpdesk tickets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then `VAULT_*` environment, then `config`.

    Raises `vault.errors.ConfigError` when the configuration cannot run (production without a
    Redis URL, secret key or key ring, or any malformed setting).
    """
    from vault import api, extension, i18n, logs, pages, web
    from vault import config as config_mod

    settings = config_mod.load(config)
    logs.setup(settings.log_level)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    # No routing redirects: a 308 would bypass the error handlers and echo the client's Host.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    extension.build(app, settings)
    web.install(app, error_page=pages.error_page, static_is_current=pages.static_is_current)
    i18n.install(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.ops)
    pages.register(app)
    return app
