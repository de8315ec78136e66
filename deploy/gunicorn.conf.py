"""gunicorn settings for vault in production.

    gunicorn -c deploy/gunicorn.conf.py 'vault:create_app()'

Every value comes from vault.serve, which `vault serve` runs with too, so the two ways of
starting vault behave the same: workers and threads from the core count
(`default_concurrency`: a worker per core, at least 2 and at most 8, of 8 threads each, each
worker on a core of its own, as measured by the benchmark: README "Benchmark"), the app
preloaded in the master (a bad configuration fails before any worker starts), 30 s timeouts
and graceful shutdown, JSON logs (an access log on stdout of method, path without the query
string, status, bytes, duration and request id; never the query string, Referer,
Authorization or cookies; gunicorn's own messages on stderr) and Prometheus metrics that add up
across workers.

Environment:
  VAULT_BIND                 where to listen (default 127.0.0.1:8000: a reverse proxy on the
                             same host terminates TLS; containers set 0.0.0.0:8000)
  PROMETHEUS_MULTIPROC_DIR   the workers' shared metrics folder: emptied when the master
                             starts; without it a private folder in $TMPDIR is made and
                             removed at exit
  VAULT_PIN_WORKERS          1 (default): each worker runs on a core of its own, chosen in
                             the master (vault.serve.pre_fork), unless a CPU quota is below
                             the allowed cores or the system refuses it (logged once);
                             0: the kernel places them
  VAULT_*                    the app's own settings (see README.md)

Command-line options given to gunicorn override these (`--workers 4`, `--bind ...`).
"""

import os

from vault.serve import (
    BIND_ENV,
    DEFAULT_BIND,
    default_concurrency,
    gunicorn_options,
    prepare_metrics_dir,
)

# Before the (preloaded) app is built: its metrics choose shared-file values then. Always, not
# only for several workers: the command line or SIGTTIN may add workers after this file is read.
prepare_metrics_dir()

_workers, _threads = default_concurrency()

# gunicorn reads its settings from this module's names: bind, workers, threads, timeout,
# graceful_timeout, keepalive, accesslog, errorlog, logger_class, the hooks (on_starting,
# child_exit, on_exit, pre_fork and post_fork), ... exactly what `vault serve` passes.
globals().update(gunicorn_options(bind=os.environ.get(BIND_ENV) or DEFAULT_BIND,
                                  workers=_workers, threads=_threads))
