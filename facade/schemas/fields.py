"""Strict marshmallow fields: JSON types as sent, no coercion of "5" or "yes"."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, missing, validate

# What makes text unprintable: C0 and C1 controls (ESC starts a terminal escape, a newline
# forges a log or CLI line), the line and paragraph separators, and the bidi overrides
# that make text read differently from what it holds.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
NOT_PRINTABLE = "Must be printable text (no control characters)."


def printable(value: str) -> None:
    """A marshmallow validator: no control characters in `value`."""
    if UNPRINTABLE.search(value):
        raise ValidationError(NOT_PRINTABLE)


def printable_json(value: Any) -> None:
    """A marshmallow validator: every string in `value` (keys and values, at any depth) is
    printable text."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            printable(node)
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def escape_unprintable(text: str) -> str:
    """`text` with each unprintable character as a `\\u` escape of four hex digits (valid JSON)."""
    return UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class StrictSchema(Schema):
    """A request body's object: an unknown name is a 400 naming it (a typo must not cost money)."""

    class Meta:
        unknown = RAISE


class SparseSchema(StrictSchema):
    """A strict schema that, as a route's instance (`sparse=True`), loads each body with a
    copy of itself limited to the names the body holds plus those always loaded (required or
    with a default). Marshmallow visits every field of a schema, present or not: a plain chat
    body cost ~80 us through the 40-field schema, ~21 us through its own few. One copy per
    set of names, at most 256; past that the whole schema serves, so odd bodies cannot grow
    the cache, and a body with a name the schema lacks gets the whole schema's 400."""

    def __init__(self, *, sparse: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sparse = sparse
        self._by_names: dict[frozenset[str], Schema] = {}
        self._always = frozenset(
            name
            for name, field in self.fields.items()
            if field.required or field.load_default is not missing
        )

    def load(self, data: Any, **kwargs: Any) -> Any:
        if self.sparse and isinstance(data, dict) and self.fields.keys() >= data.keys():
            schema = self._schema_for(data.keys())
            if schema is not None:
                return schema.load(data, **kwargs)
        return super().load(data, **kwargs)

    def _schema_for(self, names: Any) -> Schema | None:
        key = frozenset(names)
        schema = self._by_names.get(key)
        if schema is None and len(self._by_names) < 256:
            schema = self._by_names[key] = type(self)(only=key | self._always)
        return schema


def load_each(value: list, pick: Callable[[Any], Schema | dict | list]) -> list[dict]:
    """Load each element of a typed list with the schema `pick` chooses for it (`pick` gives
    the element's error messages instead when no schema fits); errors are keyed by index, as
    marshmallow's own lists do, so a 400 names the element."""
    out, errors = [], {}
    for i, element in enumerate(value):
        schema = pick(element)
        if not isinstance(schema, Schema):
            errors[i] = schema
            continue
        try:
            out.append(schema.load(element))
        except ValidationError as err:
            errors[i] = err.messages
    if errors:
        raise ValidationError(errors)
    return out


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
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.make_error("invalid")
        elif not INT64_MIN <= value <= INT64_MAX:
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
