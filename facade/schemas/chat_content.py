"""A chat message's content parts (text, image_url, input_audio, file, refusal), strict like
the rest of the chat body."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema

from .fields import StrictSchema, StrictString, load_each, one_of

PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")


class TextPartSchema(StrictSchema):
    type = StrictString(required=True)
    text = StrictString(required=True)


class ImageURLSchema(StrictSchema):
    url = StrictString(required=True)
    detail = StrictString(validate=one_of("auto", "low", "high"))


class ImagePartSchema(StrictSchema):
    type = StrictString(required=True)
    image_url = fields.Nested(ImageURLSchema, required=True)


class InputAudioSchema(StrictSchema):
    data = StrictString(required=True)
    format = StrictString(required=True, validate=one_of("wav", "mp3"))


class AudioPartSchema(StrictSchema):
    type = StrictString(required=True)
    input_audio = fields.Nested(InputAudioSchema, required=True)


class FileSchema(StrictSchema):
    file_data = StrictString()
    file_id = StrictString()
    filename = StrictString()

    @validates_schema
    def _data_or_id(self, data: dict, **_: Any) -> None:
        if "file_data" not in data and "file_id" not in data:
            raise ValidationError("a file part needs file_data or file_id", "file_data")


class FilePartSchema(StrictSchema):
    type = StrictString(required=True)
    file = fields.Nested(FileSchema, required=True)


class RefusalPartSchema(StrictSchema):
    type = StrictString(required=True)
    refusal = StrictString(required=True)


_PART_SCHEMAS: dict[str, Schema] = {
    "text": TextPartSchema(),
    "image_url": ImagePartSchema(),
    "input_audio": AudioPartSchema(),
    "file": FilePartSchema(),
    "refusal": RefusalPartSchema(),
}


class ContentField(fields.Field):
    """A message's content: a string, an array of parts, or null. Each part is strict like
    the rest of the body (a misspelt `detail` must not be dropped on the way to a vendor);
    a plain `{type: text, text}` part, most of them, is checked inline."""

    default_error_messages = {
        "invalid": "Must be a string, an array of content parts, or null.",
        "part": "Each content part must be an object with a known 'type' ("
        + ", ".join(PART_TYPES)
        + ") and its matching field.",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list) or not value:
            raise self.make_error("invalid")
        if all(
            type(part) is dict
            and len(part) == 2
            and part.get("type") == "text"
            and type(part.get("text")) is str
            for part in value
        ):
            return value
        for part in value:
            kind = part.get("type") if isinstance(part, dict) else None
            if not isinstance(kind, str) or kind not in _PART_SCHEMAS:
                raise self.make_error("part")
        return load_each(value, lambda part: _PART_SCHEMAS[part["type"]])
