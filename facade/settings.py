"""Process settings from the environment: each names its variable, coercer and default."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean, got {raw!r}")


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {raw!r}")
    return level


def _optional(raw: str) -> str | None:
    return raw or None


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
    from dataclasses import field

    return field(default=default, metadata={"env": env, "coerce": coerce})


@dataclass(frozen=True)
class Settings:
    config_path: str | None = _setting("FACADE_CONFIG", _optional, None)
    database_url: str = _setting("FACADE_DATABASE_URL", str, "sqlite:///var/facade.db")
    redis_url: str | None = _setting("FACADE_REDIS_URL", _optional, None)
    admin_key: str | None = _setting("FACADE_ADMIN_KEY", _optional, None)
    log_level: str = _setting("FACADE_LOG_LEVEL", _log_level, "INFO")
    log_prompts: bool = _setting("FACADE_LOG_PROMPTS", _bool, False)
    # Sizes each upstream pool: one connection per concurrent request of a gevent worker.
    worker_connections: int = _setting("FACADE_WORKER_CONNECTIONS", int, 1000)
    # SSE comment sent while waiting for a slow first token, so proxies keep the stream open.
    sse_keepalive_s: float = _setting("FACADE_SSE_KEEPALIVE_S", float, 10.0)
    usage_retention_days: int = _setting("FACADE_USAGE_RETENTION_DAYS", int, 90)
    # How often each worker writes its queued usage records and budget settlements.
    usage_flush_s: float = _setting("FACADE_USAGE_FLUSH_S", float, 0.25)
    # Namespace of Facade's keys in a Redis shared with other applications.
    redis_prefix: str = _setting("FACADE_REDIS_PREFIX", str, "facade:")
    # Connections each worker keeps to PostgreSQL (per pool; the request path has its own).
    db_pool_size: int = _setting("FACADE_DB_POOL_SIZE", int, 5)
    # OpenTelemetry traces: off | otlp | console (see facade/telemetry/tracing.py).
    tracing: str = _setting("FACADE_TRACING", _tracing, "off")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting once; a bad value stops start-up naming its variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            raw = environ.get(f.metadata["env"])
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["coerce"](raw)
            except ValueError as err:
                raise ValueError(f"{f.metadata['env']}: {err}") from None
        if "tracing" not in values and any(environ.get(v) for v in OTEL_ENDPOINT_VARS):
            values["tracing"] = "otlp"
        return cls(**values)
