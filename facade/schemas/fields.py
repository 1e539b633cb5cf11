"""Strict marshmallow fields: JSON types as sent, no coercion of "5" or "yes"."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate


class StrictBoolean(fields.Boolean):
    default_error_messages = {"invalid": "Not a valid boolean (true or false)."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


# Integers are 64-bit (signed): what every upstream and our JSON writer (orjson) can take.
# orjson reads a larger integer as a float; turned back into an int it could not be written.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def is_int64(value: Any) -> bool:
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


class StrictNumber(fields.Field):
    """A JSON number (int or float, not bool, not a string); integers within 64 bits."""

    default_error_messages = {"invalid": "Not a valid number."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.make_error("invalid")
        if isinstance(value, int) and not is_int64(value):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Integer):
    """A JSON integer (`5` or `5.0`), within 64 bits: a larger one is a 400 naming it."""

    default_error_messages = {
        "invalid": "Not a valid integer.",
        "int64": "Must be an integer between -2^63 and 2^63-1.",
    }

    def __init__(self, **kwargs: Any):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            if not INT64_MIN <= value <= INT64_MAX:
                raise self.make_error("int64")
            value = int(value)
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise self.make_error("int64")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictString(fields.String):
    """A JSON string; lone surrogates cannot arrive (orjson rejects them as invalid JSON)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return value


class StopField(fields.Field):
    """`stop`: one string or a list of up to 4 strings."""

    default_error_messages = {"invalid": "Must be a string or a list of up to 4 strings."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str | list[str]:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and len(value) <= 4 and all(isinstance(v, str) for v in value):
            return value
        raise self.make_error("invalid")


class JSONObject(fields.Dict):
    """Any JSON object, kept as given (tool parameters, JSON schemas)."""

    def __init__(self, **kwargs: Any):
        super().__init__(keys=fields.String(), **kwargs)


def one_of(*choices: str) -> validate.OneOf:
    return validate.OneOf(choices)
