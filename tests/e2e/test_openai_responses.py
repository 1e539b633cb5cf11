"""The official OpenAI SDK's Responses API against gunicorn, over every provider kind.

`responses.create` plain and streamed (the SDK's own event parsing, and its `responses.stream`
helper that checks event order and identities), a function tool round trip through
`function_call_output`, `previous_response_id`, `responses.retrieve`, the SDK's error
classes; against the OpenAI-compatible fake and the Anthropic and Gemini wire fakes.
"""

from __future__ import annotations

import time

import openai
import pytest
import requests
from openai import OpenAI

from tests.support import (
    ADMIN_KEY,
    OTHER_KEY,
    TEAM_KEY,
    admin_headers,
    base_config,
    openai_sdk,
    start_gunicorn,
    with_vendor_models,
)

POOR_KEY = "sk-poor-SECRET-00000001"
MODELS = ["gpt-test", "claude", "gem"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    config = with_vendor_models(base_config(fake_upstream.url), fake_upstream.url)
    config["keys"].append(
        {"name": "poor", "key": POOR_KEY, "models": ["*"], "budget_usd": 0.000001}
    )
    srv = start_gunicorn(
        tmp_path_factory.mktemp("responses"),
        config,
        env={"FACADE_ADMIN_KEY": ADMIN_KEY, "FACADE_USAGE_FLUSH_S": "0.2"},
    )
    yield srv
    assert srv.stop() == 0


def sdk(server, key: str = TEAM_KEY) -> OpenAI:
    return openai_sdk(server, key)


@pytest.fixture
def client(server):
    c = sdk(server)
    yield c
    c.close()


@pytest.mark.parametrize("model", MODELS)
def test_create(client, fake, model):
    raw = client.responses.with_raw_response.create(
        model=model, input="hello there [[fake tokens=3]]", instructions="Be brief."
    )
    resp = raw.parse()
    assert resp.object == "response" and resp.status == "completed"
    assert resp.id.startswith("resp_") and resp.model == model
    assert resp.output_text == "tok0 tok1 tok2"
    (item,) = resp.output
    assert item.type == "message" and item.role == "assistant"
    assert item.content[0].type == "output_text" and item.content[0].text == "tok0 tok1 tok2"
    assert resp.usage.output_tokens == 3 and resp.usage.input_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + 3
    assert resp.instructions == "Be brief."
    (sent,) = fake.requests(raw.headers["x-request-id"])
    assert "Be brief." in str(sent["body"])  # the instructions went upstream as the system prompt


@pytest.mark.parametrize("model", MODELS)
def test_stream_events_parse_in_the_sdk(client, model):
    events = list(
        client.responses.create(model=model, input="stream [[fake tokens=4 split]]", stream=True)
    )
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "tok0 tok1 tok2 tok3"
    final = events[-1].response
    assert final.output_text == text and final.usage.output_tokens == 4
    assert final.id == events[0].response.id


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_accepts_every_event(client, model):
    with client.responses.stream(model=model, input="[[fake tokens=2]]", tools=[WEATHER]) as s:
        for _ in s:
            pass
        final = s.get_final_response()
    assert final.output_text == "tok0 tok1"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_function_tool_round_trip(client, fake, model, stream):
    asked = [{"role": "user", "content": "weather in Paris? [[fake tool=get_weather]]"}]
    if stream:
        with client.responses.stream(model=model, input=asked, tools=[WEATHER]) as s:
            events = [e.type for e in s]
            first = s.get_final_response()
        assert "response.function_call_arguments.delta" in events
        assert "response.function_call_arguments.done" in events
    else:
        first = client.responses.create(model=model, input=asked, tools=[WEATHER])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id
    assert call.arguments.replace(" ", "") in ('{"city":"Paris"}', "{}")
    # Stateless: the caller sends the whole conversation back, the call's output included.
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}
    fake.reset()
    second = client.responses.create(
        model=model,
        input=[*asked, *[i.model_dump(exclude_none=True) for i in first.output], output],
        tools=[WEATHER],
    )
    assert second.output_text.startswith("tok0")
    assert "sunny, 21 C" in str(fake.requests()[-1]["body"])
    # Stored: previous_response_id carries the call, only its output is sent.
    third = client.responses.create(
        model=model, previous_response_id=first.id, input=[output], tools=[WEATHER]
    )
    assert third.output_text.startswith("tok0")
    sent = str(fake.requests()[-1]["body"])
    assert "sunny, 21 C" in sent and "weather in Paris?" in sent


@pytest.mark.parametrize("model", ["gpt-test", "gem"])
@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_and_cached_tokens_in_the_usage(client, model, stream):
    asked = {
        "model": model,
        "input": "[[fake tokens=4 reasoning=3 cached=2]]",
        "reasoning": {"effort": "low"},
    }
    if stream:
        with client.responses.stream(**asked) as s:
            resp = s.get_final_response()
    else:
        resp = client.responses.create(**asked)
    assert resp.usage.output_tokens_details.reasoning_tokens == 3
    assert resp.usage.input_tokens_details.cached_tokens == 2
    assert resp.reasoning.effort == "low"
    assert resp.model_extra["metrics"]["reasoning_tokens"] == 3


def test_previous_response_id_continues_the_conversation(client, fake):
    first = client.responses.create(model="gpt-test", input="my name is Ada [[fake tokens=2]]")
    second = client.responses.create(
        model="gpt-test", input="what is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    messages = fake.requests()[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"].startswith("my name is Ada")
    assert messages[1]["content"] == "tok0 tok1"


def test_retrieve_is_for_the_key_that_made_it(client, server):
    made = client.responses.create(model="gpt-test", input="[[fake tokens=2]]")
    got = client.responses.retrieve(made.id)
    assert got.id == made.id and got.output_text == "tok0 tok1"
    other = sdk(server, OTHER_KEY)
    try:
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.create(model="gpt-test", input="x", previous_response_id=made.id)
    finally:
        other.close()
    unstored = client.responses.create(model="gpt-test", input="[[fake tokens=1]]", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_errors_are_the_sdk_classes(client, server, fake):
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="no-such-model", input="x")
    assert info.value.body["type"] == "model_not_found"
    poor = sdk(server, POOR_KEY)
    try:
        with pytest.raises(openai.RateLimitError) as info:
            poor.responses.create(model="gpt-test", input="x")
        assert info.value.body["type"] == "budget_exceeded"
    finally:
        poor.close()
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-test", input="x", tools=[{"type": "web_search"}])
    assert info.value.param == "tools[0].type" and "web_search" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-test", input="x", extra_body={"max_output_token": 5})
    assert info.value.param == "max_output_token"
    assert fake.requests() == []


def test_failure_after_the_first_event_is_response_failed(client):
    events = list(
        client.responses.create(
            model="gpt-test", input="[[fake tokens=6 midstream=3]]", stream=True
        )
    )
    assert events[0].type == "response.created"
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error.code == "upstream_error"


def test_enveloped_route_wraps_answers_and_events(server):
    url = f"{server.url}/api/v1/responses"
    headers = {"Authorization": f"Bearer {TEAM_KEY}"}
    body = {"model": "gpt-test", "input": "[[fake tokens=2]]"}
    resp = requests.post(url, json=body, headers=headers, timeout=10).json()
    assert resp["success"] is True and resp["code"] == "200"
    data = resp["data"]
    assert data["object"] == "response" and data["output_text"] == "tok0 tok1"
    assert data["metrics"]["output_tokens"] == 2 and data["metrics"]["provider"] == "fake"
    got = requests.get(f"{url}/{data['id']}", headers=headers, timeout=10).json()
    assert got["data"]["id"] == data["id"]
    stream = requests.post(url, json={**body, "stream": True}, headers=headers, timeout=10)
    lines = [line for line in stream.text.split("\n") if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    import json

    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(e["success"] is True for e in events)
    assert [e["data"]["type"] for e in events][-1] == "response.completed"
    bad = requests.post(url, json={**body, "input": 5}, headers=headers, timeout=10)
    assert bad.status_code == 400 and bad.json()["data"]["error"]["param"] == "input"


def test_usage_rows_for_responses(client, server):
    before = _usage_requests(server)
    client.responses.create(model="claude", input="[[fake tokens=2]]")
    client.responses.create(model="gem", input="[[fake tokens=2]]", stream=True).close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = _usage_requests(server)
        if after.get("claude", 0) > before.get("claude", 0) and after.get("gem", 0) > before.get(
            "gem", 0
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"no usage rows for Responses calls: {before} -> {after}")


def _usage_requests(server) -> dict[str, int]:
    rows = requests.get(
        f"{server.url}/api/v1/admin/usage", headers=admin_headers(), timeout=10
    ).json()["data"]["rows"]
    out: dict[str, int] = {}
    for row in rows:
        out[row["model"]] = out.get(row["model"], 0) + row["requests"]
    return out
