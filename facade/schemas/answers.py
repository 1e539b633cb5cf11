"""What the API answers, for the OpenAPI document (the hot path never dumps through these)."""

from __future__ import annotations

from marshmallow import Schema, fields


class MetricsSchema(Schema):
    input_tokens = fields.Integer(metadata={"description": "Every input token, cached or not."})
    cached_input_tokens = fields.Integer(
        metadata={"description": "Input tokens read from the provider's prompt cache."}
    )
    cache_write_input_tokens = fields.Integer(
        metadata={"description": "Input tokens written to the provider's prompt cache."}
    )
    output_tokens = fields.Integer(metadata={"description": "Reasoning tokens included."})
    reasoning_tokens = fields.Integer()
    total_tokens = fields.Integer()
    cost_usd = fields.Float()
    latency_s = fields.Float()
    time_to_first_token_s = fields.Float()
    inter_token_latency_s = fields.Float()
    tokens_per_second = fields.Float()
    provider = fields.String()
    upstream_model = fields.String()
    attempts = fields.Integer(metadata={"description": "Targets tried, fallbacks included."})
    cache_hit = fields.Boolean(metadata={"description": "Answered from Facade's response cache."})


class UsageSchema(Schema):
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    total_tokens = fields.Integer()


class ChatMessageOutSchema(Schema):
    role = fields.String()
    content = fields.String(allow_none=True)
    tool_calls = fields.List(fields.Dict())
    refusal = fields.String(allow_none=True)


class ChoiceSchema(Schema):
    index = fields.Integer()
    message = fields.Nested(ChatMessageOutSchema)
    finish_reason = fields.String(allow_none=True)
    logprobs = fields.Dict(allow_none=True)


class ChatCompletionSchema(Schema):
    """An OpenAI chat.completion plus Facade's metrics."""

    id = fields.String()
    object = fields.String(metadata={"example": "chat.completion"})
    created = fields.Integer()
    model = fields.String(metadata={"description": "The Facade model that answered."})
    choices = fields.List(fields.Nested(ChoiceSchema))
    usage = fields.Nested(UsageSchema)
    metrics = fields.Nested(MetricsSchema)


class DeltaSchema(Schema):
    role = fields.String()
    content = fields.String(allow_none=True)
    tool_calls = fields.List(fields.Dict())


class ChunkChoiceSchema(Schema):
    index = fields.Integer()
    delta = fields.Nested(DeltaSchema)
    finish_reason = fields.String(allow_none=True)


class ChatCompletionChunkSchema(Schema):
    """One streamed chunk; the usage chunk (choices empty) also carries metrics."""

    id = fields.String()
    object = fields.String(metadata={"example": "chat.completion.chunk"})
    created = fields.Integer()
    model = fields.String()
    choices = fields.List(fields.Nested(ChunkChoiceSchema))
    usage = fields.Nested(UsageSchema, allow_none=True)
    metrics = fields.Nested(MetricsSchema)


class ErrorDetailSchema(Schema):
    type = fields.String(metadata={"example": "invalid_request_error"})
    param = fields.String(allow_none=True, metadata={"example": "temperature"})


class ErrorDataSchema(Schema):
    error = fields.Nested(ErrorDetailSchema)
    request_id = fields.String()


class ErrorEnvelopeSchema(Schema):
    success = fields.Boolean(metadata={"example": False})
    code = fields.String(metadata={"example": "400"})
    message = fields.String(metadata={"example": "temperature: Must be between 0 and 2."})
    data = fields.Nested(ErrorDataSchema)


class StatusSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadinessSchema(StatusSchema):
    dependencies = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "Each shared store (postgresql or sqlite, redis): up or down. A store "
            "being down does not fail readiness; requests that need it get 503.",
            "example": {"postgresql": "up", "redis": "down"},
        },
    )
