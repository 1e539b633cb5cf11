"""Liveness and readiness for Kubernetes probes."""

from __future__ import annotations

from flask import Response, request

from ..errors import AuthenticationError, UnavailableError
from ..keys import constant_time_equal
from ..schemas.answers import ReadinessSchema, StatusSchema
from ..telemetry import observe
from .blueprint import EnvelopeBlueprint, error_responses
from .context import gateway

blp = EnvelopeBlueprint("health", __name__, description="Probes.")


@blp.route("/healthz", methods=["GET"])
@blp.response(200, StatusSchema)
def healthz() -> dict:
    """Report that the process is alive."""
    return {"status": "ok"}


@blp.route("/metrics", methods=["GET"])
@blp.doc(
    responses={
        "200": {"description": "Prometheus text format.", "content": {"text/plain": {}}},
        **error_responses(401),
    }
)
def metrics() -> Response:
    """Expose Prometheus metrics (all workers' sums); with FACADE_METRICS_TOKEN set, to its
    Bearer only."""
    token = gateway().settings.metrics_token
    if token:
        header = request.headers.get("Authorization") or ""
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not constant_time_equal(given.strip(), token):
            raise AuthenticationError("/metrics needs Authorization: Bearer <FACADE_METRICS_TOKEN>")
    body, content_type = observe.exposition()
    return Response(body, content_type=content_type)


@blp.route("/readyz", methods=["GET"])
@blp.response(200, ReadinessSchema)
def readyz() -> dict:
    """Report whether this instance should get traffic, and which shared stores it reaches."""
    gw = gateway()
    problem = gw.readiness_problem()
    if problem:
        raise UnavailableError(problem)
    return {"status": "ready", "dependencies": gw.dependencies.snapshot()}
