"""Responses request -> chat body: pure translation, dicts in and out."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from facade.errors import InvalidRequestError
from facade.protocols.responses_request import chat_body
from facade.schemas.responses_request import ResponsesRequestSchema
from facade.validation import flatten_errors

SCHEMA = ResponsesRequestSchema()


def load(**body) -> dict:
    body.setdefault("input", "hi")
    return SCHEMA.load(body)


def chat(history=None, **body) -> dict:
    return chat_body(load(**body), history)


def test_string_input_and_instructions():
    out = chat(model="m", input="hello", instructions="Be brief.")
    assert out == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello"},
        ],
        "stream": False,
    }


def test_sampling_reasoning_text_and_ids_map_to_chat_names():
    out = chat(
        max_output_tokens=50,
        temperature=0.2,
        top_p=0.9,
        user="u",
        safety_identifier="s",
        prompt_cache_key="k",
        service_tier="auto",
        reasoning={"effort": "low", "summary": "auto"},
        text={
            "format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}},
            "verbosity": "low",
        },
        metadata={"a": "b"},
        store=False,
        stream=True,
    )
    assert out["max_completion_tokens"] == 50
    assert (out["temperature"], out["top_p"]) == (0.2, 0.9)
    assert (out["user"], out["safety_identifier"], out["prompt_cache_key"]) == ("u", "s", "k")
    assert out["service_tier"] == "auto" and out["reasoning_effort"] == "low"
    assert out["verbosity"] == "low"
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "r", "schema": {"type": "object"}},
    }
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "metadata" not in out and "store" not in out  # kept by Facade, not sent upstream


def test_json_object_and_text_formats():
    assert chat(text={"format": {"type": "json_object"}})["response_format"] == {
        "type": "json_object"
    }
    assert "response_format" not in chat(text={"format": {"type": "text"}})
    with pytest.raises(InvalidRequestError) as err:
        chat(text={"format": {"type": "json_schema"}})
    assert err.value.param == "text.format"


def test_function_tools_and_choice():
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}
    out = chat(
        tools=[tool], tool_choice={"type": "function", "name": "f"}, parallel_tool_calls=False
    )
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "parameters": {"type": "object"}, "strict": True},
        }
    ]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert out["parallel_tool_calls"] is False
    assert chat(tools=[tool], tool_choice="required")["tool_choice"] == "required"
    with pytest.raises(InvalidRequestError):
        chat(tool_choice="required")


def test_items_become_chat_messages():
    items = [
        {"role": "developer", "content": "rules"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"},
                {
                    "type": "input_file",
                    "file_data": "data:application/pdf;base64,AA",
                    "filename": "a.pdf",
                },
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "status": "completed",
            "content": [{"type": "output_text", "text": "calling", "annotations": []}],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "id": "fc_1"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [{"type": "input_text", "text": "two"}],
        },
    ]
    assert chat(input=items)["messages"] == [
        {"role": "developer", "content": "rules"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AA", "detail": "low"},
                },
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]


def test_history_goes_after_the_instructions_and_before_the_input():
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    out = chat(history, instructions="sys", input="c")
    assert [m["content"] for m in out["messages"]] == ["sys", "a", "b", "c"]


def test_assistant_history_is_text_only():
    image = {"type": "input_image", "image_url": "https://x/y.png"}
    with pytest.raises(InvalidRequestError) as err:
        chat(input=[{"role": "assistant", "content": [image]}])
    assert err.value.param == "input[0].content[0]"


def test_file_ids_are_refused_naming_the_part():
    image = {"type": "input_image", "file_id": "file-1"}
    with pytest.raises(InvalidRequestError) as err:
        chat(input=[{"role": "user", "content": [image]}])
    assert err.value.param == "input[0].content[0]"


def param_of(**body) -> str:
    with pytest.raises(ValidationError) as info:
        load(**body)
    return flatten_errors(info.value.messages)[0][0]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 5}, "input"),
        ({"input": []}, "input"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        ({"input": [{"type": [], "role": "user", "content": "x"}]}, "input[0].type"),
        ({"input": [{"role": "user", "content": [{"type": {}}]}]}, "input[0].content[0].type"),
        ({"input": ["x"]}, "input[0]"),
        ({"tools": [[]]}, "tools[0].type"),
        ({"tool_choice": []}, "tool_choice"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"reasoning": {"effort": "max"}}, "reasoning.effort"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"store": "yes"}, "store"),
        ({"metadata": {"k": 1}}, "metadata.k.value"),
        ({"previous_response_id": 5}, "previous_response_id"),
        ({"background": True}, "background"),
        ({"max_output_token": 5}, "max_output_token"),
    ],
)
def test_bad_bodies_name_the_field(body, param):
    assert param_of(**body) == param
