"""What the Responses API answers, for the OpenAPI document (never dumped on the hot path)."""

from __future__ import annotations

from marshmallow import Schema, fields

from .answers import MetricsSchema


class ResponsesUsageSchema(Schema):
    input_tokens = fields.Integer()
    input_tokens_details = fields.Dict(metadata={"example": {"cached_tokens": 0}})
    output_tokens = fields.Integer()
    output_tokens_details = fields.Dict(metadata={"example": {"reasoning_tokens": 0}})
    total_tokens = fields.Integer()


class ResponseObjectSchema(Schema):
    id = fields.String(metadata={"example": "resp_0123abcd"})
    object = fields.String(metadata={"example": "response"})
    created_at = fields.Integer()
    status = fields.String(metadata={"description": "completed, incomplete, in_progress, failed"})
    error = fields.Dict(allow_none=True)
    incomplete_details = fields.Dict(allow_none=True)
    model = fields.String()
    output = fields.List(
        fields.Dict(), metadata={"description": "`message` and `function_call` items."}
    )
    output_text = fields.String()
    previous_response_id = fields.String(allow_none=True)
    store = fields.Boolean()
    metadata = fields.Dict()
    usage = fields.Nested(ResponsesUsageSchema, allow_none=True)
    metrics = fields.Nested(MetricsSchema)


class ResponseStreamEventSchema(Schema):
    type = fields.String(metadata={"example": "response.output_text.delta"})
    sequence_number = fields.Integer()
    response = fields.Nested(ResponseObjectSchema)
    output_index = fields.Integer()
    content_index = fields.Integer()
    item_id = fields.String()
    item = fields.Dict()
    part = fields.Dict()
    delta = fields.String()
    text = fields.String()
    arguments = fields.String()
