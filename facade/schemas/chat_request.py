"""The chat request body: the OpenAI Chat Completions fields, validated strictly.

Unknown fields are rejected at every level (`StrictSchema`): a typo such as
`max_token` silently ignored would cost the caller money. The routes load with
`ROUTE_SCHEMA`, which sets top-level names outside `CHAT_FIELDS` aside before validating and
puts them back after: such a name may be a vendor extra that a provider lists in
`passthrough_params`, and the pipeline refuses it (400 naming it) when no provider the
request can reach lists it. The spec still shows the strict contract.
"""

from __future__ import annotations

from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from .chat_content import ContentField
from .fields import (
    JSONObject,
    SparseSchema,
    StopField,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictSchema,
    StrictString,
    one_of,
)

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
LEVELS = ("low", "medium", "high")
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority")
AUDIO_FORMATS = ("wav", "aac", "mp3", "flac", "opus", "pcm16")


class FunctionCallSchema(StrictSchema):
    name = StrictString(required=True)
    arguments = StrictString(required=True)


class ToolCallSchema(StrictSchema):
    id = StrictString(required=True)
    type = StrictString(load_default="function", validate=one_of("function"))
    function = fields.Nested(FunctionCallSchema, required=True)


class MessageSchema(StrictSchema):
    role = StrictString(required=True, validate=one_of(*ROLES))
    content = ContentField(allow_none=True, load_default=None)
    name = StrictString()
    tool_calls = fields.List(fields.Nested(ToolCallSchema))
    tool_call_id = StrictString()
    function_call = fields.Nested(FunctionCallSchema)
    refusal = StrictString(allow_none=True)

    @validates_schema
    def _content_rules(self, data: dict, **_: Any) -> None:
        if data.get("content") is None and not (
            data.get("tool_calls") or data.get("function_call")
        ):
            if data["role"] != "assistant" or "refusal" not in data:
                raise ValidationError(
                    "content may be null only on an assistant message with tool_calls",
                    "content",
                )
        if data["role"] == "tool" and "tool_call_id" not in data:
            raise ValidationError("required on a tool message", "tool_call_id")


# Roles whose message needs nothing but a string `content` (a tool message needs its id).
PLAIN_ROLES = frozenset(("system", "developer", "user", "assistant"))


class MessageList(fields.List):
    """`messages`: a list of MessageSchema, where a plain `{role, content: "text"}` message,
    most of any conversation, is checked inline. Through marshmallow each message costs
    about 17 us, which made a 2048-message body hold a worker for 35 ms."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.Nested(MessageSchema), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        result, errors = [], {}
        for idx, each in enumerate(value):
            if (
                type(each) is dict
                and len(each) == 2
                and type(each.get("content")) is str
                and each.get("role") in PLAIN_ROLES
            ):
                result.append({"role": each["role"], "content": each["content"]})
                continue
            try:
                result.append(self.inner.deserialize(each, **kwargs))
            except ValidationError as error:
                if error.valid_data is not None:
                    result.append(error.valid_data)
                errors[idx] = error.messages
        if errors:
            raise ValidationError(errors, valid_data=result)
        return result


class StreamOptionsSchema(StrictSchema):
    include_usage = StrictBoolean(load_default=False)


class FunctionDefSchema(StrictSchema):
    name = StrictString(required=True, validate=validate.Length(min=1, max=64))
    description = StrictString()
    parameters = JSONObject()
    strict = StrictBoolean(allow_none=True)


class ToolSchema(StrictSchema):
    type = StrictString(required=True, validate=one_of("function"))
    function = fields.Nested(FunctionDefSchema, required=True)


class ToolChoiceFunctionSchema(StrictSchema):
    name = StrictString(required=True)


class ToolChoiceObjectSchema(StrictSchema):
    type = StrictString(required=True, validate=one_of("function"))
    function = fields.Nested(ToolChoiceFunctionSchema, required=True)


class _ChoiceField(fields.Field):
    """A word from `words` or an object `schema` loads; the schema is built once, at import
    (building a marshmallow schema per request cost ~150 us)."""

    words: tuple[str, ...] = ()
    schema: Schema

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value in self.words:
            return value
        if isinstance(value, dict):
            try:
                return self.schema.load(value)
            except ValidationError:
                pass
        raise self.make_error("invalid")


class ToolChoiceField(_ChoiceField):
    """`"none"`, `"auto"`, `"required"`, or `{"type": "function", "function": {"name"}}`."""

    default_error_messages = {
        "invalid": "Must be 'none', 'auto', 'required' or a function choice object."
    }
    words = ("none", "auto", "required")
    schema = ToolChoiceObjectSchema()


class FunctionCallChoiceField(_ChoiceField):
    """The legacy `function_call`: `"none"`, `"auto"` or `{"name": ...}`."""

    default_error_messages = {"invalid": "Must be 'none', 'auto' or an object naming a function."}
    words = ("none", "auto")
    schema = ToolChoiceFunctionSchema()


class VoiceField(fields.Field):
    """An audio voice: a built-in voice name or `{"id": <custom voice>}`."""

    default_error_messages = {"invalid": "Must be a voice name or an object with a voice id."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and 0 < len(value) <= 64:
            return value
        if isinstance(value, dict) and set(value) == {"id"} and isinstance(value["id"], str):
            return value
        raise self.make_error("invalid")


class AudioOutputSchema(StrictSchema):
    voice = VoiceField(required=True)
    format = StrictString(required=True, validate=one_of(*AUDIO_FORMATS))


class PredictionContentField(fields.Field):
    """Predicted output: a string or an array of text parts."""

    default_error_messages = {"invalid": "Must be a string or an array of text parts."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(
            isinstance(p, dict)
            and set(p) == {"type", "text"}
            and p["type"] == "text"
            and isinstance(p["text"], str)
            for p in value
        ):
            return value
        raise self.make_error("invalid")


class PredictionSchema(StrictSchema):
    type = StrictString(required=True, validate=one_of("content"))
    content = PredictionContentField(required=True)


class ApproximateLocationSchema(StrictSchema):
    city = StrictString(validate=validate.Length(max=256))
    country = StrictString(validate=validate.Length(max=8))
    region = StrictString(validate=validate.Length(max=256))
    timezone = StrictString(validate=validate.Length(max=64))


class UserLocationSchema(StrictSchema):
    type = StrictString(required=True, validate=one_of("approximate"))
    approximate = fields.Nested(ApproximateLocationSchema, required=True)


class WebSearchOptionsSchema(StrictSchema):
    search_context_size = StrictString(validate=one_of(*LEVELS))
    user_location = fields.Nested(UserLocationSchema, allow_none=True)


def metadata_field() -> fields.Dict:
    """OpenAI's `metadata`: at most 16 string pairs, keys up to 64 and values up to 512."""
    return fields.Dict(
        keys=StrictString(validate=validate.Length(min=1, max=64)),
        values=StrictString(validate=validate.Length(max=512)),
        validate=validate.Length(max=16),
        allow_none=True,
    )


class JSONSchemaFormatSchema(StrictSchema):
    name = StrictString(required=True)
    description = StrictString()
    schema = JSONObject()
    strict = StrictBoolean(allow_none=True)


class ResponseFormatSchema(StrictSchema):
    type = StrictString(required=True, validate=one_of("text", "json_object", "json_schema"))
    json_schema = fields.Nested(JSONSchemaFormatSchema)

    @validates_schema
    def _schema_given(self, data: dict, **_: Any) -> None:
        if data["type"] == "json_schema" and "json_schema" not in data:
            raise ValidationError("required when type is json_schema", "json_schema")


def _penalty() -> StrictNumber:
    return StrictNumber(allow_none=True, validate=validate.Range(-2, 2))


class ChatRequestSchema(SparseSchema):
    """An OpenAI Chat Completions request."""

    def __init__(self, *, keep_extras: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keep_extras = keep_extras

    def load(self, data: Any, **kwargs: Any) -> Any:
        """Validate; with `keep_extras`, unknown top-level names come back unvalidated."""
        if self.keep_extras and isinstance(data, dict) and not CHAT_FIELDS.issuperset(data):
            extras = {k: v for k, v in data.items() if k not in CHAT_FIELDS}
            body = super().load({k: v for k, v in data.items() if k in CHAT_FIELDS}, **kwargs)
            body.update(extras)
            return body
        return super().load(data, **kwargs)

    model = StrictString(
        allow_none=True,
        load_default=None,
        metadata={"description": "A configured model name; absent or 'auto' lets Facade pick."},
    )
    messages = MessageList(required=True, validate=validate.Length(min=1))
    stream = StrictBoolean(load_default=False)
    stream_options = fields.Nested(StreamOptionsSchema, allow_none=True)
    max_tokens = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    max_completion_tokens = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    temperature = StrictNumber(allow_none=True, validate=validate.Range(0, 2))
    top_p = StrictNumber(allow_none=True, validate=validate.Range(0, 1))
    top_k = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    frequency_penalty = _penalty()
    presence_penalty = _penalty()
    stop = StopField(allow_none=True)
    n = StrictInteger(allow_none=True, validate=validate.Range(1, 128))
    seed = StrictInteger(allow_none=True)
    user = StrictString(validate=validate.Length(max=256))
    tools = fields.List(fields.Nested(ToolSchema), validate=validate.Length(max=128))
    tool_choice = ToolChoiceField()
    response_format = fields.Nested(ResponseFormatSchema)
    logprobs = StrictBoolean(allow_none=True)
    top_logprobs = StrictInteger(allow_none=True, validate=validate.Range(0, 20))
    logit_bias = fields.Dict(
        keys=StrictString(),
        values=StrictNumber(validate=validate.Range(-100, 100)),
        allow_none=True,
    )
    parallel_tool_calls = StrictBoolean()
    functions = fields.List(
        fields.Nested(FunctionDefSchema), validate=validate.Length(min=1, max=128)
    )
    function_call = FunctionCallChoiceField()
    reasoning_effort = StrictString(allow_none=True, validate=one_of(*REASONING_EFFORTS))
    verbosity = StrictString(allow_none=True, validate=one_of(*LEVELS))
    modalities = fields.List(
        StrictString(validate=one_of("text", "audio")),
        allow_none=True,
        validate=validate.Length(min=1, max=2),
    )
    audio = fields.Nested(AudioOutputSchema, allow_none=True)
    prediction = fields.Nested(PredictionSchema, allow_none=True)
    store = StrictBoolean(allow_none=True)
    metadata = metadata_field()
    service_tier = StrictString(allow_none=True, validate=one_of(*SERVICE_TIERS))
    prompt_cache_key = StrictString(allow_none=True, validate=validate.Length(max=1024))
    safety_identifier = StrictString(allow_none=True, validate=validate.Length(max=256))
    web_search_options = fields.Nested(WebSearchOptionsSchema, allow_none=True)

    @validates_schema
    def _cross_fields(self, data: dict, **_: Any) -> None:
        if data.get("stream_options") and not data.get("stream"):
            raise ValidationError("only allowed when stream is true", "stream_options")
        if data.get("top_logprobs") is not None and not data.get("logprobs"):
            raise ValidationError("requires logprobs to be true", "top_logprobs")
        if "tool_choice" in data and not data.get("tools") and data["tool_choice"] != "none":
            raise ValidationError("requires tools", "tool_choice")
        if "function_call" in data and not data.get("functions"):
            if data["function_call"] != "none":
                raise ValidationError("requires functions", "function_call")
        if "audio" in (data.get("modalities") or ()) and not data.get("audio"):
            raise ValidationError("audio output needs the audio parameter", "audio")


# Every top-level name the schema knows (the rest may be a provider's passthrough extra).
CHAT_FIELDS = frozenset(ChatRequestSchema().fields)
# What the routes load with: nested objects stay strict, the top level keeps extras.
ROUTE_SCHEMA = ChatRequestSchema(keep_extras=True, sparse=True)


def extra_params(body: dict) -> list[str]:
    """The names in a loaded body that are no chat parameter (vendor extras, or typos)."""
    return [name for name in body if name not in CHAT_FIELDS]
