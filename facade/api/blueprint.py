"""flask-smorest pieces that make every route speak the envelope.

`EnvelopeBlueprint` wraps what a view returns in `ok()` and shows the wrapper in the spec;
`BodyParser` reads JSON with orjson and turns every parse or validation failure into our
typed errors, so the error handler is the only place that shapes an error response.
"""

from __future__ import annotations

import time
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from .. import jsonutil
from ..envelope import ok
from ..errors import InvalidRequestError, RequestTooLargeError, UnsupportedMediaTypeError
from ..validation import flatten_errors
from .context import max_messages, refuse_over_rate


def is_json_mimetype(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


# Bodies larger than this are read in slices of it, with a turn for the worker's other
# connections between them: a body already in the socket buffer is read without blocking,
# so without a yield one client's megabyte would be read in a single stretch.
READ_SLICE = 256 * 1024


def take_turn() -> None:
    """Let the worker's other connections run (under gevent's patched `time`, a sleep on a
    timer resumes after the loop's next I/O poll; elsewhere it costs a few microseconds)."""
    time.sleep(1e-6)


BODY_KEY = "facade.body"  # the environ key of a body already read


def read_body_once(req: Any) -> bytes:
    """`read_body`, kept for a second reader: a route whose key may be in the body (LLMstudio's
    `api_key`) reads it before authentication, and the body parser reads the same bytes."""
    raw = req.environ.get(BODY_KEY)
    if raw is None:
        raw = req.environ[BODY_KEY] = read_body(req)
    return raw


def read_body(req: Any) -> bytes:
    """The body, at most `max_content_length` bytes, with or without Content-Length.

    werkzeug rejects a declared length over the limit, but a chunked body is only cut at the
    limit, never refused; reading one byte past it tells the two apart.
    """
    limit = req.max_content_length
    length = req.content_length
    if limit is None or (length is not None and length > limit):
        return req.get_data(cache=True)  # no limit, or werkzeug's 413
    stream = req.stream if length is not None else req.environ["wsgi.input"]
    want = length if length is not None else limit + 1
    if want <= READ_SLICE:
        raw = stream.read(want)
    else:
        pieces, got = [], 0
        while got < want:
            piece = stream.read(min(READ_SLICE, want - got))
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
            take_turn()
        raw = b"".join(pieces)
    if length and not raw:  # a hook read it first (LLMstudio's api_key): werkzeug keeps it
        raw = req.get_data(cache=True)
    if length is None and len(raw) > limit:
        raise RequestTooLargeError(
            f"the request body is larger than this gateway accepts ({limit} bytes)"
        )
    return raw


# Deeper than any real schema or tool definition, and far enough below the 254 levels orjson
# can write that a body still nests less once a provider's payload wraps it.
MAX_NESTING = 64


def check_shape(body: dict) -> None:
    """Refuse, naming the field, what validation would pay dearly for or could not write back:
    more messages than `limits.max_messages`, JSON nested deeper than MAX_NESTING."""
    messages = body.get("messages")
    if isinstance(messages, list) and len(messages) > max_messages():
        raise InvalidRequestError(
            f"messages: at most {max_messages()} messages in one request", param="messages"
        )
    if jsonutil.nesting(body) > MAX_NESTING:
        for name, value in body.items():
            if jsonutil.nesting(value) >= MAX_NESTING:
                raise InvalidRequestError(
                    f"{name}: JSON nested deeper than {MAX_NESTING} levels", param=name
                )


class BodyParser(FlaskParser):
    """webargs parser: orjson, 415 for non-JSON bodies, 400 naming the bad field."""

    def load_json(self, req: Any, schema: ma.Schema) -> Any:
        if not is_json_mimetype(req.mimetype):
            raise UnsupportedMediaTypeError(
                "the body must be JSON, sent with Content-Type: application/json"
            )
        refuse_over_rate()  # the last cheap refusal before the dear part: reading, parsing
        raw = read_body_once(req)
        try:
            body = jsonutil.loads(raw)
        except jsonutil.JSONDecodeError as err:
            raise InvalidRequestError(f"the body is not valid JSON: {err}") from None
        if not isinstance(body, dict):
            raise InvalidRequestError("the body must be a JSON object")
        check_shape(body)
        return body

    def handle_error(self, error: ma.ValidationError, req: Any, schema: ma.Schema, **_: Any):
        messages = error.messages
        if isinstance(messages, dict) and len(messages) == 1 and "json" in messages:
            messages = messages["json"]  # webargs keys errors by location
        param, message = flatten_errors(messages)[0]
        raise InvalidRequestError(f"{param}: {message}" if param else message, param=param or None)


_ENVELOPES: dict[str, type[ma.Schema]] = {}


def envelope_schema(schema: ma.Schema | None, name: str) -> type[ma.Schema]:
    """The spec's view of `ok(data)` for a data schema (one class per name, for the spec)."""
    if name in _ENVELOPES:
        return _ENVELOPES[name]
    data = ma.fields.Nested(schema) if schema is not None else ma.fields.Raw(allow_none=True)
    _ENVELOPES[name] = type(
        name,
        (ma.Schema,),
        {
            "success": ma.fields.Boolean(required=True, metadata={"example": True}),
            "code": ma.fields.String(required=True, metadata={"example": "200"}),
            "message": ma.fields.String(required=True, metadata={"example": "successful"}),
            "data": data,
        },
    )
    return _ENVELOPES[name]


class EnvelopeBlueprint(Blueprint):
    """A Blueprint whose responses, and their documentation, are wrapped in the envelope."""

    ARGUMENTS_PARSER = BodyParser()

    @staticmethod
    def _prepare_response_content(data: Any) -> Any:
        return ok(data)

    @staticmethod
    def _make_doc_response_schema(schema: ma.Schema | None) -> Any:
        if schema is None:
            return None
        return envelope_schema(schema, "Envelope" + type(schema).__name__.removesuffix("Schema"))


ERROR_DESCRIPTIONS = {
    400: "Bad JSON, a field out of range or of the wrong type, an unknown field; "
    "`message` and `param` name the field.",
    401: "Key missing, unknown, revoked or expired.",
    403: "The key may not use that model.",
    404: "No such model (or resource).",
    413: "Body over the configured limit, with Content-Length or chunked.",
    415: "Body is not JSON.",
    429: "`rate_limit_exceeded` (rpm/tpm; Retry-After set) or `budget_exceeded`.",
    502: "The upstream failed or answered nonsense.",
    503: "Every target of the model is cooling down, or the server is draining.",
    504: "The upstream did not answer in time.",
}


def error_responses(*codes: int) -> dict:
    """`@blp.doc(responses=...)` entries for the error envelope under each status."""
    from ..schemas.answers import ErrorEnvelopeSchema

    return {
        str(code): {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": ErrorEnvelopeSchema}},
        }
        for code in codes
    }
