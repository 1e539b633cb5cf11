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


class StrictNumber(fields.Field):
    """A JSON number (int or float, not bool, not a string)."""

    default_error_messages = {"invalid": "Not a valid number."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Integer):
    default_error_messages = {"invalid": "Not a valid integer."}

    def __init__(self, **kwargs: Any):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
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
