"""Build the Redis client that `VAULT_REDIS_URL` names: single, TLS, unix, Sentinel or Cluster.

Timeouts are short and retries few on purpose: when Redis is gone, a request must get a 503 in
well under two seconds, never hang.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from vault.config import Config
from vault.errors import ConfigError


def _retry() -> Retry:
    # One retry, for connection errors only: it absorbs a pooled connection that died with a
    # restarted server, but never doubles a socket timeout.
    return Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


def _hosts(netloc: str) -> tuple[str, str, list[tuple[str, int]]]:
    userinfo, _, hostlist = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    nodes = []
    for part in hostlist.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host:
            host, port = port, "26379"
        nodes.append((host.strip("[]"), int(port)))
    return unquote(user), unquote(password), nodes


def connect(config: Config) -> tuple[Any, bool]:
    """(client, is_cluster) for the configured URL. Raises ConfigError on a malformed URL."""
    url = config.redis_url
    common: dict[str, Any] = {
        "socket_timeout": config.redis_socket_timeout,
        "socket_connect_timeout": config.redis_connect_timeout,
        "health_check_interval": 15,
    }
    try:
        if url.startswith("redis+sentinel://"):
            parts = urlsplit(url)
            user, password, nodes = _hosts(parts.netloc)
            path = [p for p in parts.path.split("/") if p]
            if not path:
                raise ConfigError("VAULT_REDIS_URL: redis+sentinel:// needs /<service name>")
            service, db = path[0], int(path[1]) if len(path) > 1 else 0
            query = parse_qs(parts.query)
            sentinel_password = query.get("sentinel_password", [None])[0]
            sentinel = redis.Sentinel(  # type: ignore[no-untyped-call]
                nodes, sentinel_kwargs={"password": sentinel_password,
                                        "socket_timeout": config.redis_socket_timeout,
                                        "socket_connect_timeout": config.redis_connect_timeout},
                socket_timeout=config.redis_socket_timeout,
                socket_connect_timeout=config.redis_connect_timeout)
            client = sentinel.master_for(  # type: ignore[no-untyped-call]
                service, db=db, username=user or None,
                                         password=password or None, retry=_retry())
            return client, False
        if url.startswith("redis+cluster://"):
            parts = urlsplit(url)
            user, password, nodes = _hosts(parts.netloc)
            from redis.cluster import ClusterNode, RedisCluster
            cluster = RedisCluster(startup_nodes=[ClusterNode(h, p)  # type: ignore[no-untyped-call]
                                                  for h, p in nodes],
                                   username=user or None, password=password or None,
                                   socket_timeout=config.redis_socket_timeout,
                                   socket_connect_timeout=config.redis_connect_timeout)
            return cluster, True
        return redis.Redis.from_url(url, retry=_retry(), **common), False
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"VAULT_REDIS_URL is malformed ({type(exc).__name__})") from None


def limiter_storage(config: Config) -> tuple[str, dict[str, Any]]:
    """flask-limiter's storage URI and options for the same Redis (memory in embedded mode)."""
    if config.embedded:
        return "memory://", {}
    options: dict[str, Any] = {"socket_timeout": config.redis_socket_timeout,
                               "socket_connect_timeout": config.redis_connect_timeout}
    url = config.redis_url
    if url.startswith("unix://"):
        url = "redis+unix://" + url[len("unix://"):]
    if url.startswith(("redis://", "rediss://", "redis+unix://")):
        # redis-py's default is three retries with backoff: seconds of hanging when Redis is
        # gone. The limiter fails as fast as the store does.
        options["retry"] = _retry()
    return url, options
