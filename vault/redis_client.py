"""Build the Redis client that `VAULT_REDIS_URL` names: single, TLS, unix, Sentinel or Cluster.

Timeouts are short and retries few on purpose: when Redis is gone, a request must get a 503 in
well under two seconds, never hang. That holds in every mode: redis-py's own default is three
retries with exponential backoff (seconds), so the client here is given `_retry()` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from vault.config import Config
from vault.errors import ConfigError

SENTINEL = "redis+sentinel://"
CLUSTER = "redis+cluster://"


def _retry() -> Retry:
    # One retry, for connection errors only: it absorbs a pooled connection that died with a
    # restarted server (or a primary that a failover replaced), but never doubles a socket
    # timeout.
    return Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


def _hosts(netloc: str, default_port: int) -> tuple[str, str, list[tuple[str, int]]]:
    userinfo, _, hostlist = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    nodes = []
    for part in hostlist.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host:
            host, port = port, str(default_port)
        nodes.append((host.strip("[]"), int(port)))
    return unquote(user), unquote(password), nodes


@dataclass(frozen=True)
class _Sentinel:
    nodes: list[tuple[str, int]]
    service: str
    db: int
    user: str
    password: str
    sentinel_password: str | None


def _sentinel_url(url: str) -> _Sentinel:
    """`redis+sentinel://[user:password@]host:port[,host:port]/service[/db][?sentinel_password=]`
    (the user and password are the data nodes'; the sentinels' own password is separate)."""
    parts = urlsplit(url)
    user, password, nodes = _hosts(parts.netloc, 26379)
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigError("VAULT_REDIS_URL: redis+sentinel:// needs /<service name>")
    return _Sentinel(nodes=nodes, service=path[0], db=int(path[1]) if len(path) > 1 else 0,
                     user=user, password=password,
                     sentinel_password=parse_qs(parts.query).get("sentinel_password",
                                                                 [None])[0])


def _timeouts(config: Config) -> dict[str, Any]:
    socket_timeout = config.redis_socket_timeout
    if config.redis_min_replicas:
        # A WAIT may block for its whole timeout: the socket must outlast it, or a slow replica
        # would look like a dead primary and cost the connection.
        socket_timeout = max(socket_timeout, config.redis_wait_timeout_ms / 1000 + 0.5)
    return {"socket_timeout": socket_timeout,
            "socket_connect_timeout": config.redis_connect_timeout}


def connect(config: Config) -> tuple[Any, bool]:
    """(client, is_cluster) for the configured URL. Raises ConfigError on a malformed URL."""
    url = config.redis_url
    try:
        if url.startswith(SENTINEL):
            s = _sentinel_url(url)
            sentinel = redis.Sentinel(  # type: ignore[no-untyped-call]
                s.nodes, sentinel_kwargs={"password": s.sentinel_password, **_timeouts(config)},
                **_timeouts(config))
            # Every new connection asks the sentinels where the primary is now: after a
            # failover, the pool's dead connections are replaced by ones to the new primary.
            client = sentinel.master_for(  # type: ignore[no-untyped-call]
                s.service, db=s.db, username=s.user or None, password=s.password or None,
                retry=_retry())
            return client, False
        if url.startswith(CLUSTER):
            parts = urlsplit(url)
            user, password, nodes = _hosts(parts.netloc, 6379)
            from redis.cluster import ClusterNode, RedisCluster
            cluster = RedisCluster(startup_nodes=[ClusterNode(h, p)  # type: ignore[no-untyped-call]
                                                  for h, p in nodes],
                                   username=user or None, password=password or None,
                                   retry=_retry(), **_timeouts(config))
            return cluster, True
        return redis.Redis.from_url(url, retry=_retry(), health_check_interval=15,
                                    **_timeouts(config)), False
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"VAULT_REDIS_URL is malformed ({type(exc).__name__})") from None
