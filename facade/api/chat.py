"""POST /api/v1/chat/completions: the enveloped chat endpoint, streaming included."""

from __future__ import annotations

from flask import Response, current_app, g, request

from ..envelope import EnvelopeStream, ok_bytes
from ..schemas.answers import ChatCompletionChunkSchema, ChatCompletionSchema
from ..schemas.chat_request import ROUTE_SCHEMA
from .blueprint import EnvelopeBlueprint, envelope_schema, error_responses
from .context import authenticate, caller, gateway, refuse_when_draining, request_id
from .hangup import HangupWatch
from .relay import SSE_HEADERS, Presenter, Relay

blp = EnvelopeBlueprint(
    "chat", __name__, url_prefix="/api/v1", description="Chat completions in the envelope."
)
blp.before_request(authenticate)  # 401 before anything is parsed

OK_DESCRIPTION = (
    "A chat.completion with `metrics` in the envelope (application/json); with "
    "`stream: true`, server-sent events, each `data: <envelope>` whose data is a "
    "chat.completion.chunk, ending with `data: [DONE]`. An error after the first event "
    "arrives as one error envelope event, then `data: [DONE]`."
)
# The view returns a ready Response (JSON or SSE), so the 200 is documented in one doc entry
# rather than through @blp.response, which would add a wrapper layer to the hot path.
OK_RESPONSE = {
    "description": OK_DESCRIPTION,
    "content": {
        "application/json": {
            "schema": envelope_schema(ChatCompletionSchema(), "EnvelopeChatCompletion")
        },
        "text/event-stream": {
            "schema": envelope_schema(ChatCompletionChunkSchema(), "EnvelopeChatCompletionChunk")
        },
    },
}
CHAT_ERRORS = error_responses(400, 401, 403, 404, 413, 415, 429, 502, 503, 504)


def run_chat(
    body: dict, stream_presenter: Presenter, native: dict | None = None
) -> Response | dict:
    """Run the pipeline for the caller; shared by every route that chats (envelope, plain
    OpenAI, Anthropic Messages). `native` is the client's own vendor body (ChatCall.native)."""
    refuse_when_draining()
    gw = gateway()
    rid = request_id()
    outcome = g.outcome
    if gw.settings.log_prompts:
        outcome.prompt = body["messages"]
    if body.get("stream"):
        watch = HangupWatch(request.environ)
        try:
            opened = gw.pipeline.open_stream(body, caller(), rid, outcome, native)
        except BaseException:
            watch.stop()
            raise
        outcome.stream = True  # from here the relay finishes the request, not after_request
        return Response(
            Relay(
                opened,
                stream_presenter,
                rid,
                watch,
                outcome,
                gw.settings.sse_keepalive_s,
                current_app.extensions["facade_drain"],
            ),
            status=200,
            content_type=getattr(stream_presenter, "content_type", "text/event-stream"),
            headers=SSE_HEADERS,
        )
    data = gw.pipeline.complete(body, caller(), rid, outcome, native)
    if outcome.prompt is not None:
        outcome.completion = [(c.get("message") or {}).get("content") for c in data["choices"]]
    return data


@blp.route("/chat/completions", methods=["POST"])
@blp.arguments(ROUTE_SCHEMA, error_status_code=400)  # an instance: built once
@blp.doc(responses={"200": OK_RESPONSE, **CHAT_ERRORS})
def create_chat_completion(body: dict) -> Response:
    """Create a chat completion (set `stream` for server-sent events)."""
    result = run_chat(body, EnvelopeStream)
    if isinstance(result, Response):
        return result
    return Response(ok_bytes(result), mimetype="application/json")
