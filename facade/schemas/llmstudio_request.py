"""The LLMstudio engine chat request (`POST /api/engine/chat/{provider}`), validated strictly.

`chat_input` is a string or OpenAI chat messages; `parameters` are chat parameters by their
OpenAI names, validated as the chat body validates them (facade/protocols/llmstudio.py);
`api_key` is the key as LLMstudio clients send it when they send no Authorization header.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from .fields import JSONObject, StrictBoolean, StrictString


class ChatInputField(fields.Field):
    """A string, or a non-empty list of message objects (checked as chat messages later)."""

    default_error_messages = {"invalid": "Must be a string or a non-empty list of messages."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
            return value
        raise self.make_error("invalid")


class LLMstudioChatSchema(Schema):
    """An LLMstudio engine chat request."""

    class Meta:
        unknown = RAISE

    model = StrictString(required=True, metadata={"description": "A configured model name."})
    chat_input = ChatInputField(
        required=True, metadata={"description": "A string, or OpenAI chat messages."}
    )
    parameters = JSONObject(
        allow_none=True,
        metadata={"description": "Chat parameters by their OpenAI names (temperature, ...)."},
    )
    is_stream = StrictBoolean(metadata={"description": "true: application/x-ndjson chunks."})
    session_id = StrictString(allow_none=True, validate=validate.Length(min=1, max=128))
    api_key = StrictString(
        allow_none=True, metadata={"description": "The key, when no Authorization header is sent."}
    )
