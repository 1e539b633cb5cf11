"""The Gemini protocol module: every request field translated or refused, answers mapped."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from facade.config import ProviderConfig
from facade.errors import InvalidRequestError, UnsupportedParameterError, UpstreamError
from facade.providers import gemini
from facade.providers.base import ChatCall, EmbeddingCall
from facade.providers.sse import SSEEvent
from tests.builders import model_config, provider_config

MODEL = model_config("gem", context_window=1000000, max_output_tokens=4096)
BASE = "https://generativelanguage.googleapis.com/v1beta"
USER = {"role": "user", "content": "hello"}
SECRET = "AIza-SECRET"


def config(base_url: str = BASE, api_key: str | None = SECRET) -> ProviderConfig:
    return provider_config("gem", "gemini", base_url=base_url, api_key=api_key)


def call(stream: bool = False, max_tokens: int | None = None, **body) -> ChatCall:
    body.setdefault("messages", [USER])
    return ChatCall(body, MODEL, "gemini-2.5-flash", max_tokens, "req-1", stream)


def payload(max_tokens: int | None = None, **body) -> dict:
    return gemini.build_payload(call(max_tokens=max_tokens, **body))


def sse(*events: dict) -> list[SSEEvent]:
    return [SSEEvent(None, json.dumps(e).encode()) for e in events]


# -- address and credentials --------------------------------------------------------------


def test_urls_and_the_key_only_in_a_header():
    cfg = config(BASE + "/")
    assert gemini.chat_url(cfg, "gemini-2.5-flash", False) == (
        f"{BASE}/models/gemini-2.5-flash:generateContent"
    )
    assert gemini.chat_url(cfg, "gemini-2.5-flash", True) == (
        f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert gemini.chat_url(cfg, "models/gemini-pro", False) == (
        f"{BASE}/models/gemini-pro:generateContent"
    )
    assert gemini.embedding_url(cfg, "text-embedding-004") == (
        f"{BASE}/models/text-embedding-004:batchEmbedContents"
    )
    assert gemini.auth_headers(cfg) == {"x-goog-api-key": SECRET}
    assert gemini.auth_headers(config(api_key=None)) == {}
    for url in (gemini.chat_url(cfg, "m", True), gemini.embedding_url(cfg, "m")):
        assert SECRET not in url and "key=" not in url


def test_odd_model_names_are_quoted_into_the_path():
    assert gemini.chat_url(config(), "my model?", False) == (
        f"{BASE}/models/my%20model%3F:generateContent"
    )


# -- request ------------------------------------------------------------------------------


def test_minimal_payload_sends_no_cap_when_the_caller_gives_none():
    assert payload() == {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def test_roles_system_instruction_and_merged_turns():
    out = payload(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "use French"}]},
            USER,
            {"role": "user", "content": "still there?"},
            {"role": "assistant", "content": "oui"},
            {"role": "user", "content": "bien"},
        ]
    )
    assert out["systemInstruction"] == {"parts": [{"text": "be brief"}, {"text": "use French"}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "hello"}, {"text": "still there?"}]},
        {"role": "model", "parts": [{"text": "oui"}]},
        {"role": "user", "parts": [{"text": "bien"}]},
    ]


def test_generation_config_carries_every_sampling_field():
    out = payload(
        max_tokens=100,
        temperature=1.5,
        top_p=0.9,
        top_k=40,
        n=2,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        stop="END",
        logprobs=True,
        top_logprobs=3,
    )
    assert out["generationConfig"] == {
        "temperature": 1.5,
        "topP": 0.9,
        "topK": 40,
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "maxOutputTokens": 100,
        "stopSequences": ["END"],
        "responseLogprobs": True,
        "logprobs": 3,
    }
    assert payload(stop=["a", "b"])["generationConfig"] == {"stopSequences": ["a", "b"]}


def test_defaults_are_not_sent():
    out = payload(
        n=1, presence_penalty=0, frequency_penalty=0.0, logprobs=False, temperature=None, seed=0
    )
    assert out["generationConfig"] == {"seed": 0}


def test_response_formats():
    assert "generationConfig" not in payload(response_format={"type": "text"})
    assert payload(response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    assert payload(response_format=fmt)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


def test_logit_bias_and_serial_tool_calls_are_refused_by_name():
    with pytest.raises(UnsupportedParameterError) as err:
        payload(logit_bias={"1": 5})
    assert err.value.param == "logit_bias"
    with pytest.raises(UnsupportedParameterError) as err:
        payload(tools=[WEATHER], parallel_tool_calls=False)
    assert err.value.param == "parallel_tool_calls"
    out = payload(logit_bias={}, tools=[WEATHER], parallel_tool_calls=True, user="u-1")
    assert "logit_bias" not in json.dumps(out) and "u-1" not in json.dumps(out)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def test_tools_become_function_declarations_with_json_schema():
    out = payload(tools=[WEATHER, {"type": "function", "function": {"name": "now"}}])
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": WEATHER["function"]["parameters"],
                },
                {"name": "now"},
            ]
        }
    ]
    assert "toolConfig" not in out


@pytest.mark.parametrize(
    "choice, expected",
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice, expected):
    out = payload(tools=[WEATHER], tool_choice=choice)
    assert out["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_calls_and_results_round_trip_by_name():
    messages = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
        {"role": "tool", "tool_call_id": "call_0", "content": '{"sky": "clear"}'},
        {"role": "user", "content": "thanks"},
    ]
    out = payload(messages=messages, tools=[WEATHER])
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "weather in Paris and Rome?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
                {"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}}},
            ],
        },
        {"role": "user", "parts": [{"text": "thanks"}]},
    ]


def test_a_tool_result_for_no_known_call_is_the_callers_error():
    with pytest.raises(InvalidRequestError) as err:
        payload(messages=[USER, {"role": "tool", "tool_call_id": "nope", "content": "x"}])
    assert err.value.param == "messages[1].tool_call_id"


def test_legacy_function_messages():
    messages = [
        USER,
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "[1, 2]"},
    ]
    out = payload(messages=messages)
    assert out["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "f", "args": {}}}],
    }
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"content": "[1, 2]"}}}
    ]


def test_tool_arguments_must_be_a_json_object():
    messages = [
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "1"}}
            ],
        },
    ]
    with pytest.raises(InvalidRequestError) as err:
        payload(messages=messages)
    assert err.value.param == "messages[1].tool_calls[0].function.arguments"


def test_inline_media():
    content = [
        {"type": "text", "text": "what is this?"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "low"},
        },
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
    ]
    out = payload(messages=[{"role": "user", "content": content}])
    assert out["contents"][0]["parts"] == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]


@pytest.mark.parametrize(
    "messages",
    [
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
            }
        ],
        [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}],
        [
            {
                "role": "system",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
                ],
            }
        ],
    ],
)
def test_media_gemini_cannot_take_here_is_refused(messages):
    with pytest.raises(UnsupportedParameterError) as err:
        payload(messages=messages)
    assert err.value.param == "messages[0].content"


# -- response -----------------------------------------------------------------------------


def answer(*parts: dict, finish: str = "STOP", **extra) -> dict:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": list(parts)}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10},
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-1",
        **extra,
    }


def test_text_answer_and_usage():
    out = gemini.parse_response(answer({"text": "Hello "}, {"text": "there"}), call())
    assert out["id"] == "resp-1"
    assert out["object"] == "chat.completion"
    assert out["model"] == "gemini-2.5-flash-001"
    assert out["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there"},
            "finish_reason": "stop",
        }
    ]
    assert out["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_thoughts_count_as_output_but_are_not_shown():
    data = answer({"text": "pondering", "thought": True}, {"text": "42"})
    data["usageMetadata"] = {
        "promptTokenCount": 5,
        "candidatesTokenCount": 1,
        "thoughtsTokenCount": 20,
        "cachedContentTokenCount": 2,
        "totalTokenCount": 26,
    }
    out = gemini.parse_response(data, call())
    assert out["choices"][0]["message"]["content"] == "42"
    assert out["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 21,
        "total_tokens": 26,
        "completion_tokens_details": {"reasoning_tokens": 20},
        "prompt_tokens_details": {"cached_tokens": 2},
    }


def test_function_calls_become_tool_calls_with_generated_ids():
    data = answer(
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_time", "args": {}, "id": "fc-7"}},
    )
    choice = gemini.parse_response(data, call())["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_0", "fc-7"]
    assert calls[0]["type"] == "function"
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}


@pytest.mark.parametrize(
    "reason, finish",
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(reason, finish):
    out = gemini.parse_response(answer({"text": "x"}, finish=reason), call())
    assert out["choices"][0]["finish_reason"] == finish


def test_several_candidates_are_several_choices():
    data = answer({"text": "a"})
    data["candidates"].append(
        {"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP", "index": 1}
    )
    out = gemini.parse_response(data, call(n=2))
    assert [(c["index"], c["message"]["content"]) for c in out["choices"]] == [(0, "a"), (1, "b")]


def test_a_blocked_prompt_is_a_content_filter_answer():
    data = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}
    out = gemini.parse_response(data, call())
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] == ""
    assert out["usage"]["prompt_tokens"] == 4


def test_logprobs_are_mapped():
    data = answer({"text": "Hi"})
    data["candidates"][0]["logprobsResult"] = {
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
        "topCandidates": [
            {
                "candidates": [
                    {"token": "Hi", "logProbability": -0.1},
                    {"token": "Yo", "logProbability": -2.5},
                ]
            }
        ],
    }
    choice = gemini.parse_response(data, call(logprobs=True, top_logprobs=2))["choices"][0]
    assert choice["logprobs"]["content"] == [
        {
            "token": "Hi",
            "logprob": -0.1,
            "bytes": [72, 105],
            "top_logprobs": [
                {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                {"token": "Yo", "logprob": -2.5, "bytes": [89, 111]},
            ],
        }
    ]


@pytest.mark.parametrize(
    "data", [{}, {"candidates": []}, {"candidates": "x"}, {"candidates": ["x"]}]
)
def test_nonsense_answers_are_upstream_errors(data):
    with pytest.raises(UpstreamError):
        gemini.parse_response(data, call())


# -- stream -------------------------------------------------------------------------------


def piece(text: str, finish: str | None = None, usage: dict | None = None) -> dict:
    candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    event = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash-001", "responseId": "r-9"}
    if usage:
        event["usageMetadata"] = usage
    return event


def usage_meta(prompt: int, output: int) -> dict:
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output,
    }


def contents(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


def test_text_stream_with_exact_usage_last():
    events = [
        piece("Hel", usage=usage_meta(6, 1)),
        piece("lo", usage=usage_meta(6, 2)),
        piece("!", "STOP", usage_meta(6, 3)),
    ]
    chunks = list(gemini.translate_stream(sse(*events), call(stream=True)))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["id"] == "r-9" and c["object"] == "chat.completion.chunk" for c in chunks)
    assert contents(chunks) == "Hello!"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1] == {
        "id": "r-9",
        "object": "chat.completion.chunk",
        "created": chunks[0]["created"],
        "model": "gemini-2.5-flash-001",
        "choices": [],
        "usage": {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9},
    }


def test_stream_without_usage_ends_without_a_usage_chunk():
    chunks = list(gemini.translate_stream(sse(piece("a"), piece("b", "MAX_TOKENS")), call()))
    assert contents(chunks) == "ab"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_a_usage_only_event_after_the_finish_is_fine():
    events = [piece("a", "STOP"), {"usageMetadata": usage_meta(2, 1)}]
    chunks = list(gemini.translate_stream(sse(*events), call()))
    assert chunks[-1]["usage"]["total_tokens"] == 3


def test_tool_call_stream_numbers_calls_across_events():
    first = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "a", "args": {"x": 1}}}],
                }
            }
        ]
    }
    second = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "b", "args": {}}}],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": usage_meta(3, 4),
    }
    chunks = list(gemini.translate_stream(sse(first, second), call(stream=True)))
    deltas = [
        d for c in chunks if c["choices"] for d in c["choices"][0]["delta"].get("tool_calls", ())
    ]
    assert [(d["index"], d["id"], d["function"]["name"]) for d in deltas] == [
        (0, "call_0", "a"),
        (1, "call_1", "b"),
    ]
    assert json.loads(deltas[0]["function"]["arguments"]) == {"x": 1}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_two_candidates_stream_side_by_side():
    event = {
        "candidates": [
            {"content": {"parts": [{"text": "a"}]}, "index": 0, "finishReason": "STOP"},
            {"content": {"parts": [{"text": "b"}]}, "index": 1},
        ]
    }
    last = {
        "candidates": [{"content": {"parts": [{"text": "c"}]}, "index": 1, "finishReason": "STOP"}]
    }
    chunks = list(gemini.translate_stream(sse(event, last), call(n=2)))
    by_index: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            by_index[choice["index"]] = by_index.get(choice["index"], "") + choice["delta"].get(
                "content", ""
            )
    assert by_index == {0: "a", 1: "bc"}
    with pytest.raises(UpstreamError, match="ended before"):
        list(gemini.translate_stream(sse(event), call(n=2)))


def test_a_blocked_prompt_in_a_stream():
    chunks = list(
        gemini.translate_stream(sse({"promptFeedback": {"blockReason": "OTHER"}}), call())
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize("keep", [0, 1, 2])
def test_a_stream_without_a_finish_reason_was_cut_off(keep):
    events = [piece("a"), piece("b"), piece("c", "STOP")][:keep]
    with pytest.raises(UpstreamError, match="ended before"):
        list(gemini.translate_stream(sse(*events), call(stream=True)))


def test_an_error_event_raises_with_its_message():
    events = sse(
        piece("a"),
        {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
    )
    with pytest.raises(UpstreamError, match="overloaded"):
        list(gemini.translate_stream(events, call(stream=True)))


def test_non_json_events_are_upstream_errors():
    with pytest.raises(UpstreamError, match="not JSON"):
        list(gemini.translate_stream([SSEEvent(None, b"[broken")], call()))


# -- errors -------------------------------------------------------------------------------


def test_error_message():
    body = {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}
    assert gemini.error_message(400, json.dumps(body).encode()) == "API key not valid."
    assert gemini.error_message(400, json.dumps([body]).encode()) == "API key not valid."
    assert gemini.error_message(502, b"<html>") is None
    assert gemini.error_message(400, b"[]") is None


# -- embeddings ---------------------------------------------------------------------------


def embedding_call(**body) -> EmbeddingCall:
    return EmbeddingCall(body, MODEL, "text-embedding-004", "req-2")


def test_embedding_payload():
    out = gemini.build_embedding_payload(embedding_call(input=["a b", "c"], dimensions=8, user="u"))
    assert out == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "a b"}]},
                "outputDimensionality": 8,
            },
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "c"}]},
                "outputDimensionality": 8,
            },
        ]
    }
    single = gemini.build_embedding_payload(embedding_call(input="one"))
    assert single == {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "one"}]}}
        ]
    }


def test_embedding_inputs_gemini_cannot_take_are_refused():
    with pytest.raises(UnsupportedParameterError) as err:
        gemini.build_embedding_payload(embedding_call(input=[[1, 2, 3]]))
    assert err.value.param == "input"
    with pytest.raises(UnsupportedParameterError) as err:
        gemini.build_embedding_payload(embedding_call(input="x", encoding_format="int8"))
    assert err.value.param == "encoding_format"


def test_embedding_response_with_estimated_usage():
    data = {"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 2.0]}]}
    out = gemini.parse_embedding_response(data, embedding_call(input=["abcde", "xy"]))
    assert out == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
            {"object": "embedding", "index": 1, "embedding": [0.25, 2.0]},
        ],
        "model": "text-embedding-004",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }


def test_base64_embeddings_are_little_endian_float32_like_openai():
    data = {"embeddings": [{"values": [0.5, -1.0]}]}
    out = gemini.parse_embedding_response(data, embedding_call(input="a", encoding_format="base64"))
    raw = base64.b64decode(out["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (0.5, -1.0)


@pytest.mark.parametrize("data", [{}, {"embeddings": []}, {"embeddings": [{"nope": 1}]}])
def test_embedding_nonsense_is_an_upstream_error(data):
    with pytest.raises(UpstreamError):
        gemini.parse_embedding_response(data, embedding_call(input="a"))


@pytest.mark.parametrize(
    "event",
    [
        {"candidates": [{"content": {"parts": ["text"]}, "finishReason": "STOP"}]},
        {"candidates": ["x"]},
        {"candidates": {"content": {}}},
    ],
)
def test_events_of_the_wrong_shape_are_upstream_errors(event):
    with pytest.raises(UpstreamError):
        list(gemini.translate_stream(sse(event), call()))


@pytest.mark.parametrize(
    "meta",
    [
        {"promptTokenCount": "7", "candidatesTokenCount": 3},
        {"promptTokenCount": 7, "candidatesTokenCount": -3},
        {"promptTokenCount": 7, "candidatesTokenCount": 3, "cachedContentTokenCount": "2"},
    ],
)
def test_odd_usage_counts_leave_the_usage_out_for_the_pipeline_to_estimate(meta):
    assert "usage" not in gemini.parse_response(answer({"text": "x"}, usageMetadata=meta), call())
