"""deploy/gunicorn.conf.py and `vault serve` run gunicorn the same way; the JSON access log keeps
secrets out whatever it is given; the metrics folder's life; the Grafana dashboard asks only for
metrics vault exports. (The same under real gunicorn workers: tests/test_metrics.py.)"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import runpy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config
from harness import ROOT, RedisServer, base_config
from prometheus_client import values as prom_values
from prometheus_client.parser import text_string_to_metric_families

from vault import create_app
from vault.metrics import SECRET_EVENTS, Metrics
from vault.serve import (
    DEFAULT_BIND,
    JsonLogger,
    child_exit,
    default_concurrency,
    gunicorn_options,
    on_exit,
    on_starting,
    prepare_metrics_dir,
    release_metrics_dir,
    serve,
)

CONF = ROOT / "deploy" / "gunicorn.conf.py"
DASHBOARD = ROOT / "deploy" / "grafana" / "vault.json"
MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No VAULT_* and no metrics folder in the environment; whatever a test or the code under
    test sets there is undone afterwards, and the `vault` log handlers are put back."""
    for name in list(os.environ):
        if name.startswith("VAULT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(MULTIPROC, "set so that monkeypatch restores it")
    monkeypatch.delenv(MULTIPROC)
    handlers = list(logging.getLogger("vault").handlers)
    yield monkeypatch
    release_metrics_dir()
    logging.getLogger("vault").handlers[:] = handlers


def load_conf() -> dict[str, Any]:
    """The settings gunicorn takes from the file: its names that are gunicorn settings."""
    names = runpy.run_path(str(CONF))
    known = Config().settings
    return {name: value for name, value in names.items() if name in known}


# -- one source of truth --------------------------------------------------------------------------

def test_the_config_file_is_exactly_vault_serve_s_options(clean_env: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    clean_env.setenv(MULTIPROC, str(tmp_path / "metrics"))
    settings = load_conf()
    workers, threads = default_concurrency()
    assert settings == gunicorn_options(bind=DEFAULT_BIND, workers=workers, threads=threads)
    assert settings["bind"] == ["127.0.0.1:8000"]
    # gunicorn accepts every one of them (hooks of the right arity, the logger class, ...).
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    assert (cfg.workers, cfg.threads, cfg.worker_class_str) == (workers, threads, "gthread")
    assert cfg.preload_app and cfg.timeout == 30 and cfg.graceful_timeout == 30
    assert cfg.accesslog == "-" and cfg.errorlog == "-" and cfg.logger_class is JsonLogger
    assert (cfg.on_starting, cfg.child_exit, cfg.on_exit) == (on_starting, child_exit, on_exit)
    assert (tmp_path / "metrics").is_dir()  # made when missing


def test_the_config_file_binds_from_vault_bind(clean_env: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    clean_env.setenv(MULTIPROC, str(tmp_path))
    clean_env.setenv("VAULT_BIND", "0.0.0.0:9000")
    assert load_conf()["bind"] == ["0.0.0.0:9000"]


def test_the_config_file_makes_a_private_metrics_folder_removed_at_exit(
        clean_env: pytest.MonkeyPatch) -> None:
    load_conf()
    made = os.environ[MULTIPROC]
    assert Path(made).is_dir() and Path(made).name.startswith("vault-metrics-")
    assert Path(made).stat().st_mode & 0o077 == 0  # the master's user only
    on_exit(None)
    assert not Path(made).exists() and MULTIPROC not in os.environ


def test_vault_serve_runs_the_same_options_with_shared_metrics(
        clean_env: pytest.MonkeyPatch, redis_server: RedisServer) -> None:
    config = base_config(redis_server.url)
    for name in ("env", "redis_url", "secret_key", "keys", "base_url"):
        clean_env.setenv(f"VAULT_{name.upper()}", str(config[name]))
    seen: dict[str, Any] = {}

    def fake_run(app: Any, options: dict[str, Any]) -> None:
        folder = Path(os.environ[MULTIPROC])
        metrics = app.extensions["vault"].metrics
        metrics.secret_event("created", 2)  # file-backed: lands in the shared folder
        seen.update(options=options, folder=folder, files=sorted(p.name for p in folder.iterdir()),
                    rendered=metrics.render()[0].decode())

    assert serve(bind=None, workers=4, threads=2, run=fake_run) == 0
    assert seen["options"] == gunicorn_options(bind=DEFAULT_BIND, workers=4, threads=2)
    assert seen["files"] == [f"counter_{os.getpid()}.db"]
    assert 'vault_secrets_total{event="created"} 2.0' in seen["rendered"]
    # Removed once gunicorn has stopped, and the environment is as it was.
    assert not seen["folder"].exists() and MULTIPROC not in os.environ


def test_vault_serve_binds_from_vault_bind(clean_env: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("VAULT_BIND", "nowhere")
    assert serve(bind=None, workers=None, threads=None, run=lambda app, options: None) == 2
    assert capsys.readouterr().err.startswith("Error: VAULT_BIND:")


def test_metrics_follow_the_environment_when_they_are_built(
        clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv(MULTIPROC, str(tmp_path))
    shared = Metrics()
    assert prom_values.ValueClass._multiprocess  # type: ignore[attr-defined]
    shared.secret_event("purged", 3)
    assert [p.name for p in tmp_path.iterdir()] == [f"counter_{os.getpid()}.db"]
    clean_env.delenv(MULTIPROC)
    alone = Metrics()
    alone.secret_event("purged", 1)
    assert b'vault_secrets_total{event="purged"} 1.0' in alone.render()[0]
    assert list(tmp_path.iterdir()) == [tmp_path / f"counter_{os.getpid()}.db"]


# -- the metrics folder's hooks ---------------------------------------------------------------------

def test_the_master_starts_counting_from_zero(clean_env: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    clean_env.setenv(MULTIPROC, str(tmp_path))
    for name in ("counter_111.db", "histogram_111.db", "gauge_livesum_111.db"):
        (tmp_path / name).write_bytes(b"old run")
    (tmp_path / "README").write_text("not ours")
    on_starting(None)
    assert [p.name for p in tmp_path.iterdir()] == ["README"]


def test_a_dead_worker_keeps_its_counts_and_loses_its_live_gauges(
        clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv(MULTIPROC, str(tmp_path))
    for name in ("counter_222.db", "histogram_222.db", "gauge_livesum_222.db",
                 "gauge_all_222.db", "counter_333.db"):
        (tmp_path / name).write_bytes(b"")
    child_exit(None, SimpleNamespace(pid=222))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_222.db", "counter_333.db", "gauge_all_222.db", "histogram_222.db"]


def test_an_operator_s_metrics_folder_is_made_and_kept(clean_env: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    clean_env.setenv(MULTIPROC, str(folder))
    assert prepare_metrics_dir() == str(folder) and folder.is_dir()
    release_metrics_dir()
    assert folder.is_dir() and os.environ[MULTIPROC] == str(folder)


# -- the logs ------------------------------------------------------------------------------------------

@pytest.fixture
def gunicorn_logger(tmp_path: Path) -> Iterator[tuple[JsonLogger, Path, Path]]:
    """JsonLogger writing to files, with gunicorn's default access format configured: the
    logger must ignore it."""
    cfg = Config()
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    cfg.set("accesslog", str(access))
    cfg.set("errorlog", str(errors))
    cfg.set("access_log_format", '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
                                 "%(q)s %({authorization}i)s %({cookie}i)s")
    logger = JsonLogger(cfg)
    yield logger, access, errors
    for log in (logger.error_log, logger.access_log):
        for handler in list(log.handlers):
            if getattr(handler, "_gunicorn", False):
                handler.close()
                log.removeHandler(handler)


def test_an_access_line_is_json_of_allowed_fields_only(
        gunicorn_logger: tuple[JsonLogger, Path, Path]) -> None:
    logger, access, _ = gunicorn_logger
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/secrets/abc/reveal",
        "QUERY_STRING": "token=QuerySecret", "RAW_URI": "/api/v1/secrets/abc/reveal?token=QuerySecret",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": "https://helpdesk.example/?RefererSecret",
        "HTTP_AUTHORIZATION": "Bearer vt_AuthSecret", "HTTP_COOKIE": "__Host-vault_session=CookieSecret",
        "HTTP_USER_AGENT": "agent", "HTTP_X_MANAGE_TOKEN": "vm_ManageSecret",
    }
    req = SimpleNamespace(headers=[("AUTHORIZATION", "Bearer vt_AuthSecret"),
                                   ("COOKIE", "__Host-vault_session=CookieSecret"),
                                   ("REFERER", "https://helpdesk.example/?RefererSecret"),
                                   ("X-MANAGE-TOKEN", "vm_ManageSecret")])
    resp = SimpleNamespace(status="200 OK", sent=1234,
                           headers=[("Content-Type", "application/json"),
                                    ("Set-Cookie", "__Host-vault_session=CookieSecret"),
                                    ("X-Request-Id", "0123456789abcdef")])
    logger.access(resp, req, environ, dt.timedelta(microseconds=2500))
    line = access.read_text()
    for secret in ("QuerySecret", "RefererSecret", "AuthSecret", "CookieSecret", "ManageSecret",
                   "203.0.113.9", "?"):
        assert secret not in line
    entry = json.loads(line)
    assert entry.pop("ts")
    assert entry == {"level": "INFO", "logger": "gunicorn.access", "message": "request",
                     "method": "POST", "path": "/api/v1/secrets/abc/reveal", "status": 200,
                     "bytes": 1234, "duration_ms": 2.5, "request_id": "0123456789abcdef"}


def test_gunicorn_s_own_messages_are_json_without_request_detail(
        gunicorn_logger: tuple[JsonLogger, Path, Path]) -> None:
    logger, _, errors = gunicorn_logger
    logger.info("Booting worker with pid: %s", 42)
    logger.warning("Invalid request from ip=203.0.113.9: Invalid HTTP Header: "
                   "'Authorization: Bearer vt_AuthSecret'")
    logger.warning("Invalid request from ip=203.0.113.9: Invalid HTTP request line: "
                   "'GET /s/x?token=QuerySecret HTTP/1.1'")
    detail = "boom QuerySecret"
    try:
        raise RuntimeError(detail)
    except RuntimeError:
        logger.exception("Error handling request %s %s", "GET", "/r/abc?token=QuerySecret")
    text = errors.read_text()
    assert "QuerySecret" not in text and "AuthSecret" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["message"] for e in entries] == [
        "Booting worker with pid: 42",
        "Invalid request from ip=203.0.113.9: Invalid HTTP Header",
        "Invalid request from ip=203.0.113.9: Invalid HTTP request line",
        "Error handling request GET /r/abc?[query not logged]",
    ]
    assert entries[-1]["exception"] == "RuntimeError"


# -- the dashboard ---------------------------------------------------------------------------------------

_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_WORD = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset"}


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) a PromQL expression uses; functions are not names."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = {name.strip() for group in _GROUPING.findall(expr) for name in group.split(",")
              if name.strip()}
    labels |= {m.split("=")[0].split("!")[0].strip()
               for group in _MATCHERS.findall(expr) for m in group.split(",") if m.strip()}
    bare = _MATCHERS.sub("", _GROUPING.sub("", re.sub(r"\[[^\]]*\]", "", expr)))
    metrics = {word for word, call in _WORD.findall(bare) if not call} - _KEYWORDS
    return metrics, labels


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        call = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["definition"])
        assert call, var["definition"]
        queries.append(call.group(1))
    return queries


def test_promql_names_sees_metrics_not_functions() -> None:
    assert promql_names('histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{job=~"$job"}'
                        '[$__rate_interval]))) / clamp_min(sum(rate(b_total[5m])), 1e-9)') == (
        {"a_bucket", "b_total"}, {"route", "le", "job"})


def test_the_dashboard_asks_only_for_what_vault_exports(
        clean_env: pytest.MonkeyPatch, tmp_path: Path, redis_server: RedisServer) -> None:
    # Exported names as a multi-worker deployment scrapes them (multiprocess mode has no
    # `_created` series).
    clean_env.setenv(MULTIPROC, str(tmp_path))
    app = create_app(base_config(redis_server.url))
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        text = client.get("/metrics").get_data(as_text=True)
    finally:
        app.extensions["vault"].close()
    exported: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    assert {"vault_http_requests_total", "vault_http_request_duration_seconds_bucket",
            "vault_secrets_total", "vault_webhooks_total", "vault_redis_errors_total"} <= \
        set(exported)

    dashboard = json.loads(DASHBOARD.read_text())
    used: set[str] = set()
    for expr in dashboard_queries(dashboard):
        metrics, labels = promql_names(expr)
        assert metrics, expr
        assert metrics <= set(exported), (expr, metrics - set(exported))
        # vault's labels, and the ones Prometheus adds to every target.
        known = set().union(*(exported[m] for m in metrics)) | {"job", "instance"}
        assert labels <= known, (expr, labels - known)
        used |= metrics
    assert used == {"vault_http_requests_total", "vault_http_request_duration_seconds_bucket",
                    "vault_secrets_total", "vault_webhooks_total", "vault_redis_errors_total"}
    events = {e for expr in dashboard_queries(dashboard)
              for e in re.findall(r'event="(\w+)"', expr)}
    assert events == set(SECRET_EVENTS)


def test_the_dashboard_imports_into_grafana_with_a_chosen_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39 and dashboard["id"] is None and dashboard["uid"]
    assert dashboard["__inputs"] == [{
        "name": "DS_PROMETHEUS", "label": "Prometheus",
        "description": "The Prometheus that scrapes vault's /metrics", "type": "datasource",
        "pluginId": "prometheus", "pluginName": "Prometheus"}]
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == source and panel["targets"], panel["title"]
        assert all(t["datasource"] == source for t in panel["targets"])
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for words in ("route and status", "p50", "p99", "secret events", "webhook", "redis", "5xx"):
        assert words in titles
