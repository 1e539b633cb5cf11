"""Anthropic Messages request -> internal chat body: pure translation, dicts in and out."""

from __future__ import annotations

import orjson
import pytest

from facade.protocols.anthropic_messages_request import reasoning_effort, system_text, to_chat
from facade.schemas.messages_request import MessagesRequestSchema


def load(**fields) -> dict:
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    return MessagesRequestSchema().load({**body, **fields})


def test_plain_request():
    assert to_chat(load()) == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 100,
    }


def test_system_blocks_become_one_system_message_and_cache_control_goes():
    system = [
        {"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "two"},
    ]
    chat = to_chat(load(system=system))
    assert chat["messages"][0] == {"role": "system", "content": "one\n\ntwo"}
    assert system_text("plain") == "plain" and system_text(None) == ""


def test_sampling_stop_user_and_stream():
    chat = to_chat(
        load(
            temperature=0.5,
            top_p=0.9,
            top_k=4,
            stop_sequences=["END", "STOP"],
            metadata={"user_id": "u1"},
            stream=True,
        )
    )
    assert (chat["temperature"], chat["top_p"], chat["top_k"]) == (0.5, 0.9, 4)
    assert chat["stop"] == ["END", "STOP"] and chat["user"] == "u1"
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice, expected):
    tools = [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]
    chat = to_chat(load(tools=tools, tool_choice=choice))
    assert chat["tool_choice"] == expected
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "parameters": {"type": "object"}, "description": "d"},
        }
    ]
    assert "parallel_tool_calls" not in chat


def test_disable_parallel_tool_use():
    tools = [{"name": "f", "input_schema": {}}]
    chat = to_chat(
        load(tools=tools, tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    )
    assert chat["parallel_tool_calls"] is False


def test_tool_use_and_tool_result_turns():
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "w", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "both done"},
                {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "a"},
                        {"type": "text", "text": "b"},
                        {
                            "type": "image",
                            "source": {"type": "url", "url": "https://x/y.png"},
                        },
                    ],
                },
            ],
        },
    ]
    chat = to_chat(load(messages=messages))
    assistant = chat["messages"][1]
    assert assistant["content"] == "Looking."  # thinking is Claude's own
    assert [c["id"] for c in assistant["tool_calls"]] == ["t1", "t2"]
    assert orjson.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert chat["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "t2", "content": "a\nb"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "both done"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ],
        },
    ]


def test_assistant_with_only_tool_calls_has_null_content():
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
    ]
    chat = to_chat(load(messages=messages))
    assert chat["messages"][1]["content"] is None
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "t", "content": ""}


def test_images_and_documents():
    source = {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": source},
                {"type": "document", "source": pdf, "title": "a.pdf"},
                {"type": "text", "text": "what?"},
            ],
        }
    ]
    parts = to_chat(load(messages=messages))["messages"][0]["content"]
    assert parts == [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
        },
        {"type": "text", "text": "what?"},
    ]


def test_text_blocks_join_into_one_string():
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
    assert to_chat(load(messages=messages))["messages"][0]["content"] == "a\nb"


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        (None, None),
        ({"type": "disabled"}, None),
        ({"type": "adaptive"}, "medium"),
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 8000}, "medium"),
        ({"type": "enabled", "budget_tokens": 20000}, "high"),
    ],
)
def test_thinking_as_reasoning_effort(thinking, effort):
    assert reasoning_effort(thinking) == effort
