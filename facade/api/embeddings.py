"""POST /api/v1/embeddings: embeddings in the envelope, metered like chat."""

from __future__ import annotations

from flask import Response, g

from ..envelope import ok_bytes
from ..schemas.embeddings_request import EmbeddingRequestSchema
from .blueprint import EnvelopeBlueprint, envelope_schema, error_responses
from .context import authenticate, caller, gateway, refuse_when_draining, request_id

blp = EnvelopeBlueprint(
    "embeddings", __name__, url_prefix="/api/v1", description="Embeddings in the envelope."
)
blp.before_request(authenticate)

EMBEDDINGS_DOC = {
    "200": {
        "description": "An OpenAI embeddings list with `metrics`, in the envelope.",
        "content": {"application/json": {"schema": envelope_schema(None, "EnvelopeEmbeddings")}},
    },
    **error_responses(400, 401, 403, 404, 413, 415, 429, 502, 503, 504),
}


def run_embeddings(body: dict) -> dict:
    """Run the pipeline for the caller; shared by the enveloped and the plain routes."""
    refuse_when_draining()
    gw = gateway()
    if gw.settings.log_prompts:
        g.outcome.prompt = body["input"]
    return gw.pipeline.embed(body, caller(), request_id(), g.outcome)


@blp.route("/embeddings", methods=["POST"])
@blp.arguments(EmbeddingRequestSchema(), error_status_code=400)
@blp.doc(responses=EMBEDDINGS_DOC)
def create_embeddings(body: dict) -> Response:
    """Create embeddings for the input."""
    return Response(ok_bytes(run_embeddings(body)), mimetype="application/json")
