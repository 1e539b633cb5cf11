"""The Responses API request body (`POST /v1/responses`), validated strictly.

What Facade can carry to any provider through the chat pipeline is accepted; the rest is a
400 naming it: built-in tools (web_search, file_search, ...) and file ids have no chat
counterpart, and an unknown field is a typo that must not cost money.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from .chat_request import LEVELS, REASONING_EFFORTS, SERVICE_TIERS, metadata_field
from .fields import (
    JSONObject,
    SparseSchema,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictSchema,
    StrictString,
    load_each,
    one_of,
)

INPUT_ROLES = ("user", "assistant", "system", "developer")


class InputTextSchema(StrictSchema):
    type = StrictString(required=True)
    text = StrictString(required=True)


class InputImageSchema(StrictSchema):
    type = StrictString(required=True)
    image_url = StrictString(allow_none=True)
    file_id = StrictString(allow_none=True)
    detail = StrictString(load_default="auto", validate=one_of("auto", "low", "high"))


class InputFileSchema(StrictSchema):
    type = StrictString(required=True)
    file_data = StrictString(allow_none=True)
    file_id = StrictString(allow_none=True)
    file_url = StrictString(allow_none=True)
    filename = StrictString(allow_none=True)


class OutputTextSchema(StrictSchema):
    """Assistant text sent back as history (a previous answer's output item)."""

    type = StrictString(required=True)
    text = StrictString(required=True)
    annotations = fields.List(fields.Raw())
    logprobs = fields.List(fields.Raw())


class RefusalSchema(StrictSchema):
    type = StrictString(required=True)
    refusal = StrictString(required=True)


_PARTS: dict[str, type[Schema]] = {
    "input_text": InputTextSchema,
    "input_image": InputImageSchema,
    "input_file": InputFileSchema,
    "output_text": OutputTextSchema,
    "refusal": RefusalSchema,
}
_PART_SCHEMAS = {name: cls() for name, cls in _PARTS.items()}


def _load_parts(value: Any, allowed: tuple[str, ...]) -> list[dict]:
    """A non-empty list of typed content parts of the `allowed` types."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Must be a string or a non-empty array of content parts.")
    wrong = {"type": [f"Must be one of: {', '.join(allowed)}."]}

    def pick(part: Any) -> Schema | dict:
        kind = part.get("type") if isinstance(part, dict) else None
        return _PART_SCHEMAS[kind] if isinstance(kind, str) and kind in allowed else wrong

    return load_each(value, pick)


class MessageContentField(fields.Field):
    """A message's content: a string or parts (input_text, input_image, ...)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        return _load_parts(value, tuple(_PARTS))


class OutputContentField(fields.Field):
    """A function call's output: a string or input_text / input_image / input_file parts."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        return _load_parts(value, ("input_text", "input_image", "input_file"))


class MessageItemSchema(StrictSchema):
    type = StrictString(load_default="message", validate=one_of("message"))
    id = StrictString()
    status = StrictString()
    role = StrictString(required=True, validate=one_of(*INPUT_ROLES))
    content = MessageContentField(required=True)


class FunctionCallItemSchema(StrictSchema):
    type = StrictString(required=True)
    id = StrictString()
    status = StrictString()
    call_id = StrictString(required=True, validate=validate.Length(min=1))
    name = StrictString(required=True, validate=validate.Length(min=1))
    arguments = StrictString(required=True)


class FunctionCallOutputItemSchema(StrictSchema):
    type = StrictString(required=True)
    id = StrictString(allow_none=True)
    status = StrictString(allow_none=True)
    call_id = StrictString(required=True, validate=validate.Length(min=1))
    output = OutputContentField(required=True)


class ReasoningItemSchema(StrictSchema):
    """A reasoning item sent back as history: kept by no provider here, so read and dropped."""

    type = StrictString(required=True)
    id = StrictString()
    status = StrictString(allow_none=True)
    summary = fields.List(fields.Raw())
    content = fields.List(fields.Raw(), allow_none=True)
    encrypted_content = StrictString(allow_none=True)


_ITEMS = {
    "message": MessageItemSchema(),
    "function_call": FunctionCallItemSchema(),
    "function_call_output": FunctionCallOutputItemSchema(),
    "reasoning": ReasoningItemSchema(),
}


class InputField(fields.Field):
    """`input`: a string (one user message) or a non-empty list of items."""

    default_error_messages = {"invalid": "Must be a string or a non-empty array of input items."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list) or not value:
            raise self.make_error("invalid")
        return load_each(value, _item_schema)


def _item_schema(item: Any) -> Schema | dict | list:
    """The schema of an input item by its `type` (a message may leave it out)."""
    if not isinstance(item, dict):
        return ["Must be an input item object."]
    kind = item.get("type", "message" if "role" in item else None)
    schema = _ITEMS.get(kind) if isinstance(kind, str) else None
    return schema or {"type": [f"Items of type {kind!r} are not supported."]}


class FunctionToolSchema(StrictSchema):
    type = StrictString(required=True)
    name = StrictString(required=True, validate=validate.Length(min=1, max=64))
    description = StrictString(allow_none=True)
    parameters = JSONObject(allow_none=True)
    strict = StrictBoolean(allow_none=True)


_FUNCTION_TOOL = FunctionToolSchema()


class ToolsField(fields.Field):
    """Function tools only: a built-in tool (web_search, file_search, ...) is named in a 400."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, list) or len(value) > 128:
            raise ValidationError("Must be an array of at most 128 tools.")
        return load_each(value, _tool_schema)


def _tool_schema(tool: Any) -> Schema | dict:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind == "function":
        return _FUNCTION_TOOL
    return {"type": [f"The built-in tool {kind!r} is not supported here; only function tools are."]}


class ToolChoiceField(fields.Field):
    """`"none"`, `"auto"`, `"required"` or `{"type": "function", "name": ...}`."""

    default_error_messages = {
        "invalid": "Must be 'none', 'auto', 'required' or a function tool choice; "
        "built-in tool choices are not supported."
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value in ("none", "auto", "required"):
            return value
        if (
            isinstance(value, dict)
            and set(value) == {"type", "name"}
            and value["type"] == "function"
            and isinstance(value["name"], str)
        ):
            return value
        raise self.make_error("invalid")


class ReasoningSchema(StrictSchema):
    effort = StrictString(allow_none=True, validate=one_of(*REASONING_EFFORTS))
    summary = StrictString(allow_none=True, validate=one_of("auto", "concise", "detailed"))


class TextFormatSchema(StrictSchema):
    type = StrictString(required=True, validate=one_of("text", "json_object", "json_schema"))
    name = StrictString(validate=validate.Length(min=1, max=64))
    schema = JSONObject()
    description = StrictString()
    strict = StrictBoolean(allow_none=True)


class TextSchema(StrictSchema):
    format = fields.Nested(TextFormatSchema)
    verbosity = StrictString(allow_none=True, validate=one_of(*LEVELS))


class ResponsesRequestSchema(SparseSchema):
    """An OpenAI Responses API request, as far as the chat pipeline can carry it."""

    model = StrictString(
        allow_none=True,
        load_default=None,
        metadata={"description": "A configured model name; absent or 'auto' lets Facade pick."},
    )
    input = InputField(
        required=True,
        metadata={
            "description": "A string (one user message) or input items: messages with "
            "input_text / input_image / input_file parts, function_call, "
            "function_call_output.",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        },
    )
    instructions = StrictString(allow_none=True)
    tools = ToolsField(
        metadata={
            "description": "Function tools; a built-in tool (web_search, file_search, ...) "
            "is a 400 naming it.",
            "type": "array",
            "items": {"type": "object"},
        }
    )
    tool_choice = ToolChoiceField(
        metadata={"description": "'none', 'auto', 'required' or {type: function, name}."}
    )
    parallel_tool_calls = StrictBoolean(allow_none=True)
    max_output_tokens = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    temperature = StrictNumber(allow_none=True, validate=validate.Range(0, 2))
    top_p = StrictNumber(allow_none=True, validate=validate.Range(0, 1))
    reasoning = fields.Nested(ReasoningSchema, allow_none=True)
    text = fields.Nested(TextSchema, allow_none=True)
    metadata = metadata_field()
    user = StrictString(allow_none=True, validate=validate.Length(max=256))
    safety_identifier = StrictString(allow_none=True, validate=validate.Length(max=256))
    prompt_cache_key = StrictString(allow_none=True, validate=validate.Length(max=1024))
    service_tier = StrictString(allow_none=True, validate=one_of(*SERVICE_TIERS))
    truncation = StrictString(allow_none=True, validate=one_of("disabled"))
    stream = StrictBoolean(load_default=False)
    store = StrictBoolean(load_default=True)
    previous_response_id = StrictString(allow_none=True, validate=validate.Length(max=128))
