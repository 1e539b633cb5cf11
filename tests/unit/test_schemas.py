"""The chat body schema: every DESIGN.md field, strict types, and errors that name the field."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from facade.estimates import output_cap
from facade.schemas.chat_request import ChatRequestSchema
from facade.validation import flatten_errors

SCHEMA = ChatRequestSchema()
MSG = [{"role": "user", "content": "hi"}]


def load(**fields):
    return SCHEMA.load({"messages": MSG, **fields})


def param_of(**fields) -> str:
    with pytest.raises(ValidationError) as info:
        load(**fields)
    return flatten_errors(info.value.messages)[0][0]


def test_minimal_body_gets_defaults():
    body = load()
    assert body["model"] is None and body["stream"] is False


def test_full_body_is_accepted():
    body = load(
        model="gpt-test",
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=10,
        max_completion_tokens=20,
        temperature=0.5,
        top_p=1,
        top_k=40,
        frequency_penalty=-2,
        presence_penalty=2,
        stop=["a", "b", "c", "d"],
        n=1,
        seed=42,
        user="u-1",
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
        logprobs=True,
        top_logprobs=3,
        logit_bias={"50256": -100},
        parallel_tool_calls=False,
    )
    assert output_cap(body) == 20
    assert output_cap(load(max_tokens=7)) == 7


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "0.5"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"top_p": 1.1}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"frequency_penalty": -2.1}, "frequency_penalty"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "5"}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": 5}, "stop"),
        ({"n": 0}, "n"),
        ({"model": 5}, "model"),
        ({"max_token": 5}, "max_token"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": True, "stream_options": {"include": True}}, "stream_options.include"),
        ({"logit_bias": {"1": 101}}, "logit_bias.1.value"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "x"}]}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x", "extra": 1}]}, "messages[0].extra"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ],
)
def test_bad_fields_are_named(fields, param):
    assert param_of(**fields) == param


def test_content_forms():
    parts = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    assert load(messages=[{"role": "user", "content": parts}])["messages"][0]["content"] == parts
    tool_msg = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    result = {"role": "tool", "tool_call_id": "c1", "content": "42"}
    body = load(messages=[*MSG, tool_msg, result])
    assert body["messages"][1]["content"] is None


def test_odd_unicode_is_kept():
    text = "e\u0301 \u202e reversed \u2028 \U0001f600 \x00 nul"
    assert load(messages=[{"role": "user", "content": text}])["messages"][0]["content"] == text


def test_todays_parameters_are_accepted():
    body = load(
        reasoning_effort="minimal",
        verbosity="high",
        modalities=["text", "audio"],
        audio={"voice": {"id": "voice-1"}, "format": "pcm16"},
        prediction={"type": "content", "content": [{"type": "text", "text": "x"}]},
        store=False,
        metadata={"k": "v"},
        service_tier="priority",
        prompt_cache_key="pck",
        safety_identifier="sid",
        web_search_options={
            "search_context_size": "high",
            "user_location": {"type": "approximate", "approximate": {"city": "Lisbon"}},
        },
        functions=[{"name": "f", "parameters": {"type": "object"}}],
        function_call={"name": "f"},
    )
    assert body["audio"]["format"] == "pcm16" and body["function_call"] == {"name": "f"}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"verbosity": 1}, "verbosity"),
        ({"modalities": ["video"]}, "modalities[0]"),
        ({"modalities": ["audio"]}, "audio"),
        ({"audio": {"voice": "alloy", "format": "ogg"}}, "audio.format"),
        ({"prediction": {"type": "content", "content": 5}}, "prediction.content"),
        ({"store": "yes"}, "store"),
        ({"metadata": {"k": 5}}, "metadata.k.value"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"service_tier": "gold"}, "service_tier"),
        ({"prompt_cache_key": 7}, "prompt_cache_key"),
        ({"safety_identifier": ["x"]}, "safety_identifier"),
        ({"web_search_options": {"search_context_size": "huge"}}, "web_search_options."),
        ({"functions": []}, "functions"),
        ({"function_call": {"name": "f"}}, "function_call"),
        ({"function_call": "required", "functions": [{"name": "f"}]}, "function_call"),
    ],
)
def test_todays_parameters_are_validated(fields, param):
    assert param_of(**fields).startswith(param)


def test_route_schema_keeps_extras_for_passthrough():
    from facade.schemas.chat_request import ROUTE_SCHEMA, extra_params

    body = ROUTE_SCHEMA.load({"messages": MSG, "min_p": 0.1, "chat_template_kwargs": {"a": 1}})
    assert body["min_p"] == 0.1 and sorted(extra_params(body)) == ["chat_template_kwargs", "min_p"]
    with pytest.raises(ValidationError):  # nested objects stay strict
        ROUTE_SCHEMA.load({"messages": [{"role": "user", "content": "x", "min_p": 1}]})


def user_parts(*parts: dict) -> dict:
    return {"messages": [{"role": "user", "content": list(parts)}]}


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "text", "text": "x", "cache": 1}, "messages[0].content[0].cache"),
        ({"type": "image_url", "image_url": {"url": "u", "detial": "low"}}, "image_url.detial"),
        ({"type": "image_url", "image_url": {"url": "u", "detail": "max"}}, "image_url.detail"),
        ({"type": "image_url", "image_url": "u"}, "messages[0].content[0].image_url"),
        ({"type": "input_audio"}, "messages[0].content[0].input_audio"),
        ({"type": "input_audio", "input_audio": {"data": "AA", "format": "ogg"}}, "format"),
        ({"type": "file", "file": {}}, "messages[0].content[0].file.file_data"),
        ({"type": "file", "file": {"file_id": 5}}, "messages[0].content[0].file.file_id"),
    ],
)
def test_content_parts_are_strict_and_named(part, param):
    """A misspelt or odd field inside a part is a 400 naming it, as at the top level: a
    vendor translation would otherwise drop it without a word."""
    assert param_of(**user_parts({"type": "text", "text": "ok"}, part)).endswith(
        param.replace("content[0]", "content[1]")
    )


def test_every_part_kind_loads_as_sent():
    parts = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a"}},
        {"type": "file", "file": {"file_id": "file-1"}},
    ]
    assert load(**user_parts(*parts))["messages"][0]["content"] == parts


def test_the_route_schema_loads_and_refuses_as_the_whole_schema_does():
    """The routes load with a schema of only the names a body holds (for speed): the same
    body and the same errors as the whole schema, and a bounded number of such schemas."""
    from facade.schemas.chat_request import CHAT_FIELDS, ROUTE_SCHEMA

    bodies = [
        {"messages": MSG},
        {"model": "m", "messages": MSG, "max_tokens": 5, "temperature": 0.5, "n": 2},
        {"messages": MSG, "stream": True, "stream_options": {"include_usage": True}},
        {"messages": MSG, "tool_choice": "auto"},
        {"messages": MSG, "stream_options": {"include_usage": True}},
        {"messages": MSG, "top_logprobs": 2},
        {"messages": []},
        {},
        {"model": "m"},
        {"messages": MSG, "max_tokens": 0, "seed": 2**64},
    ]
    for body in bodies:
        try:
            expected = SCHEMA.load(body)
        except ValidationError as err:
            with pytest.raises(ValidationError) as info:
                ROUTE_SCHEMA.load(body)
            assert info.value.messages == err.messages
        else:
            assert ROUTE_SCHEMA.load(body) == expected
    names = sorted(CHAT_FIELDS - {"messages", "stream_options"})
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            try:
                ROUTE_SCHEMA.load({"messages": MSG, names[i]: None, names[j]: None})
            except ValidationError:
                pass
    assert len(ROUTE_SCHEMA._by_names) <= 256


def test_the_responses_route_schema_loads_and_refuses_as_the_whole_one():
    from facade.schemas.responses_request import ResponsesRequestSchema

    whole, sparse = ResponsesRequestSchema(), ResponsesRequestSchema(sparse=True)
    bodies = [
        {"input": "x"},
        {"model": "m", "input": "x", "max_output_tokens": 5, "store": False, "stream": True},
        {"input": "x", "bogus": 1},
        {"input": "x", "max_output_tokens": 2**64},
        {"model": "m"},
        {},
    ]
    for body in bodies:
        try:
            expected = whole.load(body)
        except ValidationError as err:
            with pytest.raises(ValidationError) as info:
                sparse.load(body)
            assert info.value.messages == err.messages
        else:
            assert sparse.load(body) == expected
