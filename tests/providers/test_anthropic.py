"""The Anthropic protocol module: every request field translated or refused, answers mapped."""

from __future__ import annotations

import json

import pytest

from facade.config import ProviderConfig
from facade.errors import InvalidRequestError, UnsupportedParameterError, UpstreamError
from facade.providers import anthropic
from facade.providers.base import ChatCall
from facade.providers.sse import SSEEvent
from tests.builders import model_config, provider_config

MODEL = model_config("claude", context_window=200000, max_output_tokens=1234)
USER = {"role": "user", "content": "hello"}


def config(
    base_url: str = "https://api.anthropic.com", api_key: str | None = "sk-ant"
) -> ProviderConfig:
    return provider_config("claude", "anthropic", base_url=base_url, api_key=api_key)


def call(stream: bool = False, max_tokens: int | None = None, **body) -> ChatCall:
    body.setdefault("messages", [USER])
    return ChatCall(body, MODEL, "claude-sonnet-4", max_tokens, "req-1", stream)


def payload(**body) -> dict:
    return anthropic.build_payload(call(**body))


def sse(*events: tuple[str, dict]) -> list[SSEEvent]:
    return [SSEEvent(name, json.dumps(data).encode()) for name, data in events]


# -- address and credentials --------------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    ["https://api.anthropic.com", "https://api.anthropic.com/", "https://api.anthropic.com/v1"],
)
def test_url_never_doubles_v1(base):
    for stream in (False, True):
        url = anthropic.chat_url(config(base), "claude-sonnet-4", stream)
        assert url == "https://api.anthropic.com/v1/messages"


def test_headers_carry_key_and_version_not_bearer():
    assert anthropic.auth_headers(config()) == {
        "x-api-key": "sk-ant",
        "anthropic-version": "2023-06-01",
    }
    assert anthropic.auth_headers(config(api_key=None)) == {"anthropic-version": "2023-06-01"}


# -- request ------------------------------------------------------------------------------


def test_minimal_payload_uses_the_model_cap_when_the_caller_gives_none():
    assert payload() == {
        "model": "claude-sonnet-4",
        "max_tokens": 1234,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
    }


def test_callers_cap_wins_and_stream_is_asked_for():
    out = anthropic.build_payload(call(stream=True, max_tokens=50))
    assert out["max_tokens"] == 50
    assert out["stream"] is True


def test_system_and_developer_messages_are_lifted_in_order():
    out = payload(
        messages=[
            {"role": "system", "content": "be brief"},
            USER,
            {"role": "developer", "content": [{"type": "text", "text": "use French"}]},
            {"role": "assistant", "content": "bonjour"},
            {"role": "user", "content": "again"},
        ]
    )
    assert out["system"] == "be brief\n\nuse French"
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]


def test_sampling_parameters_and_stop_sequences():
    out = payload(temperature=0.3, top_p=0.9, top_k=40, stop="END")
    assert (out["temperature"], out["top_p"], out["top_k"]) == (0.3, 0.9, 40)
    assert out["stop_sequences"] == ["END"]
    assert payload(stop=["a", "b"])["stop_sequences"] == ["a", "b"]


def test_temperature_up_to_one_passes_and_above_is_refused():
    assert payload(temperature=1)["temperature"] == 1
    with pytest.raises(UnsupportedParameterError) as err:
        payload(temperature=1.5)
    assert err.value.param == "temperature"
    assert err.value.status == 400
    assert "anthropic" in err.value.message


@pytest.mark.parametrize(
    "field, value, param",
    [
        ("n", 2, "n"),
        ("logprobs", True, "logprobs"),
        ("logit_bias", {"50256": -100}, "logit_bias"),
        ("frequency_penalty", 0.5, "frequency_penalty"),
        ("presence_penalty", -1.0, "presence_penalty"),
        ("seed", 7, "seed"),
        ("seed", 0, "seed"),
        ("response_format", {"type": "json_object"}, "response_format"),
        (
            "response_format",
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            "response_format",
        ),
    ],
)
def test_what_claude_cannot_honour_is_refused_by_name(field, value, param):
    with pytest.raises(UnsupportedParameterError) as err:
        payload(**{field: value})
    assert err.value.param == param


def test_top_logprobs_is_refused_with_logprobs():
    with pytest.raises(UnsupportedParameterError) as err:
        payload(logprobs=True, top_logprobs=3)
    assert err.value.param == "logprobs"


def test_default_values_of_unsupported_parameters_are_accepted_and_not_sent():
    out = payload(
        n=1,
        logprobs=False,
        logit_bias={},
        frequency_penalty=0,
        presence_penalty=0.0,
        response_format={"type": "text"},
        seed=None,
        temperature=None,
    )
    for name in ("n", "logprobs", "logit_bias", "frequency_penalty", "seed", "temperature"):
        assert name not in out


def test_user_becomes_metadata_user_id():
    assert payload(user="u-42")["metadata"] == {"user_id": "u-42"}


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}


def test_tools_become_input_schemas():
    bare = {"type": "function", "function": {"name": "now"}}
    out = payload(tools=[WEATHER, bare])
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER["function"]["parameters"],
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in out


@pytest.mark.parametrize(
    "choice, parallel, expected",
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        (None, True, None),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice_and_parallel_tool_calls(choice, parallel, expected):
    body = {"tools": [WEATHER]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert payload(**body).get("tool_choice") == expected


def test_tool_choice_none_without_tools_sends_neither():
    out = payload(tool_choice="none")
    assert "tools" not in out and "tool_choice" not in out


def test_tool_calls_and_results_round_trip_with_merged_turns():
    messages = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "rain"}]},
        {"role": "user", "content": "thanks"},
        {"role": "user", "content": "and tomorrow?"},
    ]
    out = payload(messages=messages, tools=[WEATHER])
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rain"},
                {"type": "text", "text": "thanks"},
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]


def test_tool_results_are_placed_before_text_in_a_merged_user_turn():
    messages = [
        USER,
        {
            "role": "assistant",
            "content": "let me look",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "user", "content": "hurry"},
        {"role": "tool", "tool_call_id": "t1", "content": ""},
    ]
    out = payload(messages=messages)
    assert out["messages"][1]["content"][0] == {"type": "text", "text": "let me look"}
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1"},
        {"type": "text", "text": "hurry"},
    ]


def test_tool_arguments_that_are_not_a_json_object_are_the_callers_error():
    for arguments in ("not json", "[1, 2]"):
        messages = [
            USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "t",
                        "type": "function",
                        "function": {"name": "f", "arguments": arguments},
                    }
                ],
            },
        ]
        with pytest.raises(InvalidRequestError) as err:
            payload(messages=messages)
        assert err.value.param == "messages[1].tool_calls[0].function.arguments"


def test_legacy_function_messages_become_paired_tool_blocks():
    messages = [
        USER,
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "42"},
    ]
    out = payload(messages=messages)
    use = out["messages"][1]["content"][0]
    result = out["messages"][2]["content"][0]
    assert use["type"] == "tool_use" and use["name"] == "f"
    assert result == {"type": "tool_result", "tool_use_id": use["id"], "content": "42"}


def test_a_function_message_without_its_call_is_refused():
    with pytest.raises(InvalidRequestError) as err:
        payload(messages=[USER, {"role": "function", "name": "f", "content": "42"}])
    assert err.value.param == "messages[1].name"


def test_images_by_data_url_and_by_http_url():
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {
            "type": "image_url",
            "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
        },
    ]
    out = payload(messages=[{"role": "user", "content": content}])
    assert out["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_pdf_files_become_documents():
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    }
    out = payload(messages=[{"role": "user", "content": [part]}])
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        }
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": "data:image/png,raw-not-base64"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-123"}},
        {"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}},
    ],
)
def test_content_parts_claude_cannot_take_are_refused(part):
    with pytest.raises(UnsupportedParameterError) as err:
        payload(messages=[{"role": "user", "content": [part]}])
    assert err.value.param == "messages[0].content"


def test_images_in_a_system_message_are_refused():
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    with pytest.raises(UnsupportedParameterError):
        payload(messages=[{"role": "system", "content": [image]}, USER])


def test_hints_without_a_claude_counterpart_are_not_sent():
    out = payload(messages=[{"role": "user", "content": "hi", "name": "alice"}])
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


# -- response -----------------------------------------------------------------------------


def test_text_answer_with_cache_tokens_in_the_prompt_count():
    data = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "x"},
            {"type": "text", "text": "Hello "},
            {"type": "text", "text": "there"},
        ],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 3,
            "cache_read_input_tokens": 2,
        },
    }
    out = anthropic.parse_response(data, call())
    assert out["id"] == "msg_1"
    assert out["object"] == "chat.completion"
    assert out["model"] == "claude-sonnet-4-20250514"
    assert out["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there"},
            "finish_reason": "stop",
        }
    ]
    assert out["usage"] == {
        "prompt_tokens": 15,
        "completion_tokens": 5,
        "total_tokens": 20,
        "prompt_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 3},
    }


def test_tool_use_answer_becomes_tool_calls():
    data = {
        "content": [
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    choice = anthropic.parse_response(data, call())["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [tool_call] = choice["message"]["tool_calls"]
    assert tool_call["id"] == "toolu_9"
    assert tool_call["type"] == "function"
    assert tool_call["function"]["name"] == "get_weather"
    assert json.loads(tool_call["function"]["arguments"]) == {"city": "Paris"}


@pytest.mark.parametrize(
    "stop_reason, finish",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_stop_reasons(stop_reason, finish):
    data = {"content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}
    out = anthropic.parse_response(data, call())
    assert out["choices"][0]["finish_reason"] == finish
    assert "usage" not in out


@pytest.mark.parametrize("data", [{}, {"content": "text"}, {"content": ["text"]}])
def test_nonsense_answers_are_upstream_errors(data):
    with pytest.raises(UpstreamError):
        anthropic.parse_response(data, call())


@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": "12", "output_tokens": 3},
        {"input_tokens": 12, "output_tokens": -3},
        {"input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": [1]},
        {"input_tokens": True, "output_tokens": 3},
    ],
)
def test_odd_usage_counts_leave_the_usage_out_for_the_pipeline_to_estimate(usage):
    data = {"content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn", "usage": usage}
    assert "usage" not in anthropic.parse_response(data, call())
    events = text_stream("x")
    events[-2][1]["usage"] = usage  # message_delta: the counts so far
    chunks = list(anthropic.translate_stream(sse(*events), call(stream=True)))
    assert chunks[-1]["choices"] and all("usage" not in c for c in chunks)


# -- stream -------------------------------------------------------------------------------


def message_start(input_tokens: int = 12, **usage) -> tuple[str, dict]:
    message = {
        "id": "msg_s",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [],
        "usage": {"input_tokens": input_tokens, "output_tokens": 1, **usage},
    }
    return "message_start", {"type": "message_start", "message": message}


def text_stream(*pieces: str, stop_reason: str = "end_turn", output: int = 3) -> list[tuple]:
    events = [
        message_start(cache_read_input_tokens=4),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for piece in pieces:
        delta = {"type": "text_delta", "text": piece}
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        )
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def test_text_stream_gives_role_content_finish_and_exact_usage_last():
    chunks = list(
        anthropic.translate_stream(sse(*text_stream("Hel", "lo", "!")), call(stream=True))
    )
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "msg_s" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello!"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 16,
        "completion_tokens": 3,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_max_tokens_stop_in_a_stream_is_length():
    chunks = list(
        anthropic.translate_stream(sse(*text_stream("a", stop_reason="max_tokens")), call())
    )
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def test_tool_use_stream_gives_indexed_tool_call_deltas():
    def block_start(index, block):
        return "content_block_start", {
            "type": "content_block_start",
            "index": index,
            "content_block": block,
        }

    def json_delta(index, partial):
        delta = {"type": "input_json_delta", "partial_json": partial}
        return "content_block_delta", {
            "type": "content_block_delta",
            "index": index,
            "delta": delta,
        }

    events = [
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Checking."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        block_start(1, {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
        json_delta(1, ""),
        json_delta(1, '{"city": '),
        json_delta(1, '"Paris"}'),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        block_start(2, {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}),
        json_delta(2, "{}"),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 30},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    chunks = list(anthropic.translate_stream(sse(*events), call(stream=True)))
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls", ()):
                entry = calls.setdefault(delta["index"], {"arguments": ""})
                if "id" in delta:
                    entry.update(id=delta["id"], type=delta["type"], name=delta["function"]["name"])
                entry["arguments"] += delta["function"]["arguments"]
    assert calls == {
        0: {
            "id": "toolu_a",
            "type": "function",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        1: {"id": "toolu_b", "type": "function", "name": "get_time", "arguments": "{}"},
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 30


def test_error_event_raises_with_the_vendors_message():
    events = text_stream("a")[:4] + [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    ]
    stream = anthropic.translate_stream(sse(*events), call(stream=True))
    with pytest.raises(UpstreamError, match="Overloaded"):
        list(stream)


@pytest.mark.parametrize("keep", [0, 3, 6])
def test_a_stream_without_message_stop_was_cut_off(keep):
    events = text_stream("a", "b")[:keep]
    with pytest.raises(UpstreamError, match="ended before"):
        list(anthropic.translate_stream(sse(*events), call(stream=True)))


def test_non_json_event_is_an_upstream_error():
    events = [SSEEvent("message_start", b"{oops")]
    with pytest.raises(UpstreamError, match="not JSON"):
        list(anthropic.translate_stream(events, call(stream=True)))


def test_unknown_events_are_ignored():
    events = text_stream("a")
    events.insert(3, ("future_event", {"type": "future_event", "x": 1}))
    chunks = list(anthropic.translate_stream(sse(*events), call(stream=True)))
    assert chunks[-1]["usage"]["completion_tokens"] == 3


# -- errors -------------------------------------------------------------------------------


def test_error_message_reads_the_vendor_error_body():
    body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "prompt is too long"},
    }
    assert anthropic.error_message(400, json.dumps(body).encode()) == "prompt is too long"
    assert anthropic.error_message(500, b"<html>bad gateway</html>") is None
    assert anthropic.error_message(400, b'{"error": "flat"}') is None
    assert anthropic.error_message(400, b"[1]") is None


def test_anthropic_has_no_embeddings():
    assert not hasattr(anthropic, "build_embedding_payload")


def test_events_of_the_wrong_shape_are_upstream_errors():
    events = [
        ("message_start", {"type": "message_start", "message": "x"}),
        ("content_block_start", {"type": "content_block_start", "content_block": []}),
        ("content_block_delta", {"type": "content_block_delta", "delta": "x"}),
    ]
    with pytest.raises(UpstreamError, match="ended before"):
        list(anthropic.translate_stream(sse(*events), call()))
    with pytest.raises(UpstreamError, match="unexpected shape"):
        list(anthropic.translate_stream([SSEEvent(None, b"[1]")], call()))
