"""Process settings from the environment: each names its variable, coercer and default.

Every FACADE_* variable is read here, once, by gunicorn's master before any worker boots
(`facade/gunicorn_conf.py`): a bad value stops start-up with one line naming the variable and
the form it expects. Coercers never repeat a URL's value (it may hold a password).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PACKAGE_DIR = Path(__file__).resolve().parent


class SettingsError(ValueError):
    """An environment variable holds a value Facade cannot use; the message names it."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean (true/false), got {raw!r}")


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {raw!r}")
    return level


def _optional(raw: str) -> str | None:
    return raw or None


def _whole(minimum: int) -> Callable[[str], int]:
    def coerce(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number >= {minimum}, got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"expected a whole number >= {minimum}, got {raw!r}")
        return value

    return coerce


def _seconds(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number of seconds >= 0, e.g. 0.25, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"expected a number of seconds >= 0, e.g. 0.25, got {raw!r}")
    return value


def _bind(raw: str) -> str:
    value = raw.strip()
    expected = "expected HOST:PORT (e.g. 0.0.0.0:8000) or unix:/PATH"
    if value.startswith("unix:") and len(value) > 5:
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{expected}, got {raw!r}")
    return value


POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")
DATABASE_FORM = "sqlite:////ABSOLUTE/PATH.db or postgresql://USER:PASSWORD@HOST:5432/DB"


def _database_url(raw: str) -> str:
    """Check the form only (no driver import in gunicorn's master); never echo the value."""
    value = raw.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(f"cannot be parsed; expected {DATABASE_FORM}") from None
    if parts.scheme == "sqlite":
        if not value.startswith("sqlite:///") or len(value) <= len("sqlite:///"):
            raise ValueError(f"needs a file path; expected {DATABASE_FORM}")
        return value
    if parts.scheme in POSTGRES_SCHEMES:
        if not parts.path.strip("/") or (not parts.hostname and "host=" not in parts.query):
            raise ValueError(f"needs a host and a database name; expected {DATABASE_FORM}")
        return value
    raise ValueError(f"unsupported or missing scheme; expected {DATABASE_FORM}")


def _redis_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    form = "redis://HOST:6379/0, rediss://HOST:6380/0 or unix:///PATH"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(f"cannot be parsed; expected {form}") from None
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ValueError(f"unsupported or missing scheme or host; expected {form}")
    return value


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """The SQLite file used when FACADE_DATABASE_URL is unset, the same from any directory:
    `var/facade.db` in the source checkout Facade runs from (`make run`, the tests), or
    `$XDG_DATA_HOME/facade/facade.db` (default `~/.local/share/facade/`) when installed."""
    environ = os.environ if environ is None else environ
    checkout = PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "wsgi.py").is_file():
        return checkout / "var" / "facade.db"
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).resolve() / "facade" / "facade.db"


def default_database_url(environ: Mapping[str, str] | None = None) -> str:
    return f"sqlite:///{default_store_path(environ)}"


def describe_store(url: str) -> str:
    """Where the store is, for people: a SQLite file path, or a URL without its password."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :] or url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


TRACING_MODES = ("off", "otlp", "console")
# Either standard OpenTelemetry endpoint variable turns tracing on (as otlp) when
# FACADE_TRACING is not set.
OTEL_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def _tracing(raw: str) -> str:
    value = raw.strip().lower() or "off"
    if value not in TRACING_MODES:
        raise ValueError(f"expected one of {', '.join(TRACING_MODES)}, got {raw!r}")
    return value


def _setting(env: str, coerce: Callable[[str], Any], default: Any) -> Any:
    return field(default=default, metadata={"env": env, "coerce": coerce})


@dataclass(frozen=True)
class Settings:
    config_path: str | None = _setting("FACADE_CONFIG", _optional, None)
    # Unset: a SQLite file at `default_store_path()`, whatever the current directory.
    database_url: str = _setting("FACADE_DATABASE_URL", _database_url, default_database_url())
    redis_url: str | None = _setting("FACADE_REDIS_URL", _redis_url, None)
    admin_key: str | None = _setting("FACADE_ADMIN_KEY", _optional, None)
    # Set: GET /metrics needs `Authorization: Bearer <it>`.
    metrics_token: str | None = _setting("FACADE_METRICS_TOKEN", _optional, None)
    log_level: str = _setting("FACADE_LOG_LEVEL", _log_level, "INFO")
    log_prompts: bool = _setting("FACADE_LOG_PROMPTS", _bool, False)
    # -- gunicorn (read by facade/gunicorn_conf.py in the master) ---------------------------
    bind: str = _setting("FACADE_BIND", _bind, "0.0.0.0:8000")
    workers: int = _setting("FACADE_WORKERS", _whole(1), 1)
    # Sizes each upstream pool: one connection per concurrent request of a gevent worker.
    worker_connections: int = _setting("FACADE_WORKER_CONNECTIONS", _whole(1), 1000)
    keepalive_s: int = _setting("FACADE_KEEPALIVE_S", _whole(0), 75)
    worker_timeout_s: int = _setting("FACADE_WORKER_TIMEOUT_S", _whole(1), 30)
    graceful_timeout_s: int = _setting("FACADE_GRACEFUL_TIMEOUT_S", _whole(0), 30)
    forwarded_allow_ips: str = _setting("FACADE_FORWARDED_ALLOW_IPS", str, "127.0.0.1")
    # -- the request path --------------------------------------------------------------------
    # SSE comment sent while waiting for a slow first token, so proxies keep the stream open.
    sse_keepalive_s: float = _setting("FACADE_SSE_KEEPALIVE_S", _seconds, 10.0)
    usage_retention_days: int = _setting("FACADE_USAGE_RETENTION_DAYS", _whole(0), 90)
    # How often each worker writes its queued usage records and budget settlements.
    usage_flush_s: float = _setting("FACADE_USAGE_FLUSH_S", _seconds, 0.25)
    # Where each worker journals its usage before answering (replayed after a crash). Default:
    # a `journal` directory beside the SQLite file, or `facade-journal` in the temp directory.
    journal_dir: str | None = _setting("FACADE_JOURNAL_DIR", _optional, None)
    # A worker's budget holds outlive it by at most this (plus a third of it): other workers
    # give them back once its lease, renewed every third of it, has run out.
    lease_s: float = _setting("FACADE_LEASE_S", _seconds, 30.0)
    # Namespace of Facade's keys in a Redis shared with other applications.
    redis_prefix: str = _setting("FACADE_REDIS_PREFIX", str, "facade:")
    # Connections each worker keeps to PostgreSQL (per pool; the request path has its own).
    db_pool_size: int = _setting("FACADE_DB_POOL_SIZE", _whole(1), 5)
    # OpenTelemetry traces: off | otlp | console (see facade/telemetry/tracing.py).
    tracing: str = _setting("FACADE_TRACING", _tracing, "off")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting once; a bad value raises SettingsError naming its variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            raw = environ.get(f.metadata["env"])
            if raw is None or (raw.strip() == "" and f.name == "database_url"):
                continue
            try:
                values[f.name] = f.metadata["coerce"](raw)
            except ValueError as err:
                raise SettingsError(f"{f.metadata['env']}: {err}") from None
        values.setdefault("database_url", default_database_url(environ))
        if "tracing" not in values and any(environ.get(v) for v in OTEL_ENDPOINT_VARS):
            values["tracing"] = "otlp"
        return cls(**values)
