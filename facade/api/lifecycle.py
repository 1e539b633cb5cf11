"""Request lifecycle hooks: open the request's Outcome, close it, stamp X-Request-ID (and
X-Cache when the response cache applied)."""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from ..outcome import Outcome
from ..telemetry import observe, tracing
from .context import client_request_id, request_id, server_request_id

# Probes and scrapes are counted in metrics but get no access line: they would drown it.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def register_lifecycle(app: Flask) -> None:
    @app.before_request
    def _begin() -> None:
        rule = request.url_rule
        outcome = Outcome(
            route=rule.rule if rule is not None else "unmatched",
            method=request.method,
            request_id=request_id(),
            cache_control=request.headers.get("Cache-Control"),
            server_request_id=server_request_id(),
            client_request_id=client_request_id(),
        )
        g.outcome = outcome
        observe.start(outcome)
        current_app.extensions["facade_drain"].connection_busy(request.environ)
        if outcome.route not in QUIET_ROUTES:  # probes and scrapes get no span either
            tracing.begin(outcome, request.environ)

    @app.after_request
    def _end(resp: Response) -> Response:
        resp.headers["X-Request-ID"] = request_id()
        outcome = g.get("outcome")
        if outcome is not None and outcome.cache is not None:
            resp.headers["X-Cache"] = outcome.cache  # hit, miss or skip
        if outcome is not None and not outcome.stream:  # a stream ends in its relay
            observe.finish(outcome, resp.status_code, log=outcome.route not in QUIET_ROUTES)
        # Idle only once the server has written the whole response (streams included).
        drain, environ = current_app.extensions["facade_drain"], request.environ
        resp.call_on_close(lambda: drain.connection_idle(environ))
        return resp
