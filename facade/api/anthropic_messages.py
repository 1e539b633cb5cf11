"""POST /v1/messages and /v1/messages/count_tokens: the Anthropic Messages API, plain.

Anthropic SDKs and Claude Code work unchanged against any configured model: the request is
translated to the internal chat shape (facade/protocols/anthropic_messages_request.py) and
runs the chat pipeline (keys, limits, budgets, routing, fallback, usage rows, metrics); an
Anthropic-kind target gets the request natively. Errors take Anthropic's shape, chosen in
api/errors.py by the path. Keys come as `x-api-key` or `Authorization: Bearer`; the
`anthropic-version` header is accepted and not needed.
"""

from __future__ import annotations

from flask import Response, g

from .. import jsonutil
from ..errors import FacadeError, UnsupportedParameterError
from ..estimates import estimate_request
from ..gateway import Gateway
from ..keys import ApiKey
from ..protocols.anthropic_messages_answer import to_message
from ..protocols.anthropic_messages_request import thinking_enabled, to_chat
from ..protocols.anthropic_messages_stream import MessageEvents, encode
from ..schemas.messages_request import CountTokensRequestSchema, MessagesRequestSchema
from .chat import run_chat
from .context import authenticate_anthropic, caller, gateway, request_id
from .errors import anthropic_error_body
from .openai_compat import PlainBlueprint

blp = PlainBlueprint(
    "anthropic",
    __name__,
    url_prefix="/v1",
    description="The Anthropic Messages API for Anthropic SDKs and Claude Code: plain bodies, "
    "Anthropic's events and error shape; x-api-key or Bearer keys.",
)
blp.before_request(authenticate_anthropic)  # 401 before anything is parsed

# Provider kinds that reason when asked (`thinking` goes to them); others refuse it.
REASONING_KINDS = frozenset({"anthropic", "openai", "azure", "gemini"})


class MessagesStream:
    """Presents a stream as Anthropic's typed events (see facade.api.relay.Presenter)."""

    def __init__(self, events: MessageEvents):
        self.events = events
        self.failed = False

    def chunk(self, chunk: dict) -> bytes:
        return encode(self.events.from_chunk(chunk))

    def error(self, err: FacadeError, request_id: str) -> bytes:
        self.failed = True
        return encode([("error", anthropic_error_body(err, request_id))])

    @property
    def done(self) -> bytes:
        return b"" if self.failed else encode(self.events.closing())


def refuse_thinking(gw: Gateway, key: ApiKey, chat: dict) -> None:
    """`thinking` goes only where it can be honoured: every target the request may reach."""
    for model in gw.router.models_for(chat.get("model"), key, chat):
        for target in model.targets:
            kind = gw.config.providers[target.provider].kind
            if kind not in REASONING_KINDS:
                raise UnsupportedParameterError(
                    "thinking", kind, f"model {model.name!r} has a target that does not reason"
                )


@blp.route("/messages", methods=["POST"])
@blp.arguments(MessagesRequestSchema(), error_status_code=400)
@blp.doc(
    responses={
        "200": {
            "description": "An Anthropic `message` (application/json); with `stream: true`, "
            "Anthropic's server-sent events from message_start to message_stop."
        }
    }
)
def create_message(body: dict) -> Response:
    """Create a message (Anthropic's Messages API, for Anthropic SDKs and Claude Code)."""
    chat = to_chat(body)
    if thinking_enabled(body):
        refuse_thinking(gateway(), caller(), chat)
    rid = request_id()
    if chat.get("stream"):
        events = MessageEvents(rid, estimate_request(chat), body.get("stop_sequences"))
        return run_chat(chat, MessagesStream(events), native=body)
    data = run_chat(chat, None, native=body)
    return Response(jsonutil.dumps(to_message(data, body, rid)), mimetype="application/json")


@blp.route("/messages/count_tokens", methods=["POST"])
@blp.arguments(CountTokensRequestSchema(), error_status_code=400)
@blp.doc(responses={"200": {"description": '`{"input_tokens": n}`'}})
def count_message_tokens(body: dict) -> Response:
    """Count a Messages request's input tokens (the upstream's count where it has one)."""
    chat = to_chat(body)
    outcome = g.outcome
    count = gateway().pipeline.count_tokens(chat, caller(), request_id(), body)
    outcome.model = chat.get("model")
    return Response(jsonutil.dumps({"input_tokens": count}), mimetype="application/json")
