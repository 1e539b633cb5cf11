"""flask-smorest pieces that make every route speak the envelope.

`EnvelopeBlueprint` wraps what a view returns in `ok()` and shows the wrapper in the spec;
`BodyParser` reads JSON with orjson and turns every parse or validation failure into our
typed errors, so the error handler is the only place that shapes an error response.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from .. import jsonutil
from ..envelope import ok
from ..errors import InvalidRequestError, RequestTooLargeError, UnsupportedMediaTypeError
from ..validation import flatten_errors


def is_json_mimetype(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


def read_body(req: Any) -> bytes:
    """The body, at most `max_content_length` bytes, with or without Content-Length.

    werkzeug rejects a declared length over the limit, but a chunked body is only cut at the
    limit, never refused; reading one byte past it tells the two apart.
    """
    limit = req.max_content_length
    if req.content_length is not None or limit is None:
        return req.get_data(cache=True)
    raw = req.environ["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestTooLargeError(
            f"the request body is larger than this gateway accepts ({limit} bytes)"
        )
    return raw


class BodyParser(FlaskParser):
    """webargs parser: orjson, 415 for non-JSON bodies, 400 naming the bad field."""

    def load_json(self, req: Any, schema: ma.Schema) -> Any:
        if not is_json_mimetype(req.mimetype):
            raise UnsupportedMediaTypeError(
                "the body must be JSON, sent with Content-Type: application/json"
            )
        raw = read_body(req)
        try:
            body = jsonutil.loads(raw)
        except jsonutil.JSONDecodeError as err:
            raise InvalidRequestError(f"the body is not valid JSON: {err}") from None
        if not isinstance(body, dict):
            raise InvalidRequestError("the body must be a JSON object")
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
