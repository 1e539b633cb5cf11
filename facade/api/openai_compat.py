"""/v1/chat/completions, /v1/embeddings, /v1/models: the same pipeline, plain OpenAI shapes.

One pipeline, two presentations: these routes call what the enveloped routes call and only
write the answer differently (no envelope; OpenAI's error shape, chosen in api/errors.py by
the /v1/ path), so OpenAI SDKs and tools work unchanged against the gateway.
"""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from .. import jsonutil
from ..envelope import DONE_EVENT, sse_event
from ..errors import FacadeError
from ..schemas.chat_request import ROUTE_SCHEMA
from ..schemas.embeddings_request import EmbeddingRequestSchema
from .blueprint import BodyParser
from .catalog import model_list
from .chat import run_chat
from .context import authenticate, caller, gateway
from .embeddings import run_embeddings
from .errors import openai_error_body


class PlainBlueprint(Blueprint):
    ARGUMENTS_PARSER = BodyParser()


blp = PlainBlueprint(
    "openai",
    __name__,
    url_prefix="/v1",
    description="OpenAI-compatible routes for SDKs: plain bodies, OpenAI's error shape.",
)
blp.before_request(authenticate)


class PlainStream:
    """Presents a stream as OpenAI's own SSE chunks."""

    done = DONE_EVENT

    @staticmethod
    def chunk(chunk: dict) -> bytes:
        return sse_event(chunk)

    @staticmethod
    def error(err: FacadeError, request_id: str) -> bytes:
        return sse_event(openai_error_body(err))


def _json(data: dict) -> Response:
    return Response(jsonutil.dumps(data), mimetype="application/json")


@blp.route("/chat/completions", methods=["POST"])
@blp.arguments(ROUTE_SCHEMA, error_status_code=400)
def openai_chat_completions(body: dict) -> Response:
    """Create a chat completion (OpenAI's shape, for SDKs)."""
    result = run_chat(body, PlainStream)
    return result if isinstance(result, Response) else _json(result)


@blp.route("/embeddings", methods=["POST"])
@blp.arguments(EmbeddingRequestSchema(), error_status_code=400)
def openai_embeddings(body: dict) -> Response:
    """Create embeddings (OpenAI's shape, for SDKs)."""
    return _json(run_embeddings(body))


@blp.route("/models", methods=["GET"])
def openai_models() -> Response:
    """List the models the calling key may use (OpenAI's shape, for SDKs)."""
    return _json(model_list(gateway(), caller()))
