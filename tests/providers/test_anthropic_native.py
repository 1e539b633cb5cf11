"""The Anthropic provider's native pass, for Messages clients: the body goes as sent, the
answer and every stream event come back as Claude sent them, beside the chat translation the
gateway meters."""

from __future__ import annotations

import json

import pytest

from facade.errors import UpstreamError
from facade.providers import anthropic
from facade.providers.base import ChatCall
from facade.providers.sse import SSEEvent
from tests.builders import model_config

NATIVE = {
    "model": "claude-test",
    "max_tokens": 300,
    "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "hi"}],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "stream": True,
}


def call(stream: bool, native: dict | None = NATIVE) -> ChatCall:
    body = {"model": "claude-test", "messages": [{"role": "user", "content": "hi"}]}
    return ChatCall(body, model_config(), "claude-up", 300, "rid", stream, None, native)


@pytest.mark.parametrize("stream", [False, True])
def test_native_payload_is_the_body_with_the_target_model(stream):
    payload = anthropic.build_payload(call(stream))
    expected = {**NATIVE, "model": "claude-up"}
    expected.pop("stream")
    if stream:
        expected["stream"] = True
    assert payload == expected


def test_count_tokens_payload_keeps_only_what_counts():
    payload = anthropic.count_tokens_payload(call(False))
    assert payload == {
        "model": "claude-up",
        "messages": NATIVE["messages"],
        "system": NATIVE["system"],
        "thinking": NATIVE["thinking"],
    }
    assert anthropic.parse_count({"input_tokens": 12}) == 12
    with pytest.raises(UpstreamError):
        anthropic.parse_count({"tokens": 12})


def test_native_answer_rides_along_on_the_chat_completion():
    data = {
        "id": "msg_1",
        "content": [
            {"type": "thinking", "thinking": "t", "signature": "S"},
            {"type": "text", "text": "hello"},
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 5},
    }
    answer = anthropic.parse_response(data, call(False))
    assert answer["choices"][0]["message"]["content"] == "hello"
    assert answer["usage"]["prompt_tokens"] == 8  # metered as chat
    assert answer["native"] is data
    assert "native" not in anthropic.parse_response(data, call(False, native=None))


def test_every_native_event_rides_on_a_chunk():
    events = [
        (
            "message_start",
            {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 4}}},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hm"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "hi"},
            },
        ),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 7},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    sse = [SSEEvent(name, json.dumps(data).encode()) for name, data in events]
    chunks = list(anthropic.translate_stream(sse, call(True)))
    assert [c["native"] for c in chunks if "native" in c] == [data for _, data in events]
    text = "".join(
        (ch["delta"].get("content") or "") for c in chunks for ch in c.get("choices") or ()
    )
    assert text == "hi"
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11}
    # without a native body, the same events make only the chat chunks
    plain = list(anthropic.translate_stream(sse, call(True, native=None)))
    assert all("native" not in c for c in plain) and len(plain) < len(chunks)


def test_thinking_blocks_facade_made_are_left_out_of_a_native_pass():
    """An earlier turn answered by another vendor has a thinking block without a signature:
    Claude would refuse it. Signed blocks (Claude's own) pass untouched."""
    signed = {"type": "thinking", "thinking": "mine", "signature": "SIG"}
    unsigned = {"type": "thinking", "thinking": "theirs", "signature": ""}
    text = {"type": "text", "text": "answer"}
    native = {
        **NATIVE,
        "messages": [
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": [unsigned, text]},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": [signed, text]},
            {"role": "user", "content": "q3"},
        ],
    }
    sent = anthropic.build_payload(call(False, native))["messages"]
    assert sent[1]["content"] == [text]
    assert sent[3]["content"] == [signed, text]
    assert native["messages"][1]["content"] == [unsigned, text]  # the caller's body untouched
