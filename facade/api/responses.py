"""The OpenAI Responses API: `/v1/responses` (plain) and `/api/v1/responses` (enveloped).

No provider of its own: the body is translated to a chat body (`protocols.responses_request`),
run through the chat pipeline like any chat request (keys, models, auto, limits, budgets,
fallbacks, usage rows, metrics), and the answer or the stream translated back
(`protocols.responses_answer`, `protocols.responses_stream`). With `store` (the default) the
answer and its conversation are kept for `previous_response_id` and `GET .../responses/{id}`,
for the calling key only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Response
from flask_smorest import Blueprint

from .. import jsonutil
from ..envelope import DONE_EVENT, fail_event, ok, ok_bytes, sse_event
from ..errors import FacadeError, InvalidRequestError, NotFoundError, UnavailableError
from ..protocols import responses_answer as answer
from ..protocols.responses_request import chat_body
from ..protocols.responses_stream import ResponseEvents
from ..schemas.responses_answer import ResponseObjectSchema, ResponseStreamEventSchema
from ..schemas.responses_request import ResponsesRequestSchema
from ..store.responses import ResponseStore
from .blueprint import BodyParser, EnvelopeBlueprint, envelope_schema, error_responses
from .chat import run_chat
from .context import authenticate, caller, gateway, max_messages

log = logging.getLogger("facade.responses")

blp = EnvelopeBlueprint(
    "responses",
    __name__,
    url_prefix="/api/v1",
    description="The OpenAI Responses API in the envelope.",
)
blp.before_request(authenticate)


class _PlainBlueprint(Blueprint):
    ARGUMENTS_PARSER = BodyParser()


plain_blp = _PlainBlueprint(
    "openai_responses",
    __name__,
    url_prefix="/v1",
    description="The OpenAI Responses API for SDKs: plain bodies, OpenAI's error shape.",
)
plain_blp.before_request(authenticate)

SCHEMA = ResponsesRequestSchema(sparse=True)  # an instance: built once
ERRORS = error_responses(400, 401, 403, 404, 413, 415, 429, 502, 503, 504)
OK_RESPONSE = {
    "description": "A `response` object with `metrics` in the envelope; with `stream: true`, "
    "server-sent events, each `data: <envelope>` whose data is a Responses stream event "
    "(response.created ... response.completed), ending with `data: [DONE]`. An error after "
    "the first event arrives as one error envelope event, then `data: [DONE]`.",
    "content": {
        "application/json": {
            "schema": envelope_schema(ResponseObjectSchema(), "EnvelopeResponseObject")
        },
        "text/event-stream": {
            "schema": envelope_schema(ResponseStreamEventSchema(), "EnvelopeResponseStreamEvent")
        },
    },
}
PLAIN_OK = {
    "description": "A `response` object; with `stream: true`, the Responses event stream "
    "(`event: <type>` and `data: <event>`); an error after the first event is `response.failed`.",
    "content": {
        "application/json": {"schema": ResponseObjectSchema},
        "text/event-stream": {"schema": ResponseStreamEventSchema},
    },
}


def _plain_event(event: dict) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + jsonutil.dumps(event) + b"\n\n"


def _enveloped_event(event: dict) -> bytes:
    return sse_event(ok(event))


class ResponsesPresenter:
    """Presents the chat stream as Responses events (a relay presenter, one per stream)."""

    def __init__(
        self,
        events: ResponseEvents,
        wire: Callable[[dict], bytes],
        done: bytes,
        on_complete: Callable[[ResponseEvents], None],
        enveloped_errors: bool,
    ) -> None:
        self.events = events
        self.done = done
        self._wire = wire
        self._on_complete = on_complete
        self._enveloped_errors = enveloped_errors

    def chunk(self, chunk: dict) -> bytes:
        if "metrics" in chunk:  # the relay's last chunk: usage and the measured metrics
            out = self.events.complete(chunk["metrics"], chunk.get("usage"))
            self._on_complete(self.events)
        else:
            out = self.events.chunk(chunk)
        return b"".join(map(self._wire, out))

    def error(self, err: FacadeError, rid: str) -> bytes:
        if self._enveloped_errors:  # as chat streams do: one error envelope, then [DONE]
            return fail_event(err, rid)
        return b"".join(map(self._wire, self.events.failed(err.type, err.message)))


def _lookup(response_id: str, key_id: str) -> dict | None:
    """A stored response of this key; 503 when the store cannot be reached."""
    store = _store()
    try:
        return store.get(response_id, key_id)
    except Exception:
        log.exception("reading stored response %s failed", response_id)
        raise UnavailableError("the response store is unreachable; try again") from None


def _history(body: dict, key_id: str) -> list[dict]:
    previous = body.get("previous_response_id")
    if not previous:
        return []
    record = _lookup(previous, key_id)
    if record is None:
        raise NotFoundError(
            f"no stored response with id '{previous}'", param="previous_response_id"
        )
    return record["context"]


def _store() -> ResponseStore:
    store = gateway().responses
    if store is None:
        raise NotFoundError("this gateway keeps no stored responses")
    return store


def _save(
    store: ResponseStore, response_id: str, key_id: str, response: dict, context: list[dict]
) -> None:
    """Keep an answered response; a store failure loses the stored copy, not the answer."""
    try:
        store.save(response_id, key_id, response, context)
    except Exception:  # the caller already has (or is getting) the answer
        log.exception("could not store response %s", response_id)


def run_responses(body: dict, enveloped: bool) -> Response | dict:
    """Run one Responses request on the chat pipeline; a stream or a response object."""
    key = caller()
    # Taken now: a stream ends outside the request context.
    store = gateway().responses if body["store"] else None
    history = _history(body, key.id)
    chat = chat_body(body, history)
    if len(chat["messages"]) > max_messages():  # the stored history counts too
        raise InvalidRequestError(
            f"input: at most {max_messages()} messages in one request, history included",
            param="input",
        )
    response_id = answer.new_response_id()
    created_at = int(time.time())
    # The conversation a later request continues: this one's, without its instructions.
    asked = chat["messages"][1:] if body.get("instructions") else list(chat["messages"])

    def keep(response: dict) -> None:
        if store is not None:
            reply = answer.assistant_message(response["output"])
            _save(store, response_id, key.id, response, asked + ([reply] if reply else []))

    if body["stream"]:
        events = ResponseEvents(body, response_id, created_at)
        wire = _enveloped_event if enveloped else _plain_event
        done = DONE_EVENT if enveloped else b""
        presenter = ResponsesPresenter(events, wire, done, lambda e: keep(e.final), enveloped)
        return run_chat(chat, presenter)
    response = answer.from_chat(run_chat(chat, None), body, response_id, created_at)
    keep(response)
    return response


def _stored(response_id: str) -> dict:
    record = _lookup(response_id, caller().id)
    if record is None:
        raise NotFoundError(f"no stored response with id '{response_id}'", param="response_id")
    return record["response"]


@blp.route("/responses", methods=["POST"])
@blp.arguments(SCHEMA, error_status_code=400)
@blp.doc(responses={"200": OK_RESPONSE, **ERRORS})
def create_response(body: dict) -> Response:
    """Create a model response (the Responses API; set `stream` for server-sent events)."""
    result = run_responses(body, enveloped=True)
    if isinstance(result, Response):
        return result
    return Response(ok_bytes(result), mimetype="application/json")


@blp.route("/responses/<response_id>", methods=["GET"])
@blp.doc(responses={"200": {"description": "A stored `response` object in the envelope."}})
def get_response(response_id: str) -> Response:
    """Read a stored response made with the calling key."""
    return Response(ok_bytes(_stored(response_id)), mimetype="application/json")


@plain_blp.route("/responses", methods=["POST"])
@plain_blp.arguments(SCHEMA, error_status_code=400)
@plain_blp.doc(responses={"200": PLAIN_OK})
def openai_create_response(body: dict) -> Response:
    """Create a model response (OpenAI's shape, for SDKs)."""
    result = run_responses(body, enveloped=False)
    if isinstance(result, Response):
        return result
    return Response(jsonutil.dumps(result), mimetype="application/json")


@plain_blp.route("/responses/<response_id>", methods=["GET"])
@plain_blp.doc(responses={"200": {"description": "A stored `response` object."}})
def openai_get_response(response_id: str) -> Response:
    """Read a stored response made with the calling key (OpenAI's shape, for SDKs)."""
    return Response(jsonutil.dumps(_stored(response_id)), mimetype="application/json")
