"""chat.completion (+ metrics) -> Anthropic message: pure translation, dicts in and out."""

from __future__ import annotations

import pytest

from facade.protocols.anthropic_messages_answer import STOP_REASONS, stop_reason, to_message, usage
from facade.providers.anthropic import FINISH_REASONS

METRICS = {"input_tokens": 10, "output_tokens": 4, "cost_usd": 0.1}


def answer(message: dict, finish: str = "stop", **extra) -> dict:
    return {
        "id": "chatcmpl-1",
        "model": "facade-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4},
        "metrics": METRICS,
        **extra,
    }


def test_text_answer():
    message = to_message(answer({"role": "assistant", "content": "hi"}), {}, "rid")
    assert message == {
        "id": "msg_rid",
        "type": "message",
        "role": "assistant",
        "model": "facade-model",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 4,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
        "metrics": METRICS,
    }


def test_tool_calls_and_reasoning():
    msg = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "let me think",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "not json"}},
        ],
    }
    message = to_message(answer(msg, "tool_calls"), {}, "rid")
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [
        {"type": "thinking", "thinking": "let me think", "signature": ""},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "c2", "name": "g", "input": {"arguments": "not json"}},
    ]


@pytest.mark.parametrize(
    ("finish", "matched", "expected"),
    [
        ("stop", None, ("end_turn", None)),
        ("length", None, ("max_tokens", None)),
        ("tool_calls", None, ("tool_use", None)),
        ("content_filter", None, ("refusal", None)),
        ("stop", "END", ("stop_sequence", "END")),
        ("stop", "OTHER", ("end_turn", None)),
        (None, None, ("end_turn", None)),
    ],
)
def test_stop_reasons(finish, matched, expected):
    assert stop_reason(finish, matched, ["END"]) == expected


def test_stop_table_is_the_providers_read_backwards():
    for finish, stop in STOP_REASONS.items():
        if finish != "function_call":
            assert FINISH_REASONS[stop] == finish


def test_usage_splits_cached_input_out():
    metrics = {
        "input_tokens": 100,
        "output_tokens": 5,
        "cached_input_tokens": 60,
        "cache_write_input_tokens": 30,
    }
    assert usage(metrics) == {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 60,
    }
    # metrics without the split: the upstream's OpenAI details
    upstream = {"prompt_tokens_details": {"cached_tokens": 40}}
    assert (
        usage({"input_tokens": 100, "output_tokens": 1}, upstream)["cache_read_input_tokens"] == 40
    )


def test_native_answer_passes_as_it_came_with_our_model_name():
    native = {
        "id": "msg_up",
        "type": "message",
        "role": "assistant",
        "model": "claude-upstream",
        "content": [
            {"type": "thinking", "thinking": "t", "signature": "SIG"},
            {"type": "text", "text": "hi"},
        ],
        "stop_reason": "stop_sequence",
        "stop_sequence": "END",
        "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 7},
    }
    message = to_message(answer({"content": "hi"}, native=native), {}, "rid")
    assert message == {**native, "model": "facade-model", "metrics": METRICS}
