"""Gunicorn settings for Facade, driven by the environment.

The gevent worker monkey-patches before it loads the app, so this file must not import the
app or `requests` (they would bind the unpatched socket and ssl modules). The config file is
validated in the master (`on_starting`) so a bad file stops start-up once, instead of making
the master restart crashing workers forever.
"""

import os
import shutil
import signal
import sys
import tempfile

bind = os.environ.get("FACADE_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("FACADE_WORKERS", "1") or 1)
worker_class = "gevent"
# Concurrent connections per worker; the upstream connection pools are sized from this too.
worker_connections = int(os.environ.get("FACADE_WORKER_CONNECTIONS", "1000"))
# Above the idle timeouts of common load balancers (AWS ALB 60 s, GCP 600 s is rare), so the
# balancer, not us, closes idle keep-alive connections.
keepalive = int(os.environ.get("FACADE_KEEPALIVE_S", "75"))
# For gevent workers `timeout` only watches the worker's heartbeat, not request time.
timeout = int(os.environ.get("FACADE_WORKER_TIMEOUT_S", "30"))
# Time in-flight requests and streams get after SIGTERM; must fit inside the pod's
# terminationGracePeriodSeconds with the preStop delay (see deploy/kubernetes).
graceful_timeout = int(os.environ.get("FACADE_GRACEFUL_TIMEOUT_S", "30"))
# Bodies are limited by the app (limits.max_body_bytes); these guard the header parser.
limit_request_line = 8190
limit_request_fields = 100
accesslog = None  # the app writes its own JSON access line
errorlog = "-"
loglevel = os.environ.get("FACADE_LOG_LEVEL", "info").lower()
proc_name = "facade"
# gunicorn's runtime control socket writes under $HOME; the image runs with a read-only root
# filesystem and nothing here uses it.
control_socket_disable = True
# Let a client's or proxy's X-Forwarded-* through only from where the operator says.
forwarded_allow_ips = os.environ.get("FACADE_FORWARDED_ALLOW_IPS", "127.0.0.1")


# Prometheus multiprocess mode: each worker writes its samples under this directory and
# /metrics sums them. Set here, in the master, so every worker inherits it.
_own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"facade-metrics-{os.getpid()}")
)


def on_starting(server):
    """Validate the config once in the master; exit non-zero naming the bad key."""
    from facade.config import ConfigError, load_config
    from facade.settings import Settings

    try:
        Settings.from_env()
    except ValueError as err:  # names the variable
        sys.stderr.write(f"facade: invalid setting: {err}\n")
        sys.stderr.flush()
        raise SystemExit(3) from None

    # Samples left by an earlier run (a restarted container keeps its emptyDir) would be
    # summed into this one's.
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)

    try:
        load_config(announce=True)
    except ConfigError as err:
        sys.stderr.write(f"facade: invalid configuration: {err}\n")
        sys.stderr.flush()
        raise SystemExit(3) from None


def post_worker_init(worker):
    """Chain the app's drain onto the worker's SIGTERM: readiness fails at once, and
    streams still running near the graceful timeout end with an error event."""
    drain = getattr(worker.wsgi, "facade_drain", None)
    if drain is None:
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        drain(worker.cfg.graceful_timeout)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_exit(server, worker):
    """Let the app flush what it buffers (usage records) before the worker goes."""
    close = getattr(getattr(worker, "wsgi", None), "facade_close", None)
    if close is not None:
        close()


def child_exit(server, worker):
    """Drop a dead worker's live gauges (requests in flight) from the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)
