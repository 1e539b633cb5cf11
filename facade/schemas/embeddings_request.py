"""The embeddings request body (OpenAI's), validated strictly."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from .fields import StrictInteger, StrictString, is_int64, one_of

MAX_INPUTS = 2048


class EmbeddingInputField(fields.Field):
    """A string, a list of strings, a token array, or a list of token arrays."""

    default_error_messages = {
        "invalid": "Must be a non-empty string or list of strings (or of token arrays), "
        f"at most {MAX_INPUTS} items.",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and 0 < len(value) <= MAX_INPUTS:
            if all(isinstance(v, str) and v for v in value):
                return value
            if all(_is_tokens(v) for v in value) or _is_tokens(value):
                return value
        raise self.make_error("invalid")


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(is_int64(t) and t >= 0 for t in value)


class EmbeddingRequestSchema(Schema):
    """An OpenAI embeddings request."""

    class Meta:
        unknown = RAISE

    model = StrictString(required=True, validate=validate.Length(min=1))
    input = EmbeddingInputField(required=True)
    dimensions = StrictInteger(validate=validate.Range(min=1))
    encoding_format = StrictString(validate=one_of("float", "base64"))
    user = StrictString(validate=validate.Length(max=256))
