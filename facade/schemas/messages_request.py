"""The Anthropic Messages request body (`POST /v1/messages`), validated strictly.

The fields are the ones DESIGN.md lists for the Messages API; anything else, at any level, is
a 400 naming it, so an unknown field is never forwarded upstream. Content blocks are checked
by their `type`: text, image (base64 or URL), document (base64 PDF), tool_use, tool_result,
thinking and redacted_thinking (a conversation that used extended thinking sends them back).
Nothing gets a default on load: the loaded body is what the caller sent, so it can be passed
natively to an Anthropic upstream.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .fields import JSONObject, StrictBoolean, StrictInteger, StrictNumber, StrictString, one_of


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class AnthropicCacheControlSchema(_Strict):
    type = StrictString(required=True, validate=one_of("ephemeral"))
    ttl = StrictString(validate=one_of("5m", "1h"))


class AnthropicTextBlockSchema(_Strict):
    type = StrictString(required=True)
    text = StrictString(required=True)
    cache_control = fields.Nested(AnthropicCacheControlSchema, allow_none=True)
    citations = fields.List(JSONObject(), allow_none=True)


class AnthropicSourceSchema(_Strict):
    type = StrictString(required=True, validate=one_of("base64", "url"))
    media_type = StrictString()
    data = StrictString()
    url = StrictString()

    @validates_schema
    def _complete(self, data: dict, **_: Any) -> None:
        need = ("media_type", "data") if data["type"] == "base64" else ("url",)
        for name in need:
            if name not in data:
                raise ValidationError(f"required for a {data['type']} source", name)


class AnthropicImageBlockSchema(_Strict):
    type = StrictString(required=True)
    source = fields.Nested(AnthropicSourceSchema, required=True)
    cache_control = fields.Nested(AnthropicCacheControlSchema, allow_none=True)


class AnthropicDocumentBlockSchema(_Strict):
    type = StrictString(required=True)
    source = fields.Nested(AnthropicSourceSchema, required=True)
    title = StrictString(allow_none=True)
    context = StrictString(allow_none=True)
    cache_control = fields.Nested(AnthropicCacheControlSchema, allow_none=True)


class AnthropicToolUseBlockSchema(_Strict):
    type = StrictString(required=True)
    id = StrictString(required=True)
    name = StrictString(required=True)
    input = JSONObject(required=True)
    cache_control = fields.Nested(AnthropicCacheControlSchema, allow_none=True)
    # Sent back as the SDK's answer objects hold them (None unless a server tool made the call).
    caller = JSONObject(allow_none=True)
    toolset_name = StrictString(allow_none=True)


class AnthropicThinkingBlockSchema(_Strict):
    type = StrictString(required=True)
    thinking = StrictString(required=True)
    signature = StrictString(required=True)


class AnthropicRedactedThinkingBlockSchema(_Strict):
    type = StrictString(required=True)
    data = StrictString(required=True)


class BlocksField(fields.Field):
    """A list of content blocks, each checked by the schema of its `type`."""

    default_error_messages = {
        "invalid": "Must be a list of content blocks.",
        "type": "Unknown content block type; expected one of: {types}.",
    }

    def __init__(self, schemas: dict[str, type[Schema]], *, string_ok: bool, **kwargs: Any):
        super().__init__(**kwargs)
        self.schemas = {name: cls() for name, cls in schemas.items()}
        self.string_ok = string_ok

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and self.string_ok:
            return value
        if not isinstance(value, list):
            raise self.make_error("invalid")
        out, errors = [], {}
        for i, block in enumerate(value):
            kind = block.get("type") if isinstance(block, dict) else None
            schema = self.schemas.get(kind) if isinstance(kind, str) else None
            if schema is None:
                types = ", ".join(self.schemas)
                errors[i] = {"type": [self.error_messages["type"].format(types=types)]}
                continue
            try:
                out.append(schema.load(block))
            except ValidationError as err:
                errors[i] = err.messages
        if errors:
            raise ValidationError(errors)
        return out


class AnthropicToolResultBlockSchema(_Strict):
    type = StrictString(required=True)
    tool_use_id = StrictString(required=True)
    content = BlocksField(
        {
            "text": AnthropicTextBlockSchema,
            "image": AnthropicImageBlockSchema,
            "document": AnthropicDocumentBlockSchema,
        },
        string_ok=True,
    )
    is_error = StrictBoolean()
    cache_control = fields.Nested(AnthropicCacheControlSchema, allow_none=True)
    toolset_name = StrictString(allow_none=True)


USER_BLOCKS = {
    "text": AnthropicTextBlockSchema,
    "image": AnthropicImageBlockSchema,
    "document": AnthropicDocumentBlockSchema,
    "tool_result": AnthropicToolResultBlockSchema,
}
ASSISTANT_BLOCKS = {
    "text": AnthropicTextBlockSchema,
    "tool_use": AnthropicToolUseBlockSchema,
    "thinking": AnthropicThinkingBlockSchema,
    "redacted_thinking": AnthropicRedactedThinkingBlockSchema,
}
_USER_CONTENT = BlocksField(USER_BLOCKS, string_ok=True)
_ASSISTANT_CONTENT = BlocksField(ASSISTANT_BLOCKS, string_ok=True)


class AnthropicMessageSchema(_Strict):
    role = StrictString(required=True, validate=one_of("user", "assistant"))
    content = fields.Raw(required=True)

    @validates_schema(pass_original=True)
    def _content(self, data: dict, original: Any, **_: Any) -> None:
        field = _USER_CONTENT if data["role"] == "user" else _ASSISTANT_CONTENT
        try:
            data["content"] = field.deserialize(data["content"])
        except ValidationError as err:
            raise ValidationError(err.messages, "content") from None


class AnthropicToolSchema(_Strict):
    type = StrictString(validate=one_of("custom"))
    name = StrictString(required=True, validate=validate.Length(min=1, max=128))
    description = StrictString()
    input_schema = JSONObject(required=True)
    cache_control = fields.Nested(AnthropicCacheControlSchema, allow_none=True)


class AnthropicToolChoiceSchema(_Strict):
    type = StrictString(required=True, validate=one_of("auto", "any", "tool", "none"))
    name = StrictString()
    disable_parallel_tool_use = StrictBoolean()

    @validates_schema
    def _named(self, data: dict, **_: Any) -> None:
        if data["type"] == "tool" and "name" not in data:
            raise ValidationError("required when type is tool", "name")


class AnthropicMetadataSchema(_Strict):
    user_id = StrictString(allow_none=True, validate=validate.Length(max=256))


class AnthropicThinkingSchema(_Strict):
    type = StrictString(required=True, validate=one_of("enabled", "adaptive", "disabled"))
    budget_tokens = StrictInteger(validate=validate.Range(min=1024))
    display = StrictString(allow_none=True, validate=one_of("summarized", "omitted"))

    @validates_schema
    def _budget(self, data: dict, **_: Any) -> None:
        if data["type"] == "enabled" and "budget_tokens" not in data:
            raise ValidationError("required when type is enabled", "budget_tokens")


class MessagesRequestSchema(_Strict):
    """An Anthropic Messages API request."""

    model = StrictString(
        required=True,
        metadata={"description": "A configured model name; 'auto' lets Facade pick."},
    )
    max_tokens = StrictInteger(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    messages = fields.List(
        fields.Nested(AnthropicMessageSchema), required=True, validate=validate.Length(min=1)
    )
    system = BlocksField({"text": AnthropicTextBlockSchema}, string_ok=True)
    tools = fields.List(fields.Nested(AnthropicToolSchema), validate=validate.Length(max=128))
    tool_choice = fields.Nested(AnthropicToolChoiceSchema)
    stop_sequences = fields.List(StrictString(), validate=validate.Length(max=16))
    temperature = StrictNumber(validate=validate.Range(0, 1))
    top_p = StrictNumber(validate=validate.Range(0, 1))
    top_k = StrictInteger(validate=validate.Range(min=1))
    metadata = fields.Nested(AnthropicMetadataSchema)
    thinking = fields.Nested(AnthropicThinkingSchema)
    stream = StrictBoolean()

    @validates_schema
    def _cross_fields(self, data: dict, **_: Any) -> None:
        if (
            "tool_choice" in data
            and not data.get("tools")
            and data["tool_choice"]["type"] != "none"
        ):
            raise ValidationError("requires tools", "tool_choice")
        thinking = data.get("thinking") or {}
        if thinking.get("budget_tokens", 0) >= data["max_tokens"]:
            raise ValidationError("must be less than max_tokens", "thinking.budget_tokens")


class CountTokensRequestSchema(_Strict):
    """An Anthropic count_tokens request: a Messages request without the output settings."""

    model = MessagesRequestSchema._declared_fields["model"]
    messages = MessagesRequestSchema._declared_fields["messages"]
    system = MessagesRequestSchema._declared_fields["system"]
    tools = MessagesRequestSchema._declared_fields["tools"]
    tool_choice = MessagesRequestSchema._declared_fields["tool_choice"]
    thinking = MessagesRequestSchema._declared_fields["thinking"]
