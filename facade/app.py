"""Assemble the Flask app: settings, config, gateway, routes, error handling, hooks."""

from __future__ import annotations

import json
import logging

from flask import Flask
from flask.json.provider import JSONProvider
from flask_smorest import Api

from . import jsonutil
from .config import Config, load_config
from .drain import Drain
from .gateway import Gateway
from .schemas.answers import ErrorEnvelopeSchema
from .settings import Settings
from .telemetry import tracing
from .telemetry.logs import configure_logging, warn_demo

log = logging.getLogger("facade")
API_VERSION = "1.0.0"


class OrjsonProvider(JSONProvider):
    def dumps(self, obj, **kwargs) -> str:
        if kwargs.get("indent"):  # `flask openapi write`: a readable, diffable spec file
            return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)
        return jsonutil.dumps(obj).decode()

    def loads(self, s, **kwargs):
        return jsonutil.loads(s)


class FacadeApi(Api):
    """flask-smorest's Api with our error envelope in the spec and our error handlers."""

    ERROR_SCHEMA = ErrorEnvelopeSchema

    def _register_error_handlers(self) -> None:
        from .api.errors import register_error_handlers

        register_error_handlers(self._app)


def build_app(
    config: Config | None = None, settings: Settings | None = None, *, quiet: bool = False
) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(settings)
    config = config or load_config(settings)
    if config.is_demo and not quiet:
        warn_demo()
    app = Flask("facade")
    app.json = OrjsonProvider(app)
    app.config.update(
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        API_TITLE="Facade",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        # /docs is facade/api/pages.py: Swagger UI from an installed package, no CDN.
        API_SPEC_OPTIONS={
            "info": {
                "description": "An enterprise gateway in front of large language models. "
                "Every /api/v1 answer is the envelope {success, code, message, data}; "
                "/v1 speaks plain OpenAI for SDKs."
            },
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    )
    from .store import Store

    store = Store(settings.database_url, pool_size=settings.db_pool_size)
    gateway = Gateway(config, settings, store=store)
    app.extensions["facade"] = gateway
    api = FacadeApi(app)
    from .api import (
        admin,
        anthropic_messages,
        catalog,
        chat,
        embeddings,
        health,
        llmstudio,
        openai_compat,
        pages,
        responses,
    )

    for blp in (
        chat.blp,
        responses.blp,
        embeddings.blp,
        catalog.blp,
        openai_compat.blp,
        responses.plain_blp,
        anthropic_messages.blp,
        llmstudio.blp,
        health.blp,
        admin.blp,
    ):
        api.register_blueprint(blp)
    app.register_blueprint(pages.blp)  # pages for people, not in the spec
    from .cli import keys_cli

    app.cli.add_command(keys_cli)

    from .api.headers import register_security_headers
    from .api.lifecycle import register_lifecycle

    register_lifecycle(app)
    register_security_headers(app)
    drain = Drain(gateway)
    app.extensions["facade_drain"] = drain
    app.facade_drain = drain.begin  # gunicorn.conf.py calls it on the worker's SIGTERM
    app.facade_close = gateway.close
    tracing_shutdown = tracing.configure(
        settings, version=API_VERSION
    )  # per worker process; None when off
    if tracing_shutdown is not None:
        close = app.facade_close

        def close_then_flush_traces() -> None:
            try:
                close()
            finally:
                tracing_shutdown()

        app.facade_close = close_then_flush_traces
    gateway.dependencies.start()
    gateway.started = True
    return app
