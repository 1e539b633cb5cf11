"""Gunicorn settings and hooks for Facade, all read from the validated environment.

`gunicorn.conf.py` (make run, the image) and `facade serve` both load this module, so they
serve with the same settings. Importing it validates every FACADE_* variable in the master
before any worker boots: a bad value prints one line naming it and exits 3.

The gevent worker monkey-patches before it loads the app, so nothing here imports the app or
`requests` at module level (they would bind the unpatched socket and ssl modules); the hooks
import what they need inside.
"""

from __future__ import annotations

import mmap
import os
import shutil
import signal
import struct
import sys
import tempfile
import time

from facade.settings import Settings, SettingsError, describe_store

try:
    settings = Settings.from_env()
except SettingsError as err:
    sys.stderr.write(f"facade: invalid environment: {err}\n")
    sys.stderr.flush()
    raise SystemExit(3) from None

bind = settings.bind
workers = settings.workers
# gunicorn's gevent worker, yielding between the requests of one keep-alive connection so a
# client that pipelines or streams bodies back to back cannot starve the others (see it).
worker_class = "facade.worker.FairGeventWorker"
# Concurrent connections per worker; the upstream connection pools are sized from this too.
worker_connections = settings.worker_connections
# Above the idle timeouts of common load balancers (AWS ALB 60 s, GCP 600 s is rare), so the
# balancer, not us, closes idle keep-alive connections.
keepalive = settings.keepalive_s
# For gevent workers `timeout` only watches the worker's heartbeat, not request time.
timeout = settings.worker_timeout_s
# Time in-flight requests and streams get after SIGTERM (and after a SIGHUP reload replaces
# a worker); must fit inside the pod's terminationGracePeriodSeconds with the preStop delay.
graceful_timeout = settings.graceful_timeout_s
# Bodies are limited by the app (limits.max_body_bytes); these guard the header parser.
limit_request_line = 8190
limit_request_fields = 100
accesslog = None  # the app writes its own JSON access line
errorlog = "-"
loglevel = settings.log_level.lower()
proc_name = "facade"
# gunicorn's runtime control socket writes under $HOME; the image runs with a read-only root
# filesystem and nothing here uses it.
control_socket_disable = True
# Let a client's or proxy's X-Forwarded-* through only from where the operator says.
forwarded_allow_ips = settings.forwarded_allow_ips


# Prometheus multiprocess mode: each worker writes its samples under this directory and
# /metrics sums them. Set here, in the master, so every worker inherits it.
_own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"facade-metrics-{os.getpid()}")
)


# When the master last started a config reload, in memory shared with every worker (an
# anonymous shared mapping made before any fork). A worker told to stop shortly after it is
# being replaced, not shut down: it retires (refuses nothing) instead of draining.
_reload_mark = mmap.mmap(-1, 8)
RELOAD_WINDOW_S = 10.0


def _mark_reload() -> None:
    _reload_mark[:8] = struct.pack("d", time.time())


def _replaced_by_reload() -> bool:
    (marked,) = struct.unpack("d", _reload_mark[:8])
    return time.time() - marked < RELOAD_WINDOW_S


def on_starting(server):
    """Validate the config once in the master; exit 3 naming the bad key."""
    from facade.config import ConfigError, load_config

    # Samples left by an earlier run (a restarted container keeps its emptyDir) would be
    # summed into this one's.
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)

    try:
        config = load_config(settings, announce=True)
    except ConfigError as err:
        sys.stderr.write(f"facade: invalid configuration: {err}\n")
        sys.stderr.flush()
        raise SystemExit(3) from None
    server.log.info("facade: config %s", config.source)
    server.log.info("facade: store %s", describe_store(settings.database_url))

    # Requests in flight per key, and without Redis each key's rpm and tpm window, shared by
    # every worker: made here so they all map it (and a SIGHUP reload keeps the windows).
    from facade import hold_table, inflight, rate_window
    from facade.store.db import sqlite_path

    inflight.create_shared(server.cfg.workers)
    if not settings.redis_url:
        rate_window.create_shared()
        if sqlite_path(settings.database_url) is not None:  # budget holds: hold_table.py
            hold_table.create_shared(server.cfg.workers)


def pre_fork(server, worker):
    """Give the new worker a column of the in-flight table no live worker uses."""
    from facade import inflight

    table = inflight.shared()
    if table is None:
        return
    taken = {getattr(w, "facade_column", None) for w in server.WORKERS.values()}
    free = [c for c in range(table.columns) if c not in taken]
    worker.facade_column = free[0] if free else table.columns - 1


def post_fork(server, worker):
    from facade import inflight

    inflight.use_column(getattr(worker, "facade_column", 0))


def when_ready(server):
    """Take over SIGHUP: reload only a config file that validates (see `reload_config`)."""
    server.handle_hup = lambda: reload_config(server)


def reload_config(server) -> None:
    """SIGHUP: check FACADE_CONFIG in the master first. A valid file: gunicorn's own reload,
    which starts workers on the new config and stops the old ones gracefully (their requests
    and streams in flight finish). An invalid one: logged naming the key, and nothing else
    happens, so the running workers keep serving the config they have."""
    from facade.config import ConfigError, load_config

    server.log.info("facade: SIGHUP: checking the config before reloading")
    try:
        config = load_config(Settings.from_env())
    except (ConfigError, SettingsError) as err:
        server.log.error("facade: config reload refused, the running config stays: %s", err)
        return
    server.log.info("facade: config %s is valid; replacing workers gracefully", config.source)
    _mark_reload()
    server.reload()


def post_worker_init(worker):
    """Chain the app's drain onto the worker's SIGTERM: readiness fails at once, and
    streams still running near the graceful timeout end with an error event. A worker
    replaced by a config reload retires instead (see facade/drain.py)."""
    drain = getattr(worker.wsgi, "facade_drain", None)
    if drain is None:
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        drain(worker.cfg.graceful_timeout, retire=_replaced_by_reload())
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_exit(server, worker):
    """Let the app flush what it buffers (usage records) before the worker goes."""
    close = getattr(getattr(worker, "wsgi", None), "facade_close", None)
    if close is not None:
        close()


def child_exit(server, worker):
    """Drop a dead worker's live gauges (requests in flight) from the sums, and give back the
    parallel-request slots it held (a SIGKILLed worker never releases its own)."""
    from prometheus_client import multiprocess

    from facade import inflight

    multiprocess.mark_process_dead(worker.pid)
    table = inflight.shared()
    column = getattr(worker, "facade_column", None)
    if table is not None and column is not None:
        table.clear_column(column)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)
